from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = _("Operations")

    def ready(self):
        from operations import checks  # noqa: F401 -- registers the deployment checks
        from operations.receivers import on_decision_recorded
        from wallet.signals import decision_recorded

        decision_recorded.connect(on_decision_recorded, dispatch_uid="operations.decision_observe")
