from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = _("Shop tills")

    def ready(self) -> None:
        from merchants.signals import merchant_approved
        from shop.services import owners_tell_approved

        merchant_approved.connect(owners_tell_approved, dispatch_uid="shop.owners_tell_approved")
