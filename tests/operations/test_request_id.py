"""The request id and the JSON logs: the load balancer's X-Request-ID is kept when valid, else one
is drawn; it comes back in the response, and it is in the JSON lines of the request (its
decision), of the task the request queued (run by a real worker through the broker), and in the
header of the webhook that task delivers."""

import io
import json
import logging
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from core.log_filters import RedactedJsonFormatter
from core.request_id import HEADER, RequestIdFilter
from merchants.webhooks import webhook_endpoint_create
from tests.factories import make_allocation, make_payment_code, make_program
from tests.merchant_api.conftest import API, MerchantClient
from tests.merchants.test_webhooks import receiver  # noqa: F401 -- the fixture
from wallet.models.notifications import Notification


def test_a_valid_request_id_from_the_load_balancer_is_kept(client):
    given = uuid.uuid4().hex

    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)

    assert response[HEADER] == given


@pytest.mark.parametrize(
    "given", ["", "not-a-uuid", "0123456789abcdef0123456789abcdeX", "a" * 200, "x\ty"]
)
def test_an_invalid_or_missing_request_id_is_replaced_by_a_drawn_one(client, given):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)

    drawn = response[HEADER]
    assert drawn != given
    assert uuid.UUID(drawn).hex == drawn  # 32 hex digits


def test_two_requests_get_two_ids(client):
    assert client.get("/healthz")[HEADER] != client.get("/healthz")[HEADER]


def test_a_json_line_is_masked_in_every_field_and_has_the_request_fields():
    """The formatter writes extra fields too: django.request passes the request, whose repr
    holds the path a client chose."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        RedactedJsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s %(task_id)s")
    )
    logger = logging.getLogger("tests.json")
    logger.addHandler(handler)
    try:
        logger.warning(
            "Not Found: %s",
            "/cards/card_AbCdEfGhIjKlMnOpQrStUv/freeze",
            extra={"request": "<WSGIRequest: GET '/cards/card_AbCdEfGhIjKlMnOpQrStUv/freeze'>"},
        )
    finally:
        logger.removeHandler(handler)

    line = json.loads(stream.getvalue())
    assert "AbCdEfGhIjKlMnOpQrStUv" not in stream.getvalue()
    assert line["message"] == "Not Found: /cards/card_…StUv/freeze"
    assert line["request"].endswith("/cards/card_…StUv/freeze'>")
    assert line["request_id"] == ""
    assert line["task_id"] == ""
    assert line["levelname"] == "WARNING"


@pytest.fixture
def console():
    """The JSON lines the configured handler (settings.LOGGING's "console") writes."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert isinstance(handler.formatter, RedactedJsonFormatter)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    handler.setStream(previous)


@pytest.mark.django_db(transaction=True)
def test_the_request_id_follows_the_payment_into_its_task_and_its_webhook(
    merchant,
    receiver,  # noqa: F811 -- the fixture imported above
    settings,
    request,
):
    settings.WEBHOOKS_ALLOW_INSECURE_LOCALHOST = True
    webhook_endpoint_create(merchant=merchant, url=receiver.url())
    wallet = make_allocation(program=make_program(), amount=10_000).pocket.wallet
    api = MerchantClient(merchant)
    given = uuid.uuid4().hex

    # The worker's start sets logging up as a worker's does (config/celery.py): from
    # settings.LOGGING, JSON; the lines are read from the handler it configured.
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        lines = request.getfixturevalue("console")
        # The grant's messages, queued at its commit, are sent by the worker first: on SQLite
        # (an in-memory database shared between threads, whose table locks do not wait) the
        # payment's writes would otherwise meet the worker's and be answered 503.
        deadline = time.monotonic() + 30
        queued = Notification.objects.filter(status=Notification.Status.QUEUED)
        while time.monotonic() < deadline and queued.exists():
            time.sleep(0.1)
        response = api.post(
            f"{API}/authorizations",
            data=json.dumps(
                {"amount": 700, "currency": "EUR", "payment_code": make_payment_code(wallet)}
            ),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
            HTTP_X_REQUEST_ID=given,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.1)
        # the worker logs the attempt just after the answer
        while time.monotonic() < deadline and not _attempt_logged(lines()):
            time.sleep(0.1)

    assert response.status_code == 201, response.content
    assert response[HEADER] == given
    assert [r.headers[HEADER] for r in receiver.requests] == [given]
    ours = [line for line in lines() if line["request_id"] == given]
    decision = next(line for line in ours if line["logger"] == "operations.receivers")
    assert decision["decision"] == response.json()["id"]
    assert decision["outcome"] == "approved"
    assert decision["channel"] == "api"
    delivered = next(line for line in ours if line["logger"] == "merchants.webhooks")
    assert delivered["task_name"] == "merchants.tasks.deliver_webhook"
    assert delivered["task_id"]
    assert {"timestamp", "level", "message"} <= set(delivered)


def _attempt_logged(lines) -> bool:
    return any(line["logger"] == "merchants.webhooks" for line in lines)


@pytest.mark.django_db(transaction=True)
def test_a_task_run_eagerly_in_the_request_keeps_and_leaves_the_requests_id(
    merchant,
    receiver,  # noqa: F811 -- the fixture imported above
    settings,
    console,
):
    """CELERY_TASK_ALWAYS_EAGER (development, some tests): the task runs in the request's own
    thread, under the request's id, and the request keeps its id afterwards. The task is the
    payment's webhook delivery, queued at its commit (neither a payment's message nor a
    capture's low-balance check is a task queued in the request: the drain writes them)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.WEBHOOKS_ALLOW_INSECURE_LOCALHOST = True
    webhook_endpoint_create(merchant=merchant, url=receiver.url())
    wallet = make_allocation(program=make_program(), amount=10_000).pocket.wallet
    api = MerchantClient(merchant)
    code = make_payment_code(wallet)
    given = uuid.uuid4().hex
    before = len(console())  # the grant's own message, sent eagerly outside any request

    response = api.post(
        f"{API}/authorizations",
        data=json.dumps({"amount": 700, "currency": "EUR", "payment_code": code}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        HTTP_X_REQUEST_ID=given,
    )

    assert response.status_code == 201, response.content
    assert response[HEADER] == given
    assert [r.headers[HEADER] for r in receiver.requests] == [given]
    tasks = [line for line in console()[before:] if line["task_name"]]
    assert {line["task_name"] for line in tasks} == {"merchants.tasks.deliver_webhook"}
    assert {line["request_id"] for line in tasks} == {given}


@pytest.mark.parametrize(
    "given",
    [None, "", uuid.uuid4().hex, str(uuid.uuid4()), "not-a-uuid", "x\ty", "a" * 200, "0" * 32],
)
def test_the_same_ids_headers_and_warnings_as_django_guids_middleware(client, caplog, given):
    from django.conf import settings
    from django.test import override_settings

    def answered():
        headers = {} if given is None else {"HTTP_X_REQUEST_ID": given}
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="django_guid"):
            response = client.get("/healthz", **headers)
        drawn = response[HEADER]
        warnings = [r.getMessage().replace(drawn, "<drawn>") for r in caplog.records]
        kept = drawn == given
        return kept, response["Access-Control-Expose-Headers"], warnings, len(drawn)

    ours = answered()
    theirs_middleware = [
        "django_guid.middleware.guid_middleware"
        if path == "core.request_id.RequestIdMiddleware"
        else path
        for path in settings.MIDDLEWARE
    ]
    with override_settings(MIDDLEWARE=theirs_middleware):
        theirs = answered()
    # django-guid also says at INFO whether the header came; settings.LOGGING keeps its
    # logger at WARNING, so only its warnings are compared.
    assert ours[:2] == theirs[:2]
    infos = ("found in the header", "not found")
    assert ours[2] == [w for w in theirs[2] if not any(info in w for info in infos)]
    assert ours[3] == theirs[3]


def test_the_decision_line_is_written_once_masked_without_the_filter_s_mark():
    """The configured handler's filters mask the message once and mark the record; the JSON
    formatter writes the message as masked, never the mark, and masks every other field."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    logger = logging.getLogger("tests.decision")
    try:
        logger.warning(
            "decision %s: %s, card_AbCdEfGhIjKlMnOpQrStUv",
            "dec_1",
            "approved",
            extra={"reference": "card_AbCdEfGhIjKlMnOpQrStUv", "amount": 1234, "large": 2**70},
        )
    finally:
        handler.setStream(previous)

    written = stream.getvalue()
    line = json.loads(written)
    assert "AbCdEfGhIjKlMnOpQrStUv" not in written
    assert line["message"] == "decision dec_1: approved, card_…StUv"
    assert line["reference"] == "card_…StUv"
    assert line["amount"] == 1234
    assert line["large"] == 2**70  # beyond orjson's 64 bits: written by the json module
    assert "redacted_message" not in line
    assert line["level"] == "WARNING"
    assert line["logger"] == "tests.decision"
