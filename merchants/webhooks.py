"""Webhooks out: events about a merchant's payments, POSTed to the merchant's endpoints, signed.

An event is written in the transaction that moves the money, with one pending delivery per
endpoint that wants it; the first attempt is queued only when that transaction commits, so
nothing leaves for a payment that was rolled back. Each attempt is recorded. A failed attempt is
retried on a fixed backoff schedule until it succeeds or the schedule runs out. Delivery is at
least once: a merchant deduplicates on the event's `id`.

The body of an event is serialised once, when the event is written, and sent byte for byte on
every attempt; the signature covers a timestamp and that body, as Stripe's does:

    Aidwallet-Signature: t=1741597200,v1=<hex HMAC-SHA256(secret, "1741597200." + body)>

`webhook_signature_verify` is what a merchant runs on its side; it needs nothing but the
standard library, so it can be copied as it is.
"""

import hashlib
import hmac
import json
import logging
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from core import metrics
from core.one_statement import OneStatement
from core.outbound import DeadlineExceeded, OutboundSession
from core.request_id import HEADER as REQUEST_ID_HEADER
from core.request_id import request_id
from merchants import tasks
from merchants.events import EventType
from merchants.models import Merchant
from merchants.models.webhooks import (
    ERROR_LENGTH,
    EXCERPT_LENGTH,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from merchants.validators import (
    _is_loopback,
    _is_public,
    validate_webhook_url,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Aidwallet-Signature"
SIGNATURE_TOLERANCE = 300  # seconds a signed timestamp stays acceptable, either side of now
USER_AGENT = "Aidwallet-Webhooks/1.0"

# Attempt n (from 1) that fails is retried RETRY_DELAYS[n - 1] later; the first attempt plus one
# retry per delay, then the delivery is failed: about 31 hours in all.
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=24),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT = (5, 5)  # seconds to connect, seconds between bytes of the answer
DEADLINE = 15  # seconds for the whole exchange, however the answer trickles in
# While an attempt is under way its delivery is not due: a second worker (a duplicate message,
# the periodic re-queue) leaves it alone. Longer than an attempt can take; if the worker dies,
# the delivery is due again when the lease ends.
ATTEMPT_LEASE = timedelta(minutes=2)
# The periodic re-queue picks up deliveries overdue by more than this: the message scheduled for
# them was lost. Deliveries due just now have their message on the way or in a busy queue.
REQUEUE_GRACE = timedelta(minutes=1)
_READ_LIMIT = 4 * EXCERPT_LENGTH  # bytes of an answer read at most


# Signatures. Merchants may copy from here to webhook_signature_verify: standard library only.


class WebhookSignatureError(ValueError):
    """The signature of a webhook does not prove that we sent this body just now."""

    code = "signature_invalid"


class WebhookSignatureMalformed(WebhookSignatureError):
    code = "signature_malformed"


class WebhookSignatureStale(WebhookSignatureError):
    code = "signature_stale"


class WebhookSignatureMismatch(WebhookSignatureError):
    code = "signature_mismatch"


def _signature(secret: str, timestamp: int, payload: bytes) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def webhook_signature_header(*, payload: bytes, secret: str, timestamp: int) -> str:
    """The value of the Aidwallet-Signature header for this body at this time."""
    return f"t={timestamp},v1={_signature(secret, timestamp, payload)}"


def webhook_signature_verify(
    *,
    payload: bytes,
    header: str,
    secret: str,
    tolerance: int = SIGNATURE_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check the Aidwallet-Signature `header` of a webhook against its raw body `payload` (the
    bytes received, before any JSON parsing) and the endpoint's signing `secret`. Returns None
    when the webhook is genuine and recent; raises WebhookSignatureMalformed,
    WebhookSignatureMismatch or WebhookSignatureStale otherwise. `now` is a Unix time (seconds),
    the current time by default. Several v1 signatures may be present: one matching is enough."""
    if isinstance(payload, str):
        payload = payload.encode()
    timestamp = None
    signatures = []
    for item in (header or "").split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookSignatureMalformed("The signature header is not of the form t=...,v1=...")
        if key == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                raise WebhookSignatureMalformed("The signature header needs one t=<unix time>.")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
        # Other keys are other schemes (v0, a future v2): ignored, as Stripe's are.
    if timestamp is None or not signatures:
        raise WebhookSignatureMalformed("The signature header needs t=<unix time> and v1=<hex>.")
    expected = _signature(secret, timestamp, payload).encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise WebhookSignatureMismatch(
            "No signature matches this body and secret: the body was changed, or the secret is "
            "not this endpoint's."
        )
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureStale(
            f"The signature was made {int(now - timestamp)} s from now, outside the tolerance "
            f"of {tolerance} s: a replay, or a clock that is off."
        )


# Where webhooks may go.


def _checked_address(url: str) -> str | None:
    """Just before sending: the URL is still acceptable (settings may have changed since it was
    saved) and its host name resolves to public addresses only. Returns the address to connect
    to, one of those checked (None for a local URL accepted in development): the request goes
    there, not to what a second DNS answer would say (rebinding)."""
    validate_webhook_url(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _is_loopback(host):
        return None  # accepted by validate_webhook_url under the development setting
    try:
        addresses = [
            info[4][0]
            for info in socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        ]
    except OSError as exc:
        raise ValidationError(_("The host name of this URL does not resolve.")) from exc
    if not addresses or not all(_is_public(address) for address in addresses):
        raise ValidationError(_("This URL's host resolves to a private or internal address."))
    return addresses[0]


# Models


# Services


def webhook_endpoint_create(
    *,
    merchant: Merchant,
    url: str,
    enabled_events: list[str] | None = None,
    is_active: bool = True,
    livemode: bool = True,
) -> WebhookEndpoint:
    """Register an endpoint with a new signing secret (endpoint.secret, to show the merchant)."""
    endpoint = WebhookEndpoint(
        merchant=merchant,
        url=url,
        enabled_events=list(dict.fromkeys(enabled_events or [])),
        is_active=is_active,
        livemode=livemode,
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Stop sending to an endpoint. It is kept, with its deliveries, for the history."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    endpoint.refresh_from_db()
    return endpoint


def _queue_delivery(delivery_id: int) -> None:
    # robust: the money's transaction has committed; a broker that is down must not turn the
    # payment into an error. The delivery stays pending and retry_due_webhooks queues it.
    transaction.on_commit(lambda: tasks.deliver_webhook.delay(delivery_id), robust=True)


# Django's Choices.values builds its list at each read: once here, not once a payment.
_EVENT_TYPES = frozenset(EventType.values)


def webhook_event_emit(
    *,
    merchant_id: int,
    event_type: str,
    data: dict,
    livemode: bool = True,
    writes: OneStatement | None = None,
) -> WebhookEvent:
    """Record that `event_type` happened to the merchant `merchant_id` with `data`
    (JSON-serialisable; datetimes and decimals become strings) and deliver it to each active
    endpoint subscribed to the type, once the surrounding transaction commits. Call it inside the
    transaction that moves the money: if that rolls back, the event and its deliveries do too
    and nothing is sent. A sandbox event (`livemode` false) goes to test endpoints only, a live
    one to live endpoints only. With `writes`, the event and its deliveries are added to the
    caller's one statement instead (the endpoints are read there too), the event's id set once
    it has run."""
    if event_type not in _EVENT_TYPES:
        raise ValueError(f"unknown webhook event type: {event_type!r}")
    if not isinstance(data, dict):
        raise TypeError("webhook event data must be a dict")
    # No savepoint: a failure here belongs to the caller's transaction, which must not commit
    # the money without its event.
    with transaction.atomic(savepoint=False):
        created = timezone.now()
        event = WebhookEvent(
            merchant_id=merchant_id,
            type=event_type,
            livemode=livemode,
            created_at=created,
            request_id=request_id(),
        )
        payload = json.dumps(
            {
                "id": event.reference,
                "livemode": livemode,
                "type": event_type,
                "created": int(created.timestamp()),
                "data": data,
            },
            cls=DjangoJSONEncoder,
            separators=(",", ":"),
            sort_keys=True,
            ensure_ascii=False,
        )
        event.payload = payload
        event.data = json.loads(payload)["data"]
        if writes is not None:
            _emit_in(writes, event)
            return event
        event.save()
        for endpoint in WebhookEndpoint.objects.filter(
            merchant_id=merchant_id, livemode=livemode, is_active=True
        ):
            if endpoint.subscribes_to(event_type):
                delivery = WebhookDelivery.objects.create(
                    event=event, endpoint=endpoint, next_attempt_at=created
                )
                _queue_delivery(delivery.pk)
    return event


def _emit_in(writes: OneStatement, event: WebhookEvent) -> None:
    """The event, and a delivery to each endpoint that wants it, in the caller's one statement;
    a merchant with no endpoint gets the event alone (its record, listed by the API)."""
    writes.insert(event)
    deliveries = WebhookDelivery._meta.db_table
    writes.insert_select(
        f"""INSERT INTO {deliveries} (event_id, endpoint_id, status, attempts, next_attempt_at,
                last_error, created_at)
            SELECT {{row}}, ep.id, %s, 0, %s, '', %s FROM {WebhookEndpoint._meta.db_table} ep
            WHERE ep.merchant_id = %s AND ep.livemode = %s AND ep.is_active
              AND (COALESCE(jsonb_array_length(ep.enabled_events), 0) = 0
                   OR ep.enabled_events @> jsonb_build_array(%s::text))
            ORDER BY ep.id
            RETURNING id""",
        [
            WebhookDelivery.Status.PENDING,
            event.created_at,
            event.created_at,
            event.merchant_id,
            event.livemode,
            event.type,
        ],
        then=lambda ids: [_queue_delivery(delivery_id) for delivery_id in ids],
    )


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue one more attempt now, whatever the delivery's state. Once attempts are spent, a
    resend that fails fails the delivery again; otherwise the retry schedule resumes."""
    with transaction.atomic(savepoint=False):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now()
        )
        _queue_delivery(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def _claim(delivery: WebhookDelivery) -> WebhookAttempt | None:
    """Take the next attempt of a due, pending delivery, or None if it is not ours to make: not
    pending, not due yet, already under way, or taken by another worker in the meantime. The
    conditional UPDATE is the lock: of two workers, one matches the row, the other none."""
    now = timezone.now()
    with transaction.atomic():
        current = (
            WebhookDelivery.objects.select_related("endpoint")
            .filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if current is None:
            return None
        if not current.endpoint.is_active:
            WebhookDelivery.objects.filter(
                pk=current.pk, status=WebhookDelivery.Status.PENDING, attempts=current.attempts
            ).update(
                status=WebhookDelivery.Status.FAILED,
                next_attempt_at=None,
                last_error="The endpoint was disabled.",
            )
            return None
        claimed = WebhookDelivery.objects.filter(
            pk=current.pk,
            status=WebhookDelivery.Status.PENDING,
            attempts=current.attempts,
            next_attempt_at__lte=now,
        ).update(attempts=F("attempts") + 1, next_attempt_at=now + ATTEMPT_LEASE)
        if not claimed:
            return None
        return WebhookAttempt.objects.create(
            delivery=current,
            number=current.attempts + 1,
            started_at=now,
            error="Interrupted before an answer was recorded.",
        )


def _short(text: str) -> str:
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 1] + "…"


def _read_excerpt(response: requests.Response) -> str:
    body = b""
    try:
        for chunk in response.iter_content(chunk_size=_READ_LIMIT):
            body += chunk
            if len(body) >= _READ_LIMIT:
                break
    except requests.RequestException:
        pass  # the status is the answer; the body is only shown to help
    return body.decode("utf-8", errors="replace")[:EXCERPT_LENGTH]


def _post(url: str, body: bytes, headers: dict) -> tuple[int | None, str, str]:
    """POST once, to the address checked; (status code or None, error or "", start of the
    answer). Never follows a redirect, never reads proxies or credentials from the environment
    (.netrc), gives up at DEADLINE (core.outbound)."""
    try:
        address = _checked_address(url)
    except ValidationError as exc:
        with translation.override("en"):  # attempts' errors are technical, in English
            return None, _short(" ".join(str(message) for message in exc.messages)), ""
    try:
        with (
            OutboundSession(deadline=DEADLINE, address=address) as session,
            session.post(url, data=body, headers=headers, timeout=TIMEOUT, stream=True) as response,
        ):
            excerpt = _read_excerpt(response)
            status = response.status_code
    except DeadlineExceeded:
        return None, f"No complete answer within {DEADLINE} s.", ""
    except requests.ConnectTimeout:
        return None, f"Could not connect within {TIMEOUT[0]} s.", ""
    except requests.Timeout:
        return None, f"No answer within {TIMEOUT[1]} s.", ""
    except requests.exceptions.SSLError as exc:
        return None, _short(f"TLS error: {exc}"), ""
    except requests.ConnectionError as exc:
        return None, _short(f"Could not connect: {exc}"), ""
    except requests.RequestException as exc:
        return None, _short(f"Request failed: {type(exc).__name__}: {exc}"), ""
    if 200 <= status < 300:
        error = ""
    elif 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed; use the final URL."
    else:
        error = f"HTTP {status}"
    return status, error, excerpt


def webhook_delivery_attempt(*, delivery: WebhookDelivery) -> WebhookAttempt | None:
    """Make the next attempt of `delivery` if it is pending and due: POST the event's body,
    signed now, record the attempt, and mark the delivery succeeded (2xx), failed (last attempt)
    or due again after the next delay of RETRY_DELAYS. Returns the attempt, or None when nothing
    was sent (not pending, not due, or another worker's). `delivery` is refreshed."""
    attempt = _claim(delivery)
    if attempt is None:
        delivery.refresh_from_db()
        return None
    claimed = attempt.delivery
    endpoint = claimed.endpoint
    event = WebhookEvent.objects.only("reference", "payload", "created_at", "request_id").get(
        pk=claimed.event_id
    )
    body = event.payload.encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: webhook_signature_header(
            payload=body, secret=endpoint.secret, timestamp=int(time.time())
        ),
    }
    if event.request_id:
        headers[REQUEST_ID_HEADER] = event.request_id
    started = time.monotonic()
    try:
        status, error, excerpt = _post(endpoint.url, body, headers)
    except Exception as exc:
        # Whatever went wrong, the attempt is recorded and the schedule goes on: a delivery
        # must not stay claimed by a worker that crashed on it again and again.
        logger.exception("webhook %s: attempt %s failed", event.reference, attempt.number)
        status, error, excerpt = None, f"Internal error ({type(exc).__name__}).", ""
    duration_ms = max(0, int((time.monotonic() - started) * 1000))

    now = timezone.now()
    changes = {"last_status_code": status, "last_error": error}
    if status is not None and 200 <= status < 300:
        changes.update(
            status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now, next_attempt_at=None
        )
    elif attempt.number >= MAX_ATTEMPTS:
        changes.update(status=WebhookDelivery.Status.FAILED, next_attempt_at=None)
    else:
        changes.update(next_attempt_at=now + RETRY_DELAYS[attempt.number - 1])
    with transaction.atomic():
        attempt.duration_ms = duration_ms
        attempt.status_code = status
        attempt.error = error
        attempt.response_excerpt = excerpt
        attempt.save(update_fields=["duration_ms", "status_code", "error", "response_excerpt"])
        # Still ours only if no later attempt took over (a lease that ran out).
        settled = WebhookDelivery.objects.filter(
            pk=claimed.pk, status=WebhookDelivery.Status.PENDING, attempts=attempt.number
        ).update(**changes)
    metrics.WEBHOOK_ATTEMPTS.labels(result="failed" if error else "succeeded").inc()
    if settled and changes.get("status") == WebhookDelivery.Status.SUCCEEDED:
        metrics.WEBHOOK_DELIVERY_LAG.observe((now - event.created_at).total_seconds())
    elif settled and changes.get("status") == WebhookDelivery.Status.FAILED:
        metrics.WEBHOOK_DELIVERIES_FAILED.inc()
    log = logger.info if not error else logger.warning
    log(
        "webhook %s to endpoint %s: attempt %s of %s, status %s, %s ms%s",
        event.reference,
        endpoint.pk,
        attempt.number,
        MAX_ATTEMPTS,
        status,
        duration_ms,
        f" ({error})" if error else "",
    )
    delivery.refresh_from_db()
    attempt.delivery = delivery
    return attempt


def webhook_delivery_due_ids(*, limit: int = 500) -> list[int]:
    """Pending deliveries overdue by more than REQUEUE_GRACE: their queued message was lost."""
    cutoff = timezone.now() - REQUEUE_GRACE
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=cutoff
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
