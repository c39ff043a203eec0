from django.utils import timezone

from operations.models import Heartbeat

# Beat sends the heartbeat task and a worker runs it: its age covers both.
CELERY_HEARTBEAT = "celery"


def heartbeat_record(*, name: str) -> Heartbeat:
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"beat_at": timezone.now()}
    )
    return heartbeat
