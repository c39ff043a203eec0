"""The Celery app. The broker comes from settings (CELERY_BROKER_URL): Redis in production,
a SQLite file through kombu's SQLAlchemy transport in the quick start, so no server is needed."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("aidwallet")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
