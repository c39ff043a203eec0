from celery import shared_task


@shared_task
def retention_enforce() -> dict[str, int]:
    from gdpr.retention import retention_enforce

    return retention_enforce()
