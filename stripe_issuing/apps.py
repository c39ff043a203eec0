from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StripeIssuingConfig(AppConfig):
    name = "stripe_issuing"
    verbose_name = _("Cards (Stripe Issuing)")
