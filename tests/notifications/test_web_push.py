"""App notifications by web push, against a local push service: an HTTPS server in a thread
that records each POST. The message must arrive encrypted (aes128gcm) for the subscriber's keys,
signed with our VAPID key, and decrypt to the text of the outbox row; a subscription the push
service says is gone is turned off. Only the known push services are accepted (the local one is
added to WEBPUSH_ALLOWED_HOSTS by its fixture), and none is followed elsewhere."""

import base64
import datetime as dt
import ipaddress
import json
import os
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from py_vapid import Vapid, Vapid02

from backoffice.admin.notifications import NotificationAdmin
from core.outbound import OutboundSession
from notifications import push
from notifications.errors import (
    PushDisabled,
    PushServiceNotAllowed,
    PushSubscriptionInvalid,
)
from notifications.push import MAX_ACTIVE_PER_BENEFICIARY, push_subscribe, push_unsubscribe
from notifications.services import allocation_notify, notification_send
from notifications.tasks import send_notification
from tests.factories import BeneficiaryFactory, FunderFactory, make_allocation, make_program
from wallet.models.notifications import Notification, PushSubscription

pytestmark = pytest.mark.django_db

Channel = Notification.Channel
Status = Notification.Status
SUBJECT = "mailto:ops@example.org"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _certificate(directory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "push.crt", directory / "push.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


class FakePushService:
    """Answers each POST with the status set for its path (201 by default) and keeps it; a path
    in `redirects` is answered 307 to another path of its own; a path in `dripping` gets its
    answer one header every 0.1 s, for 5 s."""

    def __init__(self, tmp_path):
        self.received: list[dict] = []
        self.statuses: dict[str, int] = {}
        self.redirects: dict[str, str] = {}
        self.dripping: set[str] = set()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                service.received.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                if self.path in service.dripping:
                    return self._drip()
                if self.path in service.redirects:
                    self.send_response(307)
                    self.send_header("Location", service.url(service.redirects[self.path]))
                else:
                    self.send_response(service.statuses.get(self.path, 201))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _drip(self):
                try:
                    self.wfile.write(b"HTTP/1.1 201 Created\r\n")
                    for _ in range(50):
                        self.wfile.write(b"X-Drip: 1\r\n")
                        time.sleep(0.1)
                except OSError:
                    pass  # the client gave up

            def log_message(self, *args):
                pass

        self.certificate, key = _certificate(tmp_path)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.origin = f"https://{self.host}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"


@pytest.fixture
def push_service(tmp_path, monkeypatch, settings):
    service = FakePushService(tmp_path)
    service.thread.start()
    settings.WEBPUSH_ALLOWED_HOSTS = [*settings.WEBPUSH_ALLOWED_HOSTS, service.host]

    class TrustingSession(OutboundSession):
        """Trusts our certificate, as it would a push service's signed by a known CA."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.verify = service.certificate

    monkeypatch.setattr(push, "OutboundSession", TrustingSession)
    yield service
    service.server.shutdown()
    service.server.server_close()


@pytest.fixture
def vapid(settings):
    """Our VAPID key pair, as the settings hold it."""
    key = Vapid()
    key.generate_keys()
    raw_private = key.private_key.private_numbers().private_value.to_bytes(32, "big")
    raw_public = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    settings.WEBPUSH_VAPID_PRIVATE_KEY = b64url(raw_private)
    settings.WEBPUSH_VAPID_PUBLIC_KEY = b64url(raw_public)
    settings.WEBPUSH_VAPID_SUBJECT = SUBJECT
    return raw_public


class Browser:
    """A subscriber, as a browser makes one: a P-256 key pair and a 16-byte secret."""

    def __init__(self, endpoint: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint

    def subscription(self) -> dict:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }

    def read(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


@pytest.fixture
def person(db):
    return BeneficiaryFactory(first_name="Sam", phone="", email="", preferred_language="en")


@pytest.fixture
def program(db):
    return make_program(funder=FunderFactory())


def grant(program, person):
    allocation = make_allocation(program=program, beneficiary=person, amount=5_000)
    return {n.channel: n for n in allocation_notify(allocation=allocation)}


def test_a_message_reaches_the_app_encrypted_and_signed(push_service, vapid, person, program):
    browser = Browser(push_service.url("/push/device-1"))
    push_subscribe(beneficiary=person, subscription_info=browser.subscription())

    row = grant(program, person)[Channel.PUSH]
    assert row.status == Status.QUEUED
    assert send_notification(row.pk) == Status.SENT
    assert send_notification(row.pk) == Status.SENT

    [request] = push_service.received
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert request["path"] == "/push/device-1"
    assert headers["content-encoding"] == "aes128gcm"
    assert int(headers["ttl"]) > 0
    # The sender is us: the VAPID token is signed with our key, for this push service.
    authorization = headers["authorization"]
    assert authorization.startswith("vapid t=")
    assert authorization.split("k=")[1] == b64url(vapid)
    assert Vapid02.verify(authorization)
    token = authorization.split("t=")[1].split(",")[0]
    claims = json.loads(b64url_decode(token.split(".")[1]))
    assert (claims["aud"], claims["sub"]) == (push_service.origin, SUBJECT)
    # Only the browser can read it: the text travels encrypted.
    assert b"Sam" not in request["body"]
    message = browser.read(request["body"])
    assert message == {"title": row.subject, "body": row.body, "kind": "allocation_granted"}
    assert "Hello Sam" in message["body"]
    assert "€50.00" in message["body"]
    subscription = PushSubscription.objects.get()
    assert subscription.last_success_at is not None


def test_a_subscription_the_push_service_says_is_gone_is_turned_off(
    push_service, vapid, person, program
):
    browser = Browser(push_service.url("/push/gone"))
    push_service.statuses["/push/gone"] = 410
    push_subscribe(beneficiary=person, subscription_info=browser.subscription())
    row = grant(program, person)[Channel.PUSH]

    sent = notification_send(notification_id=row.pk)

    assert (sent.status, sent.skip_reason, sent.next_attempt_at) == (
        Status.SKIPPED,
        Notification.SkipReason.PUSH_GONE,
        None,
    )
    assert PushSubscription.objects.get().disabled_at is not None
    # The next message has no app to go to: the person has no channel left.
    later = grant(program, person)
    assert set(later) == {Channel.EMAIL}
    assert later[Channel.EMAIL].skip_reason == Notification.SkipReason.NO_CONTACT


def test_one_device_gone_does_not_keep_the_message_from_the_other(
    push_service, vapid, person, program
):
    push_service.statuses["/push/old-phone"] = 404
    old, new = Browser(push_service.url("/push/old-phone")), Browser(push_service.url("/push/new"))
    push_subscribe(beneficiary=person, subscription_info=old.subscription())
    push_subscribe(beneficiary=person, subscription_info=new.subscription())
    row = grant(program, person)[Channel.PUSH]

    assert notification_send(notification_id=row.pk).status == Status.SENT

    assert len(push_service.received) == 2
    active = PushSubscription.objects.filter(disabled_at__isnull=True)
    assert [s.endpoint for s in active] == [new.endpoint]


def test_a_push_service_in_trouble_means_trying_again(push_service, vapid, person, program):
    push_service.statuses["/push/busy"] = 503
    push_subscribe(
        beneficiary=person, subscription_info=Browser(push_service.url("/push/busy")).subscription()
    )
    row = grant(program, person)[Channel.PUSH]

    failed = notification_send(notification_id=row.pk)

    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert failed.next_attempt_at is not None
    assert "503" in failed.error
    assert PushSubscription.objects.get().disabled_at is None


def test_without_vapid_keys_push_is_skipped_and_says_why(settings, person, program):
    PushSubscription.objects.create(
        beneficiary=person,
        endpoint="https://fcm.googleapis.com/fcm/send/device",
        p256dh=b64url(b"\x04" + b"1" * 64),
        auth=b64url(b"2" * 16),
    )
    settings.WEBPUSH_VAPID_PRIVATE_KEY = ""

    row = grant(program, person)[Channel.PUSH]

    assert (row.status, row.skip_reason) == (
        Status.SKIPPED,
        Notification.SkipReason.PUSH_DISABLED,
    )
    assert row.next_attempt_at is None


def test_subscribing_needs_push_to_be_set_up(settings, person):
    settings.WEBPUSH_VAPID_PRIVATE_KEY = ""
    with pytest.raises(PushDisabled) as refused:
        push_subscribe(
            beneficiary=person,
            subscription_info=Browser("https://fcm.googleapis.com/fcm/send/1").subscription(),
        )
    assert refused.value.code == "push_disabled"


def _subscription(**changes) -> dict:
    info = Browser("https://fcm.googleapis.com/fcm/send/device").subscription()
    keys = {**info["keys"], **changes.pop("keys", {})}
    return {**info, "keys": keys, **changes}


@pytest.mark.parametrize(
    ("info", "field"),
    [
        (_subscription(endpoint="http://fcm.googleapis.com/fcm/send/device"), "endpoint"),
        (_subscription(endpoint="https:///nohost"), "endpoint"),
        (_subscription(endpoint=None), "endpoint"),
        (_subscription(endpoint="https://fcm.googleapis.com/fcm/send/" + "a" * 1000), "endpoint"),
        (_subscription(keys={"p256dh": b64url(b"\x04" + b"1" * 30)}), "keys.p256dh"),
        (_subscription(keys={"p256dh": "not base64 !"}), "keys.p256dh"),
        (_subscription(keys={"auth": b64url(b"short")}), "keys.auth"),
        ({"endpoint": "https://fcm.googleapis.com/fcm/send/device"}, "keys"),
        ("a string", None),
    ],
)
def test_a_malformed_subscription_is_refused(vapid, person, info, field):
    with pytest.raises(PushSubscriptionInvalid) as refused:
        push_subscribe(beneficiary=person, subscription_info=info)

    assert (refused.value.code, refused.value.field) == ("invalid_push_subscription", field)
    assert not PushSubscription.objects.exists()


def test_the_same_device_subscribing_again_is_one_subscription_for_the_last_person(vapid, person):
    browser = Browser("https://fcm.googleapis.com/fcm/send/shared-phone")
    first = push_subscribe(beneficiary=person, subscription_info=browser.subscription())
    push_unsubscribe(beneficiary=person, endpoint=browser.endpoint)
    other = BeneficiaryFactory()

    again = push_subscribe(beneficiary=other, subscription_info=browser.subscription())

    assert again.pk == first.pk
    assert (again.beneficiary, again.disabled_at) == (other, None)


def test_an_unsubscribed_device_gets_nothing_more(vapid, person, program):
    browser = Browser("https://fcm.googleapis.com/fcm/send/device")
    push_subscribe(beneficiary=person, subscription_info=browser.subscription())

    assert push_unsubscribe(beneficiary=BeneficiaryFactory(), endpoint=browser.endpoint) is False
    assert push_unsubscribe(beneficiary=person, endpoint=browser.endpoint) is True

    assert Channel.PUSH not in grant(program, person)


def test_the_number_of_devices_is_bounded(vapid, person):
    for n in range(MAX_ACTIVE_PER_BENEFICIARY + 2):
        push_subscribe(
            beneficiary=person,
            subscription_info=Browser(f"https://fcm.googleapis.com/fcm/send/{n}").subscription(),
        )

    active = PushSubscription.objects.filter(disabled_at__isnull=True)
    assert active.count() == MAX_ACTIVE_PER_BENEFICIARY
    assert not active.filter(
        endpoint__in=[
            "https://fcm.googleapis.com/fcm/send/0",
            "https://fcm.googleapis.com/fcm/send/1",
        ]
    ).exists()


def test_the_outbox_shows_an_app_notification_as_sent_to_the_app(vapid, person, program):
    push_subscribe(
        beneficiary=person,
        subscription_info=Browser("https://fcm.googleapis.com/fcm/send/device").subscription(),
    )
    row = grant(program, person)[Channel.PUSH]

    shown = NotificationAdmin(Notification, None).masked_recipient(row)

    assert "app" in str(shown)


# Where push messages may go


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1/push",
        "https://localhost/push",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/push",
        "https://[::1]/push",
        "https://user@fcm.googleapis.com/fcm/send/device",
        "https://user:secret@updates.push.services.mozilla.com/wpush/v2/device",
        "https://fcm.googleapis.com@169.254.169.254/fcm/send/device",
        "https://fcm.googleapis.com:8443/fcm/send/device",
        "https://web.push.apple.com:80/device",
        "https://fcm.googleapis.com.attacker.example/fcm/send/device",
        "https://push.apple.com.attacker.example/device",
        "https://attackerpush.apple.com/device",
        "https://push.example.org/device",
    ],
)
def test_an_endpoint_outside_the_known_push_services_is_refused(vapid, person, endpoint):
    with pytest.raises(PushServiceNotAllowed) as refused:
        push_subscribe(beneficiary=person, subscription_info=Browser(endpoint).subscription())

    assert (refused.value.code, refused.value.field) == ("push_service_not_allowed", "endpoint")
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/dXNlcl9pZA:APA91bH",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
        "https://web.push.apple.com/QGuQyavXutnMH5Ks",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB",
        "https://FCM.googleapis.com:443/fcm/send/device",
    ],
)
def test_the_known_push_services_are_accepted(vapid, person, endpoint):
    subscription = push_subscribe(
        beneficiary=person, subscription_info=Browser(endpoint).subscription()
    )
    assert subscription.endpoint == endpoint


def test_the_accepted_push_services_are_a_setting(settings, vapid, person):
    settings.WEBPUSH_ALLOWED_HOSTS = ["push.example.org"]

    push_subscribe(
        beneficiary=person,
        subscription_info=Browser("https://push.example.org/device").subscription(),
    )
    with pytest.raises(PushServiceNotAllowed):
        push_subscribe(
            beneficiary=person,
            subscription_info=Browser("https://fcm.googleapis.com/fcm/send/x").subscription(),
        )


def test_a_subscription_to_a_push_service_no_longer_allowed_is_not_sent_to(
    push_service, vapid, person, program, settings
):
    push_subscribe(
        beneficiary=person,
        subscription_info=Browser(push_service.url("/push/device")).subscription(),
    )
    settings.WEBPUSH_ALLOWED_HOSTS = ["fcm.googleapis.com"]
    row = grant(program, person)[Channel.PUSH]

    sent = notification_send(notification_id=row.pk)

    assert push_service.received == []
    assert (sent.status, sent.skip_reason) == (Status.SKIPPED, Notification.SkipReason.PUSH_GONE)
    assert PushSubscription.objects.get().disabled_at is not None


def test_a_redirect_from_the_push_service_is_not_followed(push_service, vapid, person, program):
    push_service.redirects["/push/moved"] = "/push/elsewhere"
    push_subscribe(
        beneficiary=person,
        subscription_info=Browser(push_service.url("/push/moved")).subscription(),
    )
    row = grant(program, person)[Channel.PUSH]

    failed = notification_send(notification_id=row.pk)

    assert [request["path"] for request in push_service.received] == ["/push/moved"]
    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert "307" in failed.error


def test_proxies_set_in_the_environment_are_not_used(
    push_service, vapid, person, program, monkeypatch
):
    # Nothing listens on port 9 (discard): a message sent through the proxy would fail.
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    push_subscribe(
        beneficiary=person,
        subscription_info=Browser(push_service.url("/push/device")).subscription(),
    )
    row = grant(program, person)[Channel.PUSH]

    assert notification_send(notification_id=row.pk).status == Status.SENT
    assert [request["path"] for request in push_service.received] == ["/push/device"]


def test_a_push_service_answering_drop_by_drop_is_given_up_at_the_deadline(
    push_service, vapid, person, program, monkeypatch
):
    # Each header comes well within the read timeout; the whole answer would take 5 s.
    monkeypatch.setattr(push, "TIMEOUT", (1, 1))
    monkeypatch.setattr(push, "DEADLINE", 0.5)
    push_service.dripping.add("/push/slow")
    push_subscribe(
        beneficiary=person,
        subscription_info=Browser(push_service.url("/push/slow")).subscription(),
    )
    row = grant(program, person)[Channel.PUSH]

    started = time.monotonic()
    failed = notification_send(notification_id=row.pk)

    assert time.monotonic() - started < 2
    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert "within 0.5 s" in failed.error
