from django.db import models


class Heartbeat(models.Model):
    """When a periodic task last ran, one row per heartbeat. It lives in the database, not the
    cache: the default cache is per process, and the web process reads what a worker wrote."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at.isoformat()}"
