"""The one way to reach Stripe. Without a secret key, cards are off: nothing calls Stripe and
the admin and the app say cards are not available."""

from django.conf import settings


def cards_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)
