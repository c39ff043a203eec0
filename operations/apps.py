from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = _("Operations")

    def ready(self):
        from django.db.models.signals import post_save

        from operations import checks  # noqa: F401 -- registers the deployment checks
        from operations.receivers import on_decision_recorded, on_sandbox_decision_saved
        from wallet.models import Decision
        from wallet.signals import decision_recorded

        decision_recorded.connect(
            on_decision_recorded, sender=Decision, dispatch_uid="operations.decision_observe"
        )
        post_save.connect(
            on_sandbox_decision_saved,
            sender=Decision,
            dispatch_uid="operations.sandbox_decision_observe",
        )
