"""The one way to reach Stripe, for card issuing and for merchants' payouts."""

import stripe
from django.conf import settings


def stripe_client() -> stripe.StripeClient:
    # STRIPE_API_BASE points the library at the tests' local fake server. The library retries
    # network failures itself, each retry with the same idempotency key as the first try.
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else {},
        http_client=stripe.RequestsClient(),
        max_network_retries=2,
    )
