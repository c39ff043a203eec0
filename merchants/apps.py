from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MerchantsConfig(AppConfig):
    name = "merchants"
    verbose_name = _("Merchants")

    def ready(self) -> None:
        from merchants.payments import decision_announce
        from wallet.signals import decision_recorded

        decision_recorded.connect(decision_announce, dispatch_uid="merchants.decision_announce")
