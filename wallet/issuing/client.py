"""The one way to reach Stripe. Without a secret key, cards are off: nothing calls Stripe and
the admin and the app say cards are not available."""

import stripe
from django.conf import settings


def cards_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> stripe.StripeClient:
    # STRIPE_API_BASE points the library at the tests' local fake server. The library retries
    # network failures itself, each retry with the same idempotency key as the first try.
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else {}
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=base,
        http_client=stripe.RequestsClient(),
        max_network_retries=2,
    )
