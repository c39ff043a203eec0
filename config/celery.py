"""The Celery app. The broker comes from settings (CELERY_BROKER_URL): Redis in production,
a SQLite file through kombu's SQLAlchemy transport in the quick start, so no server is needed."""

import logging.config
import os

from celery import Celery
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

from core.request_id import (
    task_postrun_restore_request_id,
    task_prerun_set_request_id,
    task_publish_add_request_id,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("aidwallet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# A task carries the request id of whoever queued it (core/request_id.py). weak=False: the
# receivers are module functions, kept alive anyway; said so that no copy of them is lost.
before_task_publish.connect(task_publish_add_request_id, weak=False)
task_prerun.connect(task_prerun_set_request_id, weak=False)
task_postrun.connect(task_postrun_restore_request_id, weak=False)


@setup_logging.connect
def use_django_logging(**kwargs) -> None:
    """Workers and beat log as the web processes do (settings.LOGGING: JSON in production,
    request ids, secrets masked) instead of Celery's own format: with a receiver here, Celery
    leaves the logging setup to it."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
