"""What /readyz checks. Each check returns details for the answer or raises NotReady with a
stable code; any other exception is logged and answered as "unavailable" only, because the probe
is public and an exception's message may name a host, a user or a version.

Every check is bounded: queries by PostgreSQL's statement_timeout, connections to PostgreSQL by
connect_timeout (config/settings.py), the broker by its connect and socket timeouts. They run
one after the other in the request's own thread, on its database connection: a check in a thread
of its own would open a connection of its own on every probe."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from operations.models import Heartbeat
from operations.services import CELERY_HEARTBEAT

logger = logging.getLogger(__name__)

Details = dict[str, int]


class NotReady(Exception):
    def __init__(self, code: str, **details: int) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


@contextmanager
def bounded_queries() -> Iterator[None]:
    if connection.vendor != "postgresql":
        # SQLite reads a local file, and in WAL mode a reader never waits for the writer. No
        # transaction here: under BEGIN IMMEDIATE it would wait for the write lock.
        yield
        return
    milliseconds = int(settings.HEALTH_CHECK_TIMEOUT_SECONDS * 1000)
    with transaction.atomic(), connection.cursor() as cursor:
        # Local to this transaction: the connection outlives the request (CONN_MAX_AGE).
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{milliseconds}ms"])
        yield


def _database() -> Details:
    with bounded_queries(), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {}


def _migrations() -> Details:
    # New code serving before `migrate` ran on its database would fail on the missing columns.
    with bounded_queries():
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise NotReady("pending", count=len(plan))
    return {}


@contextmanager
def broker_channel() -> Iterator[Any]:
    """A channel to the Celery broker whose every wait is bounded (/readyz, /metrics)."""
    url = settings.CELERY_BROKER_URL
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    # Redis takes a socket timeout. The SQLAlchemy transport would hand any option to
    # create_engine(), but its engine is made once per process and shared with the tasks being
    # sent: on a SQLite file it waits at most SQLite's busy timeout (5 s).
    transport_options = {"socket_timeout": timeout} if url.startswith("redis") else {}
    with current_app.connection_for_write(
        url, connect_timeout=timeout, transport_options=transport_options
    ) as broker:
        broker.ensure_connection(max_retries=0)
        with broker.channel() as channel:
            yield channel


def _broker() -> Details:
    with broker_channel() as channel:
        # Declaring the queue the workers declare anyway reads its length: a round trip to
        # Redis, a query on the tables of the SQLAlchemy transport.
        channel.queue_declare(queue=current_app.conf.task_default_queue)
    return {}


def _celery_heartbeat() -> Details:
    with bounded_queries():
        beat_at = (
            Heartbeat.objects.filter(name=CELERY_HEARTBEAT)
            .values_list("beat_at", flat=True)
            .first()
        )
    if beat_at is None:
        raise NotReady("missing")
    age = int((timezone.now() - beat_at).total_seconds())
    if age > settings.HEALTH_HEARTBEAT_MAX_AGE_SECONDS:
        raise NotReady("stale", age_seconds=age)
    return {"age_seconds": age}


CHECKS: dict[str, Callable[[], Details]] = {
    "database": _database,
    "migrations": _migrations,
    "broker": _broker,
    "celery_heartbeat": _celery_heartbeat,
}


def readiness() -> dict[str, dict[str, int | str]]:
    """Each check's result by name: {"status": "ok", ...} or {"status": "fail", "error": code}."""
    results: dict[str, dict[str, int | str]] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = {"status": "ok", **check()}
        except NotReady as failure:
            results[name] = {"status": "fail", "error": failure.code, **failure.details}
        except Exception:
            logger.warning("readiness check %s failed", name, exc_info=True)
            results[name] = {"status": "fail", "error": "unavailable"}
    return results
