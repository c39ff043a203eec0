"""No card number, CVC, API key, app token, payment code or sign-in code in a log record, an
error answer or an admin page.

The whole run is watched by the SecretsInLogs plugin (tests/security/conftest.py): these tests
check its detectors and that it is on, then provoke errors with secrets in the request and look
at what the platform says and logs."""

import logging
import re
import sys

import pytest
from django.core import mail
from django.urls import reverse

from core.log_filters import RedactSecrets, redact
from notifications.services import notification_send
from tests.security.conftest import (
    Secret,
    SecretRegistry,
    _RecordWriter,
    card_numbers,
    error_of,
    leaks,
    scan_log,
)
from wallet.models.notifications import Notification

VISA_TEST_CARD = "4242424242424242"


# --- the detectors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "card 4242424242424242 refused",
        "card 4242 4242 4242 4242 refused",
        "pan=5555-5555-5555-4444",
        "amex 378282246310005",
    ],
)
def test_a_card_number_is_found(text):
    assert card_numbers(text)


@pytest.mark.parametrize(
    "text",
    [
        "siret 44306184100047",  # Luhn-valid, 14 digits: a company, not a card
        "card 4242424242424241",  # not Luhn-valid
        "iban FR7630006000011234567890189",
        "at 1763870400123 ms",
        "card_bWTP5uYrZZcJLPD_MIxfr2tU ending 4242",
    ],
)
def test_what_only_looks_like_a_card_number_is_not(text):
    assert not card_numbers(text)


@pytest.mark.parametrize(
    "text",
    [
        "Bearer sk_live_Yq1c7T2uVb0pZk3rN8wH6eJ5aB9dC2eF4gH6iJ8kL0m",
        "token app_Jx3fQ9LmZ2pR7sT1vW4yB6nD8kH0cE5gU3iO7aS9dF2",
        '{"number": "x", "cvc": "123"}',
        "cvv=4321",
        "whsec_8fJ2kL9mN3pQ5rS7tU1vW4xY6zA0bC2dE",
    ],
)
def test_a_secret_of_a_known_format_is_found(text):
    assert leaks(text, [])


@pytest.mark.parametrize(
    "text",
    [
        "prefix sk_live_4fT9qLm",  # the 16 characters shown on purpose
        "secret whsec_••••••••Zx3Q",
        "module wallet.app_api, app_token_create",
    ],
)
def test_what_is_shown_on_purpose_is_not_a_leak(text):
    assert not leaks(text, [])


def test_a_code_is_found_alone_or_spaced_but_not_inside_a_longer_number():
    codes = [Secret("payment code", "1234567890", "t"), Secret("sign-in code", "428195", "t")]

    assert leaks("code 1234 567 890 wrong", codes)
    assert leaks("your code is 428195.", codes)
    assert not leaks("id 44281957", codes)
    assert not leaks("order 91234567890", codes)


def test_the_log_scan_finds_a_code_in_the_records_of_the_test_that_got_it(tmp_path):
    registry = SecretRegistry()
    registry.current_test = "tests/a.py::test_one"
    registry.add("sign-in code", "428195")
    registry.add("merchant API key", "sk_live_" + "k" * 43)
    writer = _RecordWriter(tmp_path / "run.log", registry)
    logger = logging.getLogger("tests.security.scan")
    logger.addHandler(writer)
    logger.propagate = False  # the run's own log must not get these planted secrets
    try:
        logger.warning("code 428195 sent")
        registry.current_test = "tests/b.py::test_two"
        logger.warning("order 428195 paid")  # another test: six digits by chance
        logger.warning("key sk_live_%s", "k" * 43)
    finally:
        logger.removeHandler(writer)
        logger.propagate = True
        writer.finish()

    findings = scan_log(tmp_path / "run.log", registry)

    assert [(f.test, f.what.split()[0]) for f in findings] == [
        ("tests/a.py::test_one", "sign-in"),
        ("tests/b.py::test_two", "merchant"),
    ]


# --- the plugin is on ---------------------------------------------------------------------


@pytest.fixture
def plugin(request):
    found = request.config.pluginmanager.get_plugin("secrets-in-logs")
    assert found is not None, "tests/conftest.py registers SecretsInLogs"
    return found


def test_every_log_record_of_the_run_is_written_down(plugin, request):
    logging.getLogger("wallet").info("marker %s", request.node.nodeid)
    plugin.handler.stream.flush()

    assert f"marker {request.node.nodeid}" in plugin.path.read_text()


def test_the_secrets_handed_out_are_noted(plugin, request, shop, alice):
    noted = {(s.kind, s.test) for s in plugin.registry.secrets}

    assert ("merchant API key", request.node.nodeid) in noted
    assert ("app token", request.node.nodeid) in noted


def test_a_key_created_through_the_api_is_noted(plugin, shop):
    response = shop.api.post("/api/merchant/v1/api-keys", {"name": "caisse 3"}, format="json")

    assert response.json()["secret"] in {s.value for s in plugin.registry.secrets}


# --- errors with secrets in the request ---------------------------------------------------


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def said(responses, caplog) -> str:
    return "\n".join(r.content.decode() for r in responses) + "\n" + caplog.text


def test_a_wrong_api_key_is_not_repeated(client, logged, db):
    key = "sk_live_" + "Z" * 43
    responses = [
        client.get("/api/merchant/v1/authorizations", HTTP_AUTHORIZATION=f"Bearer {key}"),
        client.get("/api/merchant/v1/authorizations", HTTP_AUTHORIZATION=f"Bearer {key} extra"),
        client.get("/api/app/v1/me", HTTP_AUTHORIZATION=f"Bearer {key}"),
    ]

    assert [r.status_code for r in responses] == [401, 401, 401]
    assert key not in said(responses, logged)


def test_a_card_number_and_cvc_sent_to_the_api_are_not_repeated(shop, logged):
    bodies = [
        {"amount": 100, "currency": "EUR", "card": VISA_TEST_CARD, "cvc": "123"},
        {"amount": 100, "currency": "EUR", "card": "4242 4242 4242 4242", "exp": "12/30"},
        {"amount": 100, "currency": "EUR", "payment_code": VISA_TEST_CARD},
        {"amount": "4242424242424242", "currency": "EUR", "card": "x"},
        {"amount": 100, "currency": "EUR", "card": "x", "metadata": {"pan": VISA_TEST_CARD}},
    ]
    responses = [
        shop.api.post("/api/merchant/v1/authorizations", body, format="json") for body in bodies
    ]
    responses.append(shop.api.get(f"/api/merchant/v1/authorizations/{VISA_TEST_CARD}"))

    for response in responses:
        if response.status_code >= 400:
            error_of(response)
    assert not card_numbers(said([r for r in responses if r.status_code >= 400], logged))
    assert "cvc" not in said(responses, logged).lower()


def test_a_wrong_payment_code_is_not_repeated(shop, logged):
    code = "9876 543 210"
    response = shop.api.post(
        "/api/merchant/v1/authorizations",
        {"amount": 100, "currency": "EUR", "payment_code": code},
        format="json",
    )

    assert response.status_code in (400, 404, 409, 422)
    assert not leaks(said([response], logged), [Secret("payment code", "9876543210", None)])


def test_a_sign_in_code_is_in_no_answer_log_or_admin_page(
    client, alice, logged, settings, django_user_model
):
    settings.SMS_BACKEND = "notifications.channels.OutboxSMSBackend"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the code is looked up and sent by a task
    phone = str(alice.beneficiary.phone)
    asked = client.post(
        "/api/app/v1/auth/code", {"contact": phone}, content_type="application/json"
    )
    notification = Notification.objects.get(kind=Notification.Kind.SIGN_IN_CODE)
    notification_send(notification_id=notification.pk)
    code = re.search(r"\b(\d{6})\b", notification.body)[1]
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    tried = client.post(
        "/api/app/v1/auth/token", {"contact": phone, "code": wrong}, content_type="application/json"
    )
    operator = django_user_model.objects.create_superuser("operator", "op@example.org", "x")
    client.force_login(operator)
    admin = f"admin:{Notification._meta.app_label}_{Notification._meta.model_name}"
    pages = [
        client.get(reverse(f"{admin}_changelist")),
        client.get(reverse(f"{admin}_change", args=[notification.pk])),
    ]

    assert asked.status_code == 202 and tried.status_code == 400
    assert all(page.status_code == 200 for page in pages)
    secrets = [Secret("sign-in code", code, None), Secret("sign-in code", wrong, None)]
    assert not leaks(said([asked, tried, *pages], logged), secrets)


def test_a_card_reference_in_a_refused_url_is_masked_in_the_request_log(alice, bob, logged):
    reference = alice.card.reference

    response = bob.api.post(f"/api/app/v1/cards/{reference}/freeze")

    assert response.status_code == 404
    [record] = [r for r in logged.records if r.name == "django.request"]
    assert reference not in record.getMessage()
    assert f"card_…{reference[-4:]}/freeze" in record.getMessage()
    assert reference not in logged.text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("card card_bWTP5uYrZZcJLPD_MIxfr2tU frozen", "card card_…r2tU frozen"),
        ("Bearer app_Jx3fQ9LmZ2pR7sT1vW4yB6nD8kH0cE5gU3iO7aS9dF2", "Bearer app_…9dF2"),
        ("key=sk_live_Yq1c7T2uVb0pZk3rN8wH6eJ5aB9dC2eF4gH6iJ8kL0m", "key=sk_live_…kL0m"),
        ("key=sk_test_Yq1c7T2uVb0pZk3rN8wH6eJ5aB9dC2eF4gH6iJ8kL0m", "key=sk_test_…kL0m"),
        ("secret whsec_8fJ2kL9mN3pQ5rS7tU1vW4xY6zA0bC2dE", "secret whsec_…C2dE"),
        ("pan 4242 4242 4242 4242", "pan ••••4242"),
    ],
)
def test_secrets_are_masked_to_their_prefix_and_last_four(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "in app_notification_preferences_set",  # a function's name in a traceback
        "refused: card_closed",  # an error code
        "prefix sk_live_4fT9qLm",  # the key's prefix, shown on purpose
        "secret whsec_••••••••Zx3Q",
    ],
)
def test_what_is_not_a_secret_is_left_as_it_is(text):
    assert redact(text) == text


@pytest.fixture
def console_handler():
    """The handler of settings.LOGGING that writes every record of the platform."""
    [handler] = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactSecrets) for f in h.filters)
    ]
    return handler


def test_any_logger_s_record_is_written_masked_arguments_and_traceback_included(console_handler):
    token = "app_Jx3fQ9LmZ2pR7sT1vW4yB6nD8kH0cE5gU3iO7aS9dF2"
    try:
        raise ValueError(f"provider refused {token}")
    except ValueError:
        record = logging.getLogger("notifications").makeRecord(
            "notifications", logging.ERROR, __file__, 1, "token %s", (token,), sys.exc_info()
        )

    assert console_handler.filter(record)
    written = console_handler.format(record)

    assert token not in written
    assert written.count("app_…9dF2") == 2


# --- personal data in logs ----------------------------------------------------------------


class _RefusingSMSBackend:
    """A provider refusing the number, quoting it, as providers' errors do."""

    def send(self, phone: str, text: str, sender: str | None = None) -> None:
        raise RuntimeError(f"The 'To' number {phone} is not a valid phone number.")


class _RefusingEmailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise RuntimeError(f"recipient refused: {messages[0].to[0]}")


@pytest.mark.parametrize("channel", ["sms", "email"])
def test_a_failed_message_logs_the_recipient_masked(alice, logged, settings, channel):
    settings.SMS_BACKEND = f"{__name__}._RefusingSMSBackend"
    settings.EMAIL_BACKEND = f"{__name__}._RefusingEmailBackend"
    beneficiary = alice.beneficiary
    recipient = str(beneficiary.phone) if channel == "sms" else beneficiary.email
    notification = Notification.objects.create(
        beneficiary=beneficiary,
        kind=Notification.Kind.ALLOCATION_GRANTED,
        channel=channel,
        recipient=recipient,
        body="Vous avez reçu une aide.",
        next_attempt_at=notification_send.__globals__["timezone"].now(),
    )

    notification_send(notification_id=notification.pk)

    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    assert "failed" in logged.text
    national = recipient.replace("+33", "0")
    for text in (logged.text, notification.error):
        assert recipient not in text and national[1:] not in text
    assert not mail.outbox
