from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MerchantsConfig(AppConfig):
    name = "merchants"
    verbose_name = _("Merchants")

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from merchants.api_keys import forget_keys_on_save
        from merchants.models import ApiKey, Merchant
        from merchants.payments import decision_announce
        from wallet.signals import decision_recorded

        decision_recorded.connect(decision_announce, dispatch_uid="merchants.decision_announce")
        # Whoever saves a key or a merchant (services, the admin), the cached keys follow.
        post_save.connect(forget_keys_on_save, sender=ApiKey, dispatch_uid="merchants.forget_key")
        post_save.connect(
            forget_keys_on_save, sender=Merchant, dispatch_uid="merchants.forget_keys"
        )
