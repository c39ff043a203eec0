"""The task queue works through the configured broker with a real worker: Redis in production
and CI, kombu's SQLAlchemy transport on a SQLite file in the quick start."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from config.celery import app
from wallet import tasks


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_on_a_real_worker_through_the_configured_broker(settings):
    # given a result backend the test can read (the platform itself needs none)
    app.conf.result_backend = "cache+memory://"
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            # when the nightly ledger check is queued
            result = tasks.verify_ledger.delay()
            # then a worker picked it up and found no problem
            assert result.get(timeout=30) == 0
    finally:
        app.conf.result_backend = None


def test_the_broker_is_the_configured_one():
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
