from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StripeIssuingConfig(AppConfig):
    name = "stripe_issuing"
    verbose_name = _("Cards (Stripe Issuing)")

    def ready(self) -> None:
        from stripe_issuing.authorizations import unknown_acceptor_count
        from wallet.signals import decision_recorded

        decision_recorded.connect(
            unknown_acceptor_count, dispatch_uid="stripe_issuing.unknown_acceptor_count"
        )
