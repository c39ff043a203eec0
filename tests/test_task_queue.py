"""The task queue works through the configured broker with a real worker: Redis in production
and CI, kombu's SQLAlchemy transport on a SQLite file in the quick start."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from config.celery import app
from ledger.models import Transfer
from ledger.services import hold_place
from wallet import tasks


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_on_a_real_worker_through_the_configured_broker(pocket, merchant):
    # given a hold whose time is up
    hold = hold_place(
        debit=pocket.account,
        credit=merchant.payable_account,
        amount=500,
        idempotency_key="old-hold",
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        # when the expiry task is queued through the broker
        tasks.expire_holds.delay()
        # then a worker picks it up and releases the hold
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and not Transfer.objects.filter(pending_transfer=hold).exists()
        ):
            time.sleep(0.2)
    hold.refresh_from_db()
    assert hold.hold_state == "expired"
    pocket.account.refresh_from_db()
    assert pocket.account.pending == 0


def test_the_broker_is_the_configured_one():
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    assert not app.conf.task_always_eager


def test_every_task_of_the_beat_schedule_is_a_task_the_workers_know():
    # A task renamed without its schedule entry would be sent under a name no worker runs.
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled - set(app.tasks) == set()


def test_every_task_ends_before_the_broker_would_hand_it_to_another_worker():
    """A task still running when the visibility timeout ends would run twice; a timeout far
    above the longest task makes a killed worker's task wait that long to come back."""
    app.loader.import_default_modules()
    ours = [name for name in app.tasks if not name.startswith("celery.")]
    annotations = settings.CELERY_TASK_ANNOTATIONS
    assert set(annotations) <= set(ours)  # an annotation under a stale name would do nothing
    limits = {
        name: annotations.get(name, {}).get("time_limit", app.conf.task_time_limit) for name in ours
    }
    assert all(limits.values()), limits
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    if app.conf.broker_url.startswith("redis"):
        visibility = app.conf.broker_transport_options["visibility_timeout"]
        assert all(limit < visibility for limit in limits.values()), limits
        assert visibility <= max(limits.values()) + 5 * 60  # back within minutes, not an hour
