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
import ipaddress
import json
import logging
import secrets
import socket
import time
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from config.outbound import DeadlineExceeded, OutboundSession

if TYPE_CHECKING:
    from merchants.models import Merchant

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
EXCERPT_LENGTH = 500
ERROR_LENGTH = 300
_READ_LIMIT = 4 * EXCERPT_LENGTH  # bytes of an answer read at most


class EventType(models.TextChoices):
    AUTHORIZATION_APPROVED = "authorization.approved", _("Authorization approved")
    AUTHORIZATION_PARTIALLY_APPROVED = (
        "authorization.partially_approved",
        _("Authorization partially approved"),
    )
    AUTHORIZATION_DECLINED = "authorization.declined", _("Authorization declined")
    AUTHORIZATION_REVERSED = "authorization.reversed", _("Authorization reversed")
    AUTHORIZATION_EXPIRED = "authorization.expired", _("Authorization expired")
    PAYMENT_CAPTURED = "payment.captured", _("Payment captured")
    REFUND_SUCCEEDED = "refund.succeeded", _("Refund succeeded")


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

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _insecure_localhost_allowed() -> bool:
    return bool(settings.DEBUG or getattr(settings, "WEBHOOKS_ALLOW_INSECURE_LOCALHOST", False))


def _is_loopback(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Local-use NAT64 (RFC 8215): what it translates to is on the operator's own network.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# The well-known NAT64 prefix (RFC 6052): the last 32 bits are the IPv4 address reached.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to, when it carries one: IPv4-mapped
    (::ffff:a.b.c.d), 6to4 (2002:AABB:CCDD::), Teredo (server and client), NAT64
    (64:ff9b::a.b.c.d) and IPv4-compatible (::a.b.c.d, which includes :: and ::1)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    if ip in _NAT64 or int(ip) >> 32 == 0:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    return []


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])  # no IPv6 zone
    if ip.version == 6:
        if ip in _NAT64_LOCAL:
            return False
        # ::ffff:10.0.0.1 is 10.0.0.1, and 2002:7f00:1:: reaches 127.0.0.1: Python calls some of
        # these forms global, whatever they carry.
        if embedded := _embedded_ipv4(ip):
            return all(inner.is_global for inner in embedded)
    return ip.is_global


def validate_webhook_url(url: str) -> None:
    """An endpoint's URL: https to a public host, with no credentials in it. A local address
    (localhost, 127.0.0.1, ::1), over http or https, only in development (DEBUG) or where
    WEBHOOKS_ALLOW_INSECURE_LOCALHOST is set. An IP address must be a public one."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise ValidationError(_("This URL is not valid."), code="invalid_url") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValidationError(_("A webhook URL must start with https://."), code="url_scheme")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError(
            _("A webhook URL must not contain a user name or a password."), code="url_credentials"
        )
    host = parts.hostname or ""
    if not host:
        raise ValidationError(_("This URL has no host."), code="invalid_url")
    if _is_loopback(host):
        if not _insecure_localhost_allowed():
            raise ValidationError(
                _("A local address is accepted only in development."), code="url_local"
            )
        return
    if scheme != "https":
        raise ValidationError(_("A webhook URL must start with https://."), code="url_scheme")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a host name: where it points is checked when sending
    if not _is_public(host):
        raise ValidationError(
            _("A webhook URL must point to a public address."), code="url_private_address"
        )


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


def validate_event_types(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("A list of event types is expected."), code="invalid_event_types")
    unknown = sorted(set(value) - set(EventType.values))
    if unknown:
        raise ValidationError(
            _("Unknown event types: %(types)s."),
            code="invalid_event_types",
            params={"types": ", ".join(unknown)},
        )


# Models


def _endpoint_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def _event_reference() -> str:
    return f"evt_{secrets.token_urlsafe(18)}"


class WebhookEndpoint(models.Model):
    """A URL of a merchant's that receives its events: all of them, or the types listed."""

    merchant = models.ForeignKey(
        "merchants.Merchant", models.CASCADE, related_name="webhook_endpoints"
    )
    url = models.URLField(_("URL"), max_length=500, validators=[validate_webhook_url])
    # Stored in clear, unlike API keys: we sign every webhook with it, so we must be able to
    # read it. It never appears in a log, an error or an attempt's record, and the admin shows
    # it masked except once, when the endpoint is created.
    secret = models.CharField(
        _("signing secret"), max_length=100, default=_endpoint_secret, editable=False
    )
    enabled_events = models.JSONField(
        _("event types"),
        default=list,
        blank=True,
        validators=[validate_event_types],
        help_text=_("None selected: every event type."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["merchant", "pk"]

    def __str__(self) -> str:
        return self.url

    @property
    def masked_secret(self) -> str:
        return f"whsec_••••••••{self.secret[-4:]}"

    def subscribes_to(self, event_type: str) -> bool:
        return not self.enabled_events or event_type in self.enabled_events


class WebhookEvent(models.Model):
    """Something that happened to a merchant's payment, as told to its endpoints. Written once,
    with the exact body sent (`payload`), and never changed."""

    Type = EventType

    reference = models.CharField(
        _("reference"), max_length=40, unique=True, default=_event_reference, editable=False
    )
    merchant = models.ForeignKey(
        "merchants.Merchant", models.PROTECT, related_name="webhook_events"
    )
    type = models.CharField(_("type"), max_length=64, choices=EventType.choices)
    data = models.JSONField(_("data"))
    payload = models.TextField(_("body sent"), editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.reference} {self.type}"

    def save(self, *args, **kwargs):
        # What a merchant was told stays what it was told: retries send these very bytes.
        if not self._state.adding:
            raise ValueError("a webhook event is immutable")
        super().save(*args, **kwargs)


class WebhookDelivery(models.Model):
    """One event to one endpoint: pending until an attempt gets a 2xx answer (succeeded) or the
    last attempt fails (failed)."""

    class Status(models.TextChoices):
        PENDING = "pending", pgettext_lazy("webhook delivery", "Pending")
        SUCCEEDED = "succeeded", pgettext_lazy("webhook delivery", "Succeeded")
        FAILED = "failed", pgettext_lazy("webhook delivery", "Failed")

    event = models.ForeignKey(WebhookEvent, models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, models.PROTECT, related_name="deliveries")
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=ERROR_LENGTH, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="webhook_delivery_event_endpoint_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event.reference} → {self.endpoint.url}"


class WebhookAttempt(models.Model):
    """One POST of a delivery and what came back. Written when the attempt starts, completed
    when it ends: an attempt whose worker died keeps its "interrupted" error."""

    delivery = models.ForeignKey(WebhookDelivery, models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField(_("number"))
    started_at = models.DateTimeField(_("started at"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=ERROR_LENGTH, blank=True)
    response_excerpt = models.CharField(_("answer (start)"), max_length=EXCERPT_LENGTH, blank=True)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"], name="webhook_attempt_number_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# Services


def webhook_endpoint_create(
    *,
    merchant: "Merchant",
    url: str,
    enabled_events: list[str] | None = None,
    is_active: bool = True,
) -> WebhookEndpoint:
    """Register an endpoint with a new signing secret (endpoint.secret, to show the merchant)."""
    endpoint = WebhookEndpoint(
        merchant=merchant,
        url=url,
        enabled_events=list(dict.fromkeys(enabled_events or [])),
        is_active=is_active,
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
    # Imported here: merchants.tasks imports this module, which merchants.models loads.
    from merchants.tasks import deliver_webhook

    # robust: the money's transaction has committed; a broker that is down must not turn the
    # payment into an error. The delivery stays pending and retry_due_webhooks queues it.
    transaction.on_commit(lambda: deliver_webhook.delay(delivery_id), robust=True)


def webhook_event_emit(*, merchant: "Merchant", event_type: str, data: dict) -> WebhookEvent:
    """Record that `event_type` happened to `merchant` with `data` (JSON-serialisable; datetimes
    and decimals become strings) and deliver it to each active endpoint subscribed to the type,
    once the surrounding transaction commits. Call it inside the transaction that moves the
    money: if that rolls back, the event and its deliveries do too and nothing is sent."""
    if event_type not in EventType.values:
        raise ValueError(f"unknown webhook event type: {event_type!r}")
    if not isinstance(data, dict):
        raise TypeError("webhook event data must be a dict")
    # No savepoint: a failure here belongs to the caller's transaction, which must not commit
    # the money without its event.
    with transaction.atomic(savepoint=False):
        created = timezone.now()
        event = WebhookEvent(merchant=merchant, type=event_type, created_at=created)
        payload = json.dumps(
            {
                "id": event.reference,
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
        event.save()
        for endpoint in WebhookEndpoint.objects.filter(merchant=merchant, is_active=True):
            if endpoint.subscribes_to(event_type):
                delivery = WebhookDelivery.objects.create(
                    event=event, endpoint=endpoint, next_attempt_at=created
                )
                _queue_delivery(delivery.pk)
    return event


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
    (.netrc), gives up at DEADLINE (config.outbound)."""
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
    event = WebhookEvent.objects.only("reference", "payload").get(pk=claimed.event_id)
    body = event.payload.encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: webhook_signature_header(
            payload=body, secret=endpoint.secret, timestamp=int(time.time())
        ),
    }
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
        WebhookDelivery.objects.filter(
            pk=claimed.pk, status=WebhookDelivery.Status.PENDING, attempts=attempt.number
        ).update(**changes)
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
