"""/metrics: refused to anyone without the token or the permission; the documented metrics, with
values that move when a payment is made, a webhook waits, a task is queued, the ledger is
verified; counts of several processes added up in multiprocess mode, as under gunicorn."""

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from celery import current_app
from django.contrib.auth.models import Permission
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from ledger.tasks import verify_ledger
from merchants.events import EventType
from merchants.webhooks import webhook_endpoint_create, webhook_event_emit
from operations.tasks import heartbeat_record
from tests.factories import make_allocation, make_payment_code, make_program, make_staff
from tests.merchant_api.conftest import MerchantClient
from wallet.models import Notification

TOKEN = "a-long-random-metrics-token"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics, by name and labels."""
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- who may read them ----------------------------------------------------------------------


def test_without_the_token_the_metrics_are_not_there(client):
    assert client.get("/metrics").status_code == 404


def test_a_wrong_token_is_told_so(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["error"]["code"] == "metrics_token_invalid"
    assert b"aidwallet_" not in response.content


def test_with_no_token_configured_no_bearer_opens_them(client, settings):
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_staff_need_the_permission(client, db):
    staff = make_staff()
    client.force_login(staff)
    assert client.get("/metrics").status_code == 404

    staff.user_permissions.add(Permission.objects.get(codename="view_metrics"))
    staff = type(staff).objects.get(pk=staff.pk)  # permissions are cached on the user
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200


def test_an_operator_reads_them(client, operator):
    client.force_login(operator)

    assert client.get("/metrics").status_code == 200


def test_only_get_and_head(client, db):
    assert client.post("/metrics", **AUTH).status_code == 405


# --- what they say --------------------------------------------------------------------------


@pytest.fixture
def merchant_api(merchant):
    return MerchantClient(merchant)


@pytest.fixture
def paying_wallet(db):
    allocation = make_allocation(program=make_program(), amount=10_000)
    return allocation.pocket.wallet


# Both ways a payment is written on PostgreSQL: the hot path's one statement (no save(), so no
# post_save) and the portable ORM path; on SQLite both run the ORM path.
@pytest.mark.parametrize("one_statement", [True, False], ids=["one_statement", "orm"])
def test_a_payment_moves_the_authorization_decision_and_request_metrics(
    client,
    merchant_api,
    paying_wallet,
    settings,
    django_capture_on_commit_callbacks,
    one_statement,
):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the payment's messages leave at once
    settings.AUTHORIZE_ONE_STATEMENT = one_statement
    before = scrape(client)

    with django_capture_on_commit_callbacks(execute=True):
        paid = merchant_api.send(
            "/authorizations",
            {"amount": 1_250, "currency": "EUR", "payment_code": make_payment_code(paying_wallet)},
        )
    with django_capture_on_commit_callbacks(execute=True):
        refused = merchant_api.send(
            "/authorizations",
            {"amount": 99_000, "currency": "EUR", "payment_code": make_payment_code(paying_wallet)},
        )
    merchant_api.read(f"/authorizations/{paid.json()['id']}")
    after = scrape(client)

    assert paid.status_code == refused.status_code == 201
    reason = refused.json()["decline"]["code"]
    assert reason
    api = {"channel": "api", "livemode": "true"}
    approved = {**api, "outcome": "approved", "reason": ""}
    declined = {**api, "outcome": "declined", "reason": reason}
    for labels in (approved, declined):
        moved = value(after, "aidwallet_authorizations_total", **labels)
        assert moved - value(before, "aidwallet_authorizations_total", **labels) == 1
    count = "aidwallet_decision_duration_seconds_count"
    assert value(after, count, channel="api") - value(before, count, channel="api") == 2
    total = "aidwallet_decision_duration_seconds_sum"
    assert value(after, total, channel="api") > value(before, total, channel="api")
    # Requests are counted by their URL pattern, never by the path of each payment.
    created = {"method": "POST", "route": "/api/merchant/v1/authorizations", "status": "201"}
    requests = "aidwallet_http_requests_total"
    assert value(after, requests, **created) - value(before, requests, **created) == 2
    routes = {dict(labels).get("route") for name, labels in after if name == requests}
    assert not any(paid.json()["id"] in route for route in routes if route)
    assert any(route and "<" in route and "authorizations" in route for route in routes)
    timed = "aidwallet_http_request_duration_seconds_count"
    post = {"method": "POST", "route": "/api/merchant/v1/authorizations"}
    assert value(after, timed, **post) - value(before, timed, **post) == 2


def test_a_sandbox_decision_is_counted_apart_and_not_timed(
    client, merchant, django_capture_on_commit_callbacks
):
    sandbox = MerchantClient(merchant, mode="test")
    before = scrape(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = sandbox.send(
            "/authorizations", {"amount": 800, "currency": "EUR", "payment_code": "0000 000 001"}
        )
    after = scrape(client)

    assert response.status_code == 201, response.content
    labels = {"channel": "api", "livemode": "false", "outcome": "approved", "reason": ""}
    total = "aidwallet_authorizations_total"
    assert value(after, total, **labels) - value(before, total, **labels) == 1
    count = "aidwallet_decision_duration_seconds_count"
    assert value(after, count, channel="api") == value(before, count, channel="api")


def test_a_declined_request_without_a_decision_counts_no_authorization(client, merchant_api):
    before = scrape(client)

    response = merchant_api.send("/authorizations", {"amount": -1, "currency": "EUR"})
    after = scrape(client)

    assert response.status_code == 400
    authorizations = [name for name, _ in after if name == "aidwallet_authorizations_total"]
    assert sum(after[k] for k in after if k[0] == "aidwallet_authorizations_total") == sum(
        before.get(k, 0) for k in after if k[0] == "aidwallet_authorizations_total"
    ), authorizations
    bad = {"method": "POST", "route": "/api/merchant/v1/authorizations", "status": "400"}
    requests = "aidwallet_http_requests_total"
    assert value(after, requests, **bad) - value(before, requests, **bad) == 1


def test_the_backlogs_are_read_from_the_database(
    client, merchant, paying_wallet, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(timezone.now(), tick=False)
    webhook_endpoint_create(merchant=merchant, url="https://merchant.example/hooks")
    # Written, with their deliveries and messages; nothing sent (the commit's tasks are not run).
    with django_capture_on_commit_callbacks(execute=False):
        webhook_event_emit(
            merchant_id=merchant.pk, event_type=EventType.AUTHORIZATION_APPROVED, data={}
        )
        MerchantClient(merchant).send(
            "/authorizations",
            {"amount": 500, "currency": "EUR", "payment_code": make_payment_code(paying_wallet)},
        )
    due = Notification.objects.filter(next_attempt_at__isnull=False)
    channel = due.values_list("channel", flat=True).first()
    assert channel, "the payment wrote a message to send"

    time_machine.move_to(timezone.now() + timedelta(minutes=5), tick=False)
    samples = scrape(client)

    # Two deliveries: the event's, and the payment's own authorization.approved.
    assert value(samples, "aidwallet_webhook_deliveries_pending") == 2
    assert value(samples, "aidwallet_webhook_delivery_overdue_seconds") == 300
    assert (
        value(samples, "aidwallet_outbox_backlog", channel=channel)
        == due.filter(channel=channel).count()
    )
    overdue = value(samples, "aidwallet_outbox_overdue_seconds", channel=channel)
    assert overdue == pytest.approx(300, abs=1)
    assert value(samples, "aidwallet_metrics_source_up", source="database") == 1


def test_the_celery_queue_length_is_the_brokers(client, db):
    app = current_app
    with app.connection_for_write() as connection:
        app.amqp.queues[app.conf.task_default_queue].bind(connection.default_channel).purge()
    before = value(scrape(client), "aidwallet_celery_queue_length", queue="celery")

    heartbeat_record.delay()
    heartbeat_record.delay()
    after = scrape(client)

    assert before == 0
    assert value(after, "aidwallet_celery_queue_length", queue="celery") == 2
    assert value(after, "aidwallet_metrics_source_up", source="broker") == 1
    with app.connection_for_write() as connection:
        app.amqp.queues[app.conf.task_default_queue].bind(connection.default_channel).purge()


def test_a_broker_that_does_not_answer_is_reported_down_and_the_rest_still_answers(
    client, db, settings
):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 0.5

    samples = scrape(client)

    assert value(samples, "aidwallet_metrics_source_up", source="broker") == 0
    assert value(samples, "aidwallet_metrics_source_up", source="database") == 1
    assert not any(name == "aidwallet_celery_queue_length" for name, _ in samples)


def test_the_ledger_verification_result_and_age(client, paying_wallet, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    assert not any(name.startswith("aidwallet_ledger_verify") for name, _ in scrape(client))

    assert verify_ledger() == 0
    time_machine.move_to(timezone.now() + timedelta(days=2), tick=False)
    samples = scrape(client)

    assert value(samples, "aidwallet_ledger_verify_problems") == 0
    assert value(samples, "aidwallet_ledger_verify_age_seconds") == pytest.approx(2 * 86_400, abs=1)
    assert value(samples, "aidwallet_ledger_verify_last_run_timestamp_seconds") == pytest.approx(
        (timezone.now() - timedelta(days=2)).timestamp(), abs=1
    )


def test_several_processes_counts_are_added_up_in_multiprocess_mode(tmp_path, settings):
    """As under gunicorn: each worker process writes its counts to PROMETHEUS_MULTIPROC_DIR,
    and the process that answers the scrape reads them all."""
    environment = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    environment.setdefault("AIDWALLET_VAR_DIR", str(settings.VAR_DIR))
    count = (
        "from core import metrics;"
        "metrics.AUTHORIZATIONS.labels('card', 'true', 'approved', '').inc({n});"
        "metrics.DECISION_DURATION.labels('card').observe(0.004)"
    )
    for n in (2, 3):
        subprocess.run(
            [sys.executable, "-c", count.format(n=n)], env=environment, check=True, timeout=60
        )
    read = (
        "import django; django.setup();"
        "from prometheus_client import generate_latest;"
        "from operations.metrics import process_registry;"
        "print(generate_latest(process_registry()).decode())"
    )
    scraped = subprocess.run(
        [sys.executable, "-c", read],
        env=environment | {"DJANGO_SETTINGS_MODULE": "config.settings"},
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }

    labels = {"channel": "card", "livemode": "true", "outcome": "approved", "reason": ""}
    assert value(samples, "aidwallet_authorizations_total", **labels) == 5
    assert value(samples, "aidwallet_decision_duration_seconds_count", channel="card") == 2
