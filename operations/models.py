from django.db import models
from django.utils.translation import gettext_lazy as _


class Heartbeat(models.Model):
    """When a periodic task last ran, one row per heartbeat. It lives in the database, not the
    cache: the default cache is per process, and the web process reads what a worker wrote."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()

    class Meta:
        # Operations' one model carries its one permission: staff who may read /metrics (the
        # platform's volumes and health, no person's data) without being superusers.
        permissions = [("view_metrics", _("Can read the platform's metrics"))]

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at.isoformat()}"
