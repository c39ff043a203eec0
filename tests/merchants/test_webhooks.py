"""Webhooks out: events leave only after the money's transaction commits, signed, to the
endpoints that want them, retried on the backoff schedule, each attempt recorded, sent once.

A real HTTP server on 127.0.0.1 receives them. Attempts are made by calling the service (or the
task) directly, with time moved by time_machine: nothing sleeps."""

import json
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from merchants import tasks, webhooks
from merchants.events import EventType
from merchants.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from merchants.tasks import deliver_webhook, retry_due_webhooks
from merchants.webhooks import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    SIGNATURE_HEADER,
    webhook_delivery_attempt,
    webhook_endpoint_create,
    webhook_event_emit,
    webhook_signature_verify,
)
from tests.concurrency import run_together
from tests.factories import make_merchant
from tests.markers import postgresql_only

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
DATA = {"object": "authorization", "id": "auth_123", "amount": 1250, "currency": "EUR"}


# A merchant's server


@dataclass
class Received:
    path: str
    headers: Message
    body: bytes


class Receiver:
    """What the local server got, and what it answers: the statuses queued in `answers` in
    turn, then 200."""

    def __init__(self, port: int):
        self.port = port
        self.requests: list[Received] = []
        self.answers: list[int] = []
        self.answer_body = "ok"
        self.answer_headers: dict[str, str] = {}
        self.hold = None  # a threading.Event the handler waits on before answering
        self.drip = False  # answer one header every 0.1 s, for 5 s

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        receiver: Receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        receiver.requests.append(Received(self.path, self.headers, body))
        if receiver.hold is not None:
            receiver.hold.wait(timeout=5)
        if receiver.drip:
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for _ in range(50):
                    self.wfile.write(b"X-Drip: 1\r\n")
                    time.sleep(0.1)
            except OSError:
                pass  # the client gave up
            return
        status = receiver.answers.pop(0) if receiver.answers else 200
        answer = receiver.answer_body.encode()
        try:
            self.send_response(status)
            for name, value in receiver.answer_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.receiver = Receiver(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.receiver
    if server.receiver.hold is not None:
        server.receiver.hold.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def local_endpoints_allowed(settings):
    settings.WEBHOOKS_ALLOW_INSECURE_LOCALHOST = True


@pytest.fixture
def eager(settings):
    """Tasks run inline when queued, as a worker would run them."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture
def endpoint(merchant, receiver):
    return webhook_endpoint_create(merchant=merchant, url=receiver.url())


def emit(merchant, event_type=EventType.AUTHORIZATION_APPROVED, data=None):
    return webhook_event_emit(merchant_id=merchant.pk, event_type=event_type, data=data or DATA)


@pytest.fixture
def delivery(endpoint, merchant):
    """A pending delivery of an authorization.approved event, not attempted yet."""
    event = emit(merchant)
    return WebhookDelivery.objects.get(event=event, endpoint=endpoint)


def attempt_at(moment, delivery, frozen):
    frozen.move_to(moment, tick=False)
    return webhook_delivery_attempt(delivery=delivery)


# After commit only


@pytest.mark.django_db(transaction=True)
def test_an_event_is_sent_only_when_its_transaction_commits(eager, receiver):
    # given an endpoint of a merchant
    merchant = make_merchant()
    webhook_endpoint_create(merchant=merchant, url=receiver.url())
    # when an event is emitted inside the money's transaction
    with transaction.atomic():
        event = emit(merchant)
        # then nothing has left before the commit
        assert receiver.requests == []
    # and the event is sent once it has committed
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["id"] == event.reference
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED


def test_an_event_emitted_in_a_rolled_back_transaction_sends_nothing(
    eager, endpoint, merchant, receiver, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        emit(merchant)
        raise RuntimeError("the payment failed")
    assert callbacks == []
    assert receiver.requests == []
    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_a_committed_event_is_delivered_by_the_queued_task(
    eager, endpoint, merchant, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        emit(merchant)
    assert len(callbacks) == 1
    assert len(receiver.requests) == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 1


# The body and its signature


def test_the_body_is_the_event_serialised_once_and_sent_byte_for_byte(frozen, delivery, receiver):
    webhook_delivery_attempt(delivery=delivery)
    [request] = receiver.requests
    event = delivery.event
    assert request.body == event.payload.encode()
    assert json.loads(request.body) == {
        "id": event.reference,
        "livemode": True,
        "type": "authorization.approved",
        "created": int(START.timestamp()),
        "data": DATA,
    }
    compact_sorted = json.dumps(
        json.loads(request.body), separators=(",", ":"), sort_keys=True, ensure_ascii=False
    )
    assert request.body == compact_sorted.encode()
    assert request.headers["Content-Type"].startswith("application/json")
    assert event.reference.startswith("evt_")


def test_the_signature_verifies_with_the_endpoint_secret(frozen, delivery, endpoint, receiver):
    webhook_delivery_attempt(delivery=delivery)
    [request] = receiver.requests
    header = request.headers[SIGNATURE_HEADER]
    assert header.startswith(f"t={int(START.timestamp())},v1=")
    assert (
        webhook_signature_verify(payload=request.body, header=header, secret=endpoint.secret)
        is None
    )


@pytest.fixture
def signed(frozen, delivery, endpoint, receiver):
    """The body, signature header and secret of one webhook received at START."""
    webhook_delivery_attempt(delivery=delivery)
    [request] = receiver.requests
    return request.body, request.headers[SIGNATURE_HEADER], endpoint.secret


def test_a_tampered_body_is_refused(signed):
    body, header, secret = signed
    tampered = body.replace(b"1250", b"9250")
    with pytest.raises(webhooks.WebhookSignatureError) as refused:
        webhook_signature_verify(payload=tampered, header=header, secret=secret)
    assert refused.value.code == "signature_mismatch"


def test_a_wrong_secret_is_refused(signed):
    body, header, _ = signed
    with pytest.raises(webhooks.WebhookSignatureError) as refused:
        webhook_signature_verify(payload=body, header=header, secret="whsec_not_this_one")
    assert refused.value.code == "signature_mismatch"


@pytest.mark.parametrize(("offset", "accepted"), [(300, True), (301, False), (-301, False)])
def test_a_signature_older_or_newer_than_the_tolerance_is_refused(signed, offset, accepted):
    body, header, secret = signed
    now = START.timestamp() + offset
    if accepted:
        webhook_signature_verify(payload=body, header=header, secret=secret, now=now)
        return
    with pytest.raises(webhooks.WebhookSignatureError) as refused:
        webhook_signature_verify(payload=body, header=header, secret=secret, now=now)
    assert refused.value.code == "signature_stale"


@pytest.mark.parametrize(
    "header",
    ["", "garbage", "t=1741597200", "v1=abc", "t=abc,v1=abc", "t=1,t=2,v1=abc", "t=²,v1=abc"],
)
def test_a_malformed_signature_header_is_refused(signed, header):
    body, _, secret = signed
    with pytest.raises(webhooks.WebhookSignatureError) as refused:
        webhook_signature_verify(payload=body, header=header, secret=secret)
    assert refused.value.code == "signature_malformed"


def test_one_matching_signature_among_several_is_enough(signed):
    body, header, secret = signed
    t, v1 = header.split(",")
    webhook_signature_verify(payload=body, header=f"{t},v1={'0' * 64},{v1}", secret=secret)


def test_a_retry_sends_the_same_body_signed_anew(frozen, delivery, endpoint, receiver):
    receiver.answers = [500]
    webhook_delivery_attempt(delivery=delivery)
    attempt_at(START + RETRY_DELAYS[0], delivery, frozen)
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers[SIGNATURE_HEADER] != second.headers[SIGNATURE_HEADER]
    webhook_signature_verify(
        payload=second.body,
        header=second.headers[SIGNATURE_HEADER],
        secret=endpoint.secret,
        now=(START + RETRY_DELAYS[0]).timestamp(),
    )


# Attempts and the backoff schedule


def test_a_500_then_a_200_gives_two_recorded_attempts_and_a_succeeded_delivery(
    frozen, delivery, receiver
):
    # given a server that fails once, then answers
    receiver.answers = [500]
    # when the first attempt is made
    first = webhook_delivery_attempt(delivery=delivery)
    # then it is recorded and the next one is due after the first delay
    assert first.number == 1
    assert first.status_code == 500
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.next_attempt_at == START + RETRY_DELAYS[0]
    assert delivery.last_status_code == 500
    # and nothing is sent before that
    assert attempt_at(START + RETRY_DELAYS[0] - timedelta(seconds=1), delivery, frozen) is None
    assert len(receiver.requests) == 1
    # when the delay has passed
    second = attempt_at(START + RETRY_DELAYS[0], delivery, frozen)
    # then the delivery succeeded on its second attempt
    assert second.number == 2
    assert second.status_code == 200
    assert len(receiver.requests) == 2
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempts == 2
    assert delivery.delivered_at == START + RETRY_DELAYS[0]
    assert delivery.next_attempt_at is None
    assert delivery.last_error == ""
    assert list(delivery.attempt_log.values_list("number", "status_code")) == [(1, 500), (2, 200)]


def test_after_the_last_attempt_the_delivery_is_failed(frozen, delivery, receiver):
    receiver.answers = [503] * MAX_ATTEMPTS
    now = START
    for number in range(1, MAX_ATTEMPTS + 1):
        attempt = attempt_at(now, delivery, frozen)
        assert attempt.number == number
        if number < MAX_ATTEMPTS:
            assert delivery.status == WebhookDelivery.Status.PENDING
            assert delivery.next_attempt_at - now == RETRY_DELAYS[number - 1]
            now = delivery.next_attempt_at
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.next_attempt_at is None
    assert delivery.attempts == MAX_ATTEMPTS == len(RETRY_DELAYS) + 1
    assert delivery.last_error == "HTTP 503"
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == MAX_ATTEMPTS
    # and a failed delivery is not attempted again
    assert attempt_at(now + timedelta(days=30), delivery, frozen) is None
    assert len(receiver.requests) == MAX_ATTEMPTS


def test_a_refused_connection_is_a_failed_attempt(frozen, merchant):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhook_endpoint_create(merchant=merchant, url=f"http://127.0.0.1:{port}/hook")
    delivery = WebhookDelivery.objects.get(event=emit(merchant))
    attempt = webhook_delivery_attempt(delivery=delivery)
    assert attempt.status_code is None
    assert attempt.error.startswith("Could not connect")
    assert attempt.duration_ms is not None
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.next_attempt_at == START + RETRY_DELAYS[0]


def test_an_answer_too_slow_is_a_failed_attempt(frozen, delivery, receiver, monkeypatch):
    monkeypatch.setattr(webhooks, "TIMEOUT", (1, 0.2))
    receiver.hold = threading.Event()
    attempt = webhook_delivery_attempt(delivery=delivery)
    receiver.hold.set()
    assert attempt.status_code is None
    assert attempt.error == "No answer within 0.2 s."
    assert delivery.status == WebhookDelivery.Status.PENDING


def test_a_redirect_is_not_followed(frozen, delivery, receiver):
    receiver.answers = [302]
    receiver.answer_headers = {"Location": receiver.url("/elsewhere")}
    attempt = webhook_delivery_attempt(delivery=delivery)
    assert receiver.paths() == ["/hook"]
    assert attempt.status_code == 302
    assert "redirects are not followed" in attempt.error
    assert delivery.status == WebhookDelivery.Status.PENDING


def test_an_unexpected_error_is_a_recorded_failed_attempt(frozen, delivery, monkeypatch):
    def broken(*args):
        raise UnicodeError("label too long")

    monkeypatch.setattr(webhooks, "_post", broken)
    attempt = webhook_delivery_attempt(delivery=delivery)
    assert attempt.error == "Internal error (UnicodeError)."
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.next_attempt_at == START + RETRY_DELAYS[0]


def test_the_answer_is_kept_to_its_first_500_characters(frozen, delivery, receiver):
    receiver.answer_body = "x" * 5_000
    attempt = webhook_delivery_attempt(delivery=delivery)
    assert attempt.response_excerpt == "x" * 500


def test_the_secret_appears_in_no_log_and_no_record(frozen, delivery, endpoint, receiver, caplog):
    receiver.answers = [500]
    caplog.set_level("DEBUG")
    webhook_delivery_attempt(delivery=delivery)
    attempt_at(START + RETRY_DELAYS[0], delivery, frozen)
    assert endpoint.secret not in caplog.text
    for attempt in delivery.attempt_log.all():
        assert endpoint.secret not in attempt.error + attempt.response_excerpt
    assert endpoint.secret not in delivery.last_error


# Who gets what


def test_an_endpoint_not_subscribed_to_the_type_gets_nothing(
    eager, merchant, receiver, django_capture_on_commit_callbacks
):
    webhook_endpoint_create(
        merchant=merchant, url=receiver.url("/captures"), enabled_events=["payment.captured"]
    )
    webhook_endpoint_create(merchant=merchant, url=receiver.url("/all"))
    with django_capture_on_commit_callbacks(execute=True):
        emit(merchant, EventType.AUTHORIZATION_APPROVED)
    assert receiver.paths() == ["/all"]
    assert WebhookDelivery.objects.count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        emit(merchant, EventType.PAYMENT_CAPTURED)
    assert sorted(receiver.paths()) == ["/all", "/all", "/captures"]


def test_an_inactive_endpoint_or_another_merchants_gets_nothing(merchant, receiver):
    webhook_endpoint_create(merchant=merchant, url=receiver.url("/off"), is_active=False)
    webhook_endpoint_create(merchant=make_merchant(), url=receiver.url("/other"))
    event = emit(merchant)
    assert not event.deliveries.exists()


def test_an_endpoint_disabled_before_the_attempt_is_not_sent_to(
    frozen, delivery, endpoint, receiver
):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    assert webhook_delivery_attempt(delivery=delivery) is None
    assert receiver.requests == []
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.last_error == "The endpoint was disabled."


def test_every_event_type_can_be_emitted(merchant):
    assert set(EventType.values) == {
        "authorization.approved",
        "authorization.partially_approved",
        "authorization.declined",
        "authorization.reversed",
        "authorization.expired",
        "payment.captured",
        "refund.succeeded",
    }
    for event_type in EventType.values:
        assert emit(merchant, event_type).type == event_type


def test_an_unknown_event_type_is_refused(merchant):
    with pytest.raises(ValueError, match="unknown webhook event type"):
        emit(merchant, "payment.teleported")


def test_emitting_costs_a_fixed_number_of_queries(merchant, receiver, django_assert_num_queries):
    webhook_endpoint_create(merchant=merchant, url=receiver.url("/a"))
    webhook_endpoint_create(merchant=merchant, url=receiver.url("/b"))
    # the event, the endpoints, one delivery each
    with django_assert_num_queries(4):
        emit(merchant)


def test_an_event_cannot_be_changed(merchant):
    event = emit(merchant)
    event.data = {"amount": 1}
    with pytest.raises(ValueError, match="immutable"):
        event.save()


def test_data_with_dates_and_decimals_is_serialised(merchant):
    from decimal import Decimal

    event = emit(merchant, data={"at": START, "rate": Decimal("1.50")})
    assert event.data == {"at": "2025-03-10T09:00:00Z", "rate": "1.50"}


# Sent once


def test_running_the_task_twice_on_a_succeeded_delivery_sends_once(frozen, delivery, receiver):
    assert deliver_webhook(delivery.pk) == WebhookDelivery.Status.SUCCEEDED
    assert deliver_webhook(delivery.pk) == WebhookDelivery.Status.SUCCEEDED
    assert len(receiver.requests) == 1
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1


def test_the_task_queues_the_next_try_for_when_it_is_due(frozen, delivery, receiver, monkeypatch):
    queued = []
    monkeypatch.setattr(
        deliver_webhook, "apply_async", lambda args, countdown: queued.append((args, countdown))
    )
    receiver.answers = [500]
    assert deliver_webhook(delivery.pk) == WebhookDelivery.Status.PENDING
    assert queued == [([delivery.pk], RETRY_DELAYS[0].total_seconds())]
    # a message that arrives early sends nothing and queues nothing more
    assert deliver_webhook(delivery.pk) == WebhookDelivery.Status.PENDING
    assert len(receiver.requests) == 1
    assert len(queued) == 1


def test_eager_retries_stop_at_the_backoff(eager, frozen, delivery, receiver):
    receiver.answers = [500]
    deliver_webhook.delay(delivery.pk)
    delivery.refresh_from_db()
    assert len(receiver.requests) == 1
    assert delivery.next_attempt_at == START + RETRY_DELAYS[0]


def test_an_attempt_under_way_is_not_made_twice(frozen, delivery, receiver):
    # given a worker that claimed the attempt and is waiting for the answer
    claimed = webhooks._claim(delivery)
    assert claimed.number == 1
    # when a duplicate message runs meanwhile
    assert webhook_delivery_attempt(delivery=delivery) is None
    # then nothing is sent, until the lease of the first worker has run out
    assert receiver.requests == []
    later = attempt_at(START + webhooks.ATTEMPT_LEASE, delivery, frozen)
    assert later.number == 2
    assert len(receiver.requests) == 1
    # and the first attempt keeps its "interrupted" record
    assert WebhookAttempt.objects.get(pk=claimed.pk).error.startswith("Interrupted")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_once(receiver, monkeypatch):
    # given a committed delivery whose queued message is kept off the broker
    monkeypatch.setattr(tasks.deliver_webhook, "delay", lambda delivery_id: None)
    merchant = make_merchant()
    webhook_endpoint_create(merchant=merchant, url=receiver.url())
    delivery = WebhookDelivery.objects.get(event=emit(merchant))
    # when eight workers attempt it at once
    outcomes = run_together(
        [
            lambda: webhook_delivery_attempt(delivery=WebhookDelivery.objects.get(pk=delivery.pk))
            for _ in range(8)
        ]
    )
    # then one sends, the others find it taken
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len([outcome for outcome in outcomes if outcome is not None]) == 1
    assert len(receiver.requests) == 1
    assert WebhookAttempt.objects.count() == 1


# The periodic re-queue


def test_retry_due_webhooks_requeues_only_overdue_pending_deliveries(
    frozen, endpoint, merchant, monkeypatch
):
    # given deliveries in every state
    def delivery(**state):
        made = WebhookDelivery.objects.get(event=emit(merchant))
        WebhookDelivery.objects.filter(pk=made.pk).update(**state)
        return made

    pending = WebhookDelivery.Status.PENDING
    overdue = delivery(status=pending, next_attempt_at=START - timedelta(minutes=5))
    delivery(status=pending, next_attempt_at=START - timedelta(seconds=30))  # message on its way
    delivery(status=pending, next_attempt_at=START + timedelta(minutes=10))  # not due
    delivery(status=WebhookDelivery.Status.SUCCEEDED, next_attempt_at=None)
    delivery(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    queued = []
    monkeypatch.setattr(tasks.deliver_webhook, "delay", queued.append)
    # when the periodic task runs
    count = retry_due_webhooks()
    # then only the overdue pending delivery is queued again
    assert queued == [overdue.pk]
    assert count == 1


def test_retry_due_webhooks_is_on_the_beat_schedule(settings):
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "merchants.tasks.retry_due_webhooks" in tasks_scheduled


# Endpoints and their URLs


def test_an_endpoint_gets_its_own_signing_secret(merchant):
    first = webhook_endpoint_create(merchant=merchant, url="https://hooks.example.com/a")
    second = webhook_endpoint_create(merchant=merchant, url="https://hooks.example.com/b")
    assert first.secret.startswith("whsec_")
    assert len(first.secret) >= len("whsec_") + 43  # 32 random bytes, base64url
    assert first.secret != second.secret
    assert first.secret not in first.masked_secret


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://hooks.example.com/hook", "url_scheme"),
        ("http://hooks.example.com/hook", "url_scheme"),
        ("javascript:alert(1)", "url_scheme"),
        ("https://user:password@hooks.example.com/hook", "url_credentials"),
        ("https://hooks.example.com@evil.example/hook", "url_credentials"),
        ("https://10.0.0.5/hook", "url_private_address"),
        ("https://169.254.169.254/latest/meta-data", "url_private_address"),
        ("https://[::ffff:10.0.0.1]/hook", "url_private_address"),
        # IPv6 forms that carry a local IPv4 address: mapped, compatible, NAT64, 6to4, Teredo.
        ("https://[::ffff:127.0.0.1]/hook", "url_private_address"),
        ("https://[::127.0.0.1]/hook", "url_private_address"),
        ("https://[::a9fe:a9fe]/hook", "url_private_address"),
        ("https://[64:ff9b::7f00:1]/hook", "url_private_address"),
        ("https://[64:ff9b::a9fe:a9fe]/hook", "url_private_address"),
        ("https://[64:ff9b:1::808:808]/hook", "url_private_address"),
        ("https://[2002:7f00:1::]/hook", "url_private_address"),
        ("https://[2002:a00:1::1]/hook", "url_private_address"),
        ("https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", "url_private_address"),
        ("https://[::]/hook", "url_private_address"),
        ("http://127.0.0.1:8000/hook", "url_local"),
        ("https://localhost/hook", "url_local"),
    ],
)
def test_an_unsafe_url_is_refused(settings, merchant, url, code):
    settings.WEBHOOKS_ALLOW_INSECURE_LOCALHOST = False
    settings.DEBUG = False
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(merchant=merchant, url=url)
    assert code in [error.code for error in refused.value.error_dict["url"]]


@pytest.mark.parametrize(
    ("url", "debug", "allowed"),
    [
        ("https://hooks.example.com/aid?shop=12", False, False),
        ("https://93.184.215.14/hook", False, False),
        ("https://[2606:4700:4700::1111]/hook", False, False),
        ("https://[64:ff9b::808:808]/hook", False, False),
        ("http://127.0.0.1:8000/hook", False, True),
        ("http://localhost:9000/hook", True, False),
    ],
)
def test_a_safe_url_is_accepted(settings, merchant, url, debug, allowed):
    settings.DEBUG = debug
    settings.WEBHOOKS_ALLOW_INSECURE_LOCALHOST = allowed
    assert webhook_endpoint_create(merchant=merchant, url=url).url == url


def test_unknown_event_types_are_refused_on_an_endpoint(merchant):
    with pytest.raises(ValidationError) as refused:
        webhook_endpoint_create(
            merchant=merchant, url="https://hooks.example.com/", enabled_events=["payment.lost"]
        )
    assert refused.value.error_dict["enabled_events"][0].code == "invalid_event_types"


def test_a_host_that_resolves_to_a_private_address_is_not_sent_to(frozen, merchant, monkeypatch):
    webhook_endpoint_create(merchant=merchant, url="https://hooks.example.com/hook")
    delivery = WebhookDelivery.objects.get(event=emit(merchant))
    monkeypatch.setattr(
        webhooks.socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443))],
    )

    def no_request(*args, **kwargs):
        raise AssertionError("a request was made")

    monkeypatch.setattr(requests.Session, "post", no_request)
    attempt = webhook_delivery_attempt(delivery=delivery)
    assert attempt.status_code is None
    assert attempt.error == "This URL's host resolves to a private or internal address."


@pytest.mark.parametrize("resolved", ["::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1"])
def test_a_host_that_resolves_to_an_ipv6_form_of_a_private_address_is_not_sent_to(
    frozen, merchant, monkeypatch, resolved
):
    webhook_endpoint_create(merchant=merchant, url="https://hooks.example.com/hook")
    delivery = WebhookDelivery.objects.get(event=emit(merchant))
    monkeypatch.setattr(
        webhooks.socket,
        "getaddrinfo",
        lambda *args, **kwargs: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (resolved, 443))],
    )

    attempt = webhook_delivery_attempt(delivery=delivery)

    assert attempt.status_code is None
    assert attempt.error == "This URL's host resolves to a private or internal address."


class Listener:
    """A TCP server on 127.0.0.1 that only counts the connections it accepts."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def stop(self):
        self.running = False
        self.thread.join()
        self.socket.close()


def test_a_dns_answer_that_changes_after_the_check_does_not_reach_the_local_address(
    frozen, merchant, monkeypatch
):
    # given a host name that resolves to a public address when checked, then to 127.0.0.1
    listener = Listener()
    url = f"https://rebinding.example.com:{listener.port}/hook"
    webhook_endpoint_create(merchant=merchant, url=url)
    delivery = WebhookDelivery.objects.get(event=emit(merchant))
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.215.14"])

    def rebinding(host, port, *args, **kwargs):
        if host != "rebinding.example.com":
            return real_getaddrinfo(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(webhooks, "TIMEOUT", (0.5, 0.5))
    monkeypatch.setattr(webhooks, "DEADLINE", 1)

    # when the webhook is sent
    try:
        attempt = webhook_delivery_attempt(delivery=delivery)
    finally:
        listener.stop()

    # then the connection went to the address checked, never to 127.0.0.1
    assert listener.accepted == 0
    assert attempt.status_code is None


def test_an_answer_trickling_in_is_given_up_at_the_deadline(
    frozen, delivery, receiver, monkeypatch
):
    # Every header comes within the read timeout; the whole answer would take 5 s.
    monkeypatch.setattr(webhooks, "TIMEOUT", (1, 1))
    monkeypatch.setattr(webhooks, "DEADLINE", 0.5)
    receiver.drip = True

    attempt = webhook_delivery_attempt(delivery=delivery)

    assert attempt.status_code is None
    assert attempt.error == "No complete answer within 0.5 s."
    assert attempt.duration_ms < 2000


def test_proxies_set_in_the_environment_are_not_used(frozen, delivery, receiver, monkeypatch):
    # Nothing listens on port 9 (discard): a webhook sent through the proxy would fail.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    assert webhook_delivery_attempt(delivery=delivery).status_code == 200
    assert receiver.paths() == ["/hook"]


def test_a_local_url_is_no_longer_sent_to_once_the_setting_is_off(
    frozen, settings, delivery, receiver
):
    settings.WEBHOOKS_ALLOW_INSECURE_LOCALHOST = False
    attempt = webhook_delivery_attempt(delivery=delivery)
    assert receiver.requests == []
    assert attempt.error == "A local address is accepted only in development."


# The admin


def test_creating_an_endpoint_in_the_admin_shows_its_secret_once(admin_client, merchant):
    response = admin_client.post(
        reverse("admin:merchants_webhookendpoint_add"),
        {
            "merchant": merchant.pk,
            "url": "https://hooks.example.com/aid",
            "enabled_events": ["payment.captured", "refund.succeeded"],
            "is_active": "on",
        },
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.enabled_events == ["payment.captured", "refund.succeeded"]
    shown = [str(message) for message in get_messages(response.wsgi_request)]
    shown += [str(message) for message in response.context["messages"]]
    assert any(endpoint.secret in message for message in shown)
    page = admin_client.get(reverse("admin:merchants_webhookendpoint_change", args=[endpoint.pk]))
    assert page.status_code == 200
    assert endpoint.secret not in page.content.decode()
    assert endpoint.masked_secret in page.content.decode()


def test_the_admin_refuses_an_unsafe_url(admin_client, merchant, settings):
    settings.WEBHOOKS_ALLOW_INSECURE_LOCALHOST = False
    response = admin_client.post(
        reverse("admin:merchants_webhookendpoint_add"),
        {"merchant": merchant.pk, "url": "https://u:p@hooks.example.com/", "is_active": "on"},
    )
    assert response.status_code == 200  # the form again, with its error
    assert not WebhookEndpoint.objects.exists()


def test_events_and_deliveries_are_shown_read_only(admin_client, frozen, delivery):
    webhook_delivery_attempt(delivery=delivery)
    pages = [
        reverse("admin:merchants_webhookevent_changelist"),
        reverse("admin:merchants_webhookevent_change", args=[delivery.event_id]),
        reverse("admin:merchants_webhookdelivery_changelist"),
        reverse("admin:merchants_webhookdelivery_change", args=[delivery.pk]),
    ]
    for page in pages:
        assert admin_client.get(page).status_code == 200
    assert admin_client.get(reverse("admin:merchants_webhookevent_add")).status_code == 403


def test_resend_in_the_admin_queues_a_new_attempt(
    admin_client, eager, frozen, delivery, receiver, django_capture_on_commit_callbacks
):
    # given a delivery that failed for good
    receiver.answers = [500] * MAX_ATTEMPTS
    now = START
    while delivery.status == WebhookDelivery.Status.PENDING:
        attempt_at(now, delivery, frozen)
        now = delivery.next_attempt_at or now
    assert delivery.status == WebhookDelivery.Status.FAILED
    # when it is sent again from the admin
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:merchants_webhookdelivery_changelist"),
            {"action": "resend", "_selected_action": [delivery.pk]},
        )
    assert response.status_code == 302
    # then one more attempt was made, and succeeded
    delivery.refresh_from_db()
    assert len(receiver.requests) == MAX_ATTEMPTS + 1
    assert delivery.attempts == MAX_ATTEMPTS + 1
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
