"""The load balancer's probes: /healthz answers whatever the database does; /readyz answers 200
when every check passes and 503 naming each one that fails, without revealing why."""

from datetime import timedelta

import pytest
import time_machine
from django.db import OperationalError, connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from operations.readiness import bounded_queries
from operations.tasks import heartbeat_record
from tests.markers import postgresql_statement_timeout
from tests.operations.outage import closed_port

CHECKS = {"database", "migrations", "broker", "celery_heartbeat"}


@pytest.fixture
def database_unreachable(monkeypatch):
    def refuse():
        raise OperationalError('connection to server at "db.internal" failed: refused')

    monkeypatch.setattr(connection, "ensure_connection", refuse)


@pytest.fixture
def heartbeat_fresh(db):
    # What a worker does when beat sends the heartbeat.
    heartbeat_record()


def test_healthz_answers_ok_with_the_database_unreachable(client, database_unreachable):
    # No `db` fixture either: pytest-django would raise on any query.
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.content == b"ok"
    assert "no-cache" in response["Cache-Control"]


def test_the_probes_answer_only_get_and_head(client):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


def test_readyz_answers_200_when_every_check_passes(client, heartbeat_fresh):
    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {name for name, result in body["checks"].items() if result["status"] == "ok"} == CHECKS


def test_readyz_answers_503_when_the_heartbeat_is_stale(client, settings, heartbeat_fresh):
    late = timezone.now() + timedelta(seconds=settings.HEALTH_HEARTBEAT_MAX_AGE_SECONDS + 30)

    with time_machine.travel(late):
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["celery_heartbeat"]
    assert body["checks"]["celery_heartbeat"]["error"] == "stale"
    assert body["checks"]["celery_heartbeat"]["age_seconds"] >= (
        settings.HEALTH_HEARTBEAT_MAX_AGE_SECONDS + 30
    )


def test_the_heartbeat_age_allowed_is_a_setting(client, settings, heartbeat_fresh):
    settings.HEALTH_HEARTBEAT_MAX_AGE_SECONDS = 3600

    with time_machine.travel(timezone.now() + timedelta(minutes=30)):
        response = client.get("/readyz")

    assert response.status_code == 200, response.json()


@pytest.mark.django_db
def test_readyz_answers_503_before_any_heartbeat(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["celery_heartbeat"]
    assert response.json()["checks"]["celery_heartbeat"]["error"] == "missing"


def test_readyz_answers_503_when_a_migration_is_pending(client, monkeypatch, heartbeat_fresh):
    # The executor plans one migration still to apply, as after a deploy before `migrate`.
    def plan_one(self, targets, clean_start=False):
        return [(self.loader.graph.nodes["operations", "0001_heartbeat"], False)]

    monkeypatch.setattr(MigrationExecutor, "migration_plan", plan_one)

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["migrations"]
    assert body["checks"]["migrations"] == {"status": "fail", "error": "pending", "count": 1}


def test_readyz_answers_503_when_the_broker_is_down(client, settings, heartbeat_fresh):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["broker"]
    assert body["checks"]["broker"] == {"status": "fail", "error": "unavailable"}
    assert b"127.0.0.1" not in response.content


def test_readyz_answers_503_naming_the_database_without_its_error(client, database_unreachable):
    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["database", "migrations", "celery_heartbeat"]
    assert body["checks"]["database"] == {"status": "fail", "error": "unavailable"}
    assert b"db.internal" not in response.content


def test_the_probes_answer_over_plain_http_when_ssl_is_redirected(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/app/").status_code == 301
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)


@postgresql_statement_timeout
@pytest.mark.django_db
def test_a_check_query_is_cut_at_the_check_timeout(settings):
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.1

    with pytest.raises(OperationalError), bounded_queries(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(2)")
