from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BeneficiaryAppConfig(AppConfig):
    name = "beneficiary_app"
    verbose_name = _("Beneficiary app")
