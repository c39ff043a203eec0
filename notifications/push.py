"""Web push to the installed app (RFC 8030, messages encrypted per RFC 8291, the sender signed
with VAPID per RFC 8292), through pywebpush.

The app subscribes in the browser with WEBPUSH_VAPID_PUBLIC_KEY and hands us the subscription
(endpoint and keys); we POST each message, encrypted for that browser, to its endpoint. The
payload is JSON: {"title", "body", "kind"}, for the app's service worker to show. Without the
VAPID settings, push is off: nothing is sent and the outbox says why.

The endpoint is an address the app's user hands us, for the platform to POST to: only the push
services of WEBPUSH_ALLOWED_HOSTS are accepted, when subscribing and again when sending, over
https on the usual port, and the request goes through core.outbound (no redirect, no proxy
from the environment, a deadline)."""

import base64
import binascii
import json
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from core.outbound import OutboundSession
from notifications.errors import (
    PushDisabled,
    PushServiceNotAllowed,
    PushSubscriptionInvalid,
    Undeliverable,
)
from wallet.models import Beneficiary
from wallet.models.notifications import Notification, PushSubscription

logger = logging.getLogger(__name__)

# A phone that is off for a day still gets the message when it comes back; after that the push
# service may drop it.
TIME_TO_LIVE = 24 * 3600
# Seconds to connect, seconds between bytes of the answer, and for the whole exchange with one
# push service: the outbox row is locked meanwhile.
TIMEOUT = (5, 5)
DEADLINE = 10
# A browser that subscribes again gets a new endpoint; the old ones are turned off past this
# many, so that one person's messages cannot fan out to an unbounded list of addresses.
MAX_ACTIVE_PER_BENEFICIARY = 10
# The push service answers so for a subscription that no longer exists.
_GONE = {404, 410}


def push_enabled() -> bool:
    return bool(
        settings.WEBPUSH_VAPID_PRIVATE_KEY
        and settings.WEBPUSH_VAPID_PUBLIC_KEY
        and settings.WEBPUSH_VAPID_SUBJECT
    )


def _key(value: object, *, field: str, length: int) -> str:
    if not isinstance(value, str) or len(value) > 100:
        raise PushSubscriptionInvalid(field=field)
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise PushSubscriptionInvalid(field=field) from None
    if len(raw) != length:
        raise PushSubscriptionInvalid(field=field)
    return value


def _host_allowed(host: str, port: int | None) -> bool:
    """Whether WEBPUSH_ALLOWED_HOSTS names this host: "fcm.googleapis.com" itself,
    "*.push.apple.com" any name under push.apple.com; on port 443 unless the entry names
    another ("127.0.0.1:8443", a test's push service)."""
    host = host.lower()
    for entry in settings.WEBPUSH_ALLOWED_HOSTS:
        pattern, has_port, allowed_port = entry.lower().partition(":")
        if (port or 443) != (int(allowed_port) if has_port else 443):
            continue
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def push_endpoint_allowed(endpoint: str) -> bool:
    """An https URL of a push service of WEBPUSH_ALLOWED_HOSTS, with no user name, password or
    other port in it."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and "@" not in parts.netloc
        and bool(parts.hostname)
        and _host_allowed(parts.hostname, port)
    )


def _parsed(subscription_info: object) -> tuple[str, str, str]:
    """(endpoint, p256dh, auth) of a browser's PushSubscription.toJSON(), checked."""
    if not isinstance(subscription_info, dict):
        raise PushSubscriptionInvalid()
    endpoint = subscription_info.get("endpoint")
    if (
        not isinstance(endpoint, str)
        or len(endpoint) > PushSubscription._meta.get_field("endpoint").max_length
        or urlsplit(endpoint).scheme != "https"
        or not urlsplit(endpoint).hostname
    ):
        raise PushSubscriptionInvalid(field="endpoint")
    if not push_endpoint_allowed(endpoint):
        raise PushServiceNotAllowed(field="endpoint")
    keys = subscription_info.get("keys")
    if not isinstance(keys, dict):
        raise PushSubscriptionInvalid(field="keys")
    # An uncompressed P-256 point (65 bytes) and a 16-byte secret, as browsers send them.
    p256dh = _key(keys.get("p256dh"), field="keys.p256dh", length=65)
    auth = _key(keys.get("auth"), field="keys.auth", length=16)
    return endpoint, p256dh, auth


def push_subscribe(*, beneficiary: Beneficiary, subscription_info: dict) -> PushSubscription:
    """Record the app on one device as a place to send this beneficiary's messages. The same
    endpoint subscribed again (keys renewed, or another person signed in on the device) is
    updated and turned back on, for the person who subscribed last. Raises PushDisabled when
    push is off, PushSubscriptionInvalid (with the field) for a malformed subscription,
    PushServiceNotAllowed for an endpoint that is not a known push service's."""
    if not push_enabled():
        raise PushDisabled()
    endpoint, p256dh, auth = _parsed(subscription_info)
    with transaction.atomic():
        subscription, _ = PushSubscription.objects.update_or_create(
            endpoint=endpoint,
            defaults={
                "beneficiary": beneficiary,
                "p256dh": p256dh,
                "auth": auth,
                "disabled_at": None,
            },
        )
        extra = (
            PushSubscription.objects.filter(beneficiary=beneficiary, disabled_at__isnull=True)
            .order_by("-created_at", "-pk")
            .values_list("pk", flat=True)[MAX_ACTIVE_PER_BENEFICIARY:]
        )
        PushSubscription.objects.filter(pk__in=list(extra)).update(disabled_at=timezone.now())
    return subscription


def push_unsubscribe(*, beneficiary: Beneficiary, endpoint: str) -> bool:
    """Stop sending to one of the beneficiary's devices. Returns whether one was turned off."""
    return bool(
        PushSubscription.objects.filter(
            beneficiary=beneficiary, endpoint=endpoint, disabled_at__isnull=True
        ).update(disabled_at=timezone.now())
    )


def push_reachable(beneficiary: Beneficiary) -> bool:
    return PushSubscription.objects.filter(
        beneficiary=beneficiary, disabled_at__isnull=True
    ).exists()


def _send_one(subscription: PushSubscription, payload: str) -> None:
    with OutboundSession(deadline=DEADLINE) as session:
        webpush(
            subscription_info={
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=payload,
            vapid_private_key=Vapid.from_string(settings.WEBPUSH_VAPID_PRIVATE_KEY),
            # A new dict each time: webpush writes the audience (the endpoint's origin) into it.
            vapid_claims={"sub": settings.WEBPUSH_VAPID_SUBJECT},
            content_encoding="aes128gcm",
            ttl=TIME_TO_LIVE,
            timeout=TIMEOUT,
            requests_session=session,
        )


def push_deliver(*, notification: Notification) -> None:
    """Send a push row to every device of its beneficiary still subscribed. Sent if one device
    took it; a device the push service says is gone is turned off. Raises Undeliverable when no
    device is left (or push was turned off since), and the last error when every device
    failed otherwise, so that the message is tried again."""
    if not push_enabled():
        raise Undeliverable(Notification.SkipReason.PUSH_DISABLED)
    subscriptions = list(
        PushSubscription.objects.filter(
            beneficiary_id=notification.beneficiary_id, disabled_at__isnull=True
        ).order_by("pk")
    )
    payload = json.dumps(
        {"title": notification.subject, "body": notification.body, "kind": notification.kind}
    )
    delivered, gone, failure = [], [], None
    for subscription in subscriptions:
        if not push_endpoint_allowed(subscription.endpoint):
            # Subscribed before its push service was taken off WEBPUSH_ALLOWED_HOSTS.
            logger.warning("push subscription %s: push service not allowed", subscription.pk)
            gone.append(subscription.pk)
            continue
        try:
            _send_one(subscription, payload)
        except WebPushException as exc:
            if exc.status_code in _GONE:
                gone.append(subscription.pk)
            else:
                failure = exc
        except Exception as exc:
            # A refused connection or a timeout from one push service must not keep the
            # message from the person's other devices.
            failure = exc
        else:
            delivered.append(subscription.pk)
    now = timezone.now()
    PushSubscription.objects.filter(pk__in=gone).update(disabled_at=now)
    PushSubscription.objects.filter(pk__in=delivered).update(last_success_at=now)
    if delivered:
        if failure is not None:
            logger.warning("notification %s: some devices failed: %s", notification.pk, failure)
        return
    if failure is not None:
        raise failure
    raise Undeliverable(Notification.SkipReason.PUSH_GONE)
