"""Operations' tasks, each named after the service it runs."""

from celery import shared_task

from operations import services


@shared_task(ignore_result=True)
def heartbeat_record() -> None:
    """Sent by beat every minute (CELERY_BEAT_SCHEDULE), run by a worker; /readyz reads its age."""
    services.heartbeat_record(name=services.CELERY_HEARTBEAT)
