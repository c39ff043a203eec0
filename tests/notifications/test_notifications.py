"""Beneficiaries are told of their new aid by email and SMS, through the outbox: one row per
channel, written with the allocation and sent once after commit, whatever runs twice."""

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.core import checks
from django.core.checks import run_checks
from django.test import Client
from django.utils import translation

from beneficiary_app.services import contact_parse, sign_in_code_request
from engine.rules import PocketRules
from funders.models import Membership
from funders.services import allocation_create, beneficiary_enrol
from notifications import tasks
from notifications.channels import mask_codes, mask_email, mask_phone
from notifications.services import (
    MAX_ATTEMPTS,
    REQUEUE_GRACE,
    allocation_notify,
    notification_due_ids,
    notification_send,
)
from notifications.tasks import send_due_notifications, send_notification, send_notifications
from tests.concurrency import run_together
from tests.factories import BeneficiaryFactory, FunderFactory, make_allocation, make_program
from tests.factories import make_staff as _make_staff
from tests.markers import postgresql_only
from wallet.models.notifications import Notification

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
PHONE = "+33612345678"
Channel = Notification.Channel
Status = Notification.Status


class RecordingSMSBackend:
    """An SMS provider that keeps what it was asked to send, and fails `failures` times first;
    `slowness` seconds per message widen the window where two workers could both send."""

    sent: list[tuple[str, str]] = []
    failures = 0
    slowness = 0.0

    def send(self, phone: str, text: str, sender: str | None = None) -> None:
        time.sleep(RecordingSMSBackend.slowness)
        if RecordingSMSBackend.failures:
            RecordingSMSBackend.failures -= 1
            raise ConnectionError("provider unreachable")
        RecordingSMSBackend.sent.append((phone, text))


@pytest.fixture(autouse=True)
def sms(settings):
    settings.SMS_BACKEND = f"{__name__}.RecordingSMSBackend"
    RecordingSMSBackend.sent = []
    RecordingSMSBackend.failures = 0
    RecordingSMSBackend.slowness = 0.0
    return RecordingSMSBackend


@pytest.fixture
def queued(monkeypatch):
    """The ids handed to the task queue, one by one or in batches."""
    ids: list[int] = []
    monkeypatch.setattr(send_notification, "delay", ids.append)
    monkeypatch.setattr(send_notifications, "delay", ids.extend)
    return ids


@pytest.fixture
def program(funder):
    return make_program(funder=funder)


def person(**fields):
    defaults = {"first_name": "Camille", "phone": PHONE, "preferred_language": "fr"}
    return BeneficiaryFactory(**{**defaults, **fields})


def grant(program, beneficiary, **fields):
    """50 € until 31 March 2027 included, then the beneficiary is told."""
    fields = {
        "amount": 5_000,
        "valid_from": datetime(2026, 12, 1, tzinfo=PARIS),
        "valid_until": datetime(2027, 4, 1, tzinfo=PARIS),
        **fields,
    }
    allocation = make_allocation(program=program, beneficiary=beneficiary, **fields)
    return allocation, allocation_notify(allocation=allocation)


def by_channel(beneficiary) -> dict[str, Notification]:
    return {n.channel: n for n in Notification.objects.filter(beneficiary=beneficiary)}


# What is queued


def test_a_new_allocation_queues_one_email_and_one_sms_in_french(program):
    beneficiary = person(email="camille@example.org")

    allocation, _ = grant(program, beneficiary)

    rows = by_channel(beneficiary)
    assert set(rows) == {Channel.EMAIL, Channel.SMS}
    email, sms = rows[Channel.EMAIL], rows[Channel.SMS]
    assert (email.recipient, sms.recipient) == ("camille@example.org", PHONE)
    assert {email.status, sms.status} == {Status.QUEUED}
    assert email.kind == sms.kind == Notification.Kind.ALLOCATION_GRANTED
    assert email.dedupe_key == f"allocation_granted:{allocation.pk}:email"
    assert email.funder == program.funder
    for text in (email.body, sms.body):
        assert "Camille" in text
        assert "Département de l'Isère" in text
        assert program.name in text
        assert "31 mars 2027" in text
    assert "50,00\u00a0€" in email.body
    assert "50,00 €" in sms.body
    assert program.name in email.subject


def test_an_english_speaker_is_told_in_english(program):
    beneficiary = person(first_name="Sam", preferred_language="en")

    grant(program, beneficiary)

    rows = by_channel(beneficiary)
    for row in rows.values():
        assert "Hello Sam" in row.body
        assert "€50.00" in row.body
        assert "March 31, 2027" in row.body
        assert "mars" not in row.body


def test_the_sms_is_one_short_gsm_friendly_line(program):
    beneficiary = person(preferred_language="fr")

    grant(program, beneficiary)
    grant(program, beneficiary)

    first, text = Notification.objects.filter(channel=Channel.SMS).order_by("pk")
    first, text = first.body, text.body
    assert len(text) <= 160
    # the first, which links to the information notice, takes two parts at most
    assert len(first) <= 306 and "/app/privacy/" in first
    for sms in (text, first):
        assert "\n" not in sms
        assert not {"\u00a0", "\u202f", "\u2019"} & set(sms)


def test_the_email_says_in_plain_words_where_the_aid_can_be_spent(funder):
    program = make_program(funder=funder, rules={"categories": {"allow_groups": ["food"]}})
    beneficiary = person(preferred_language="en")

    allocation, _ = grant(program, beneficiary, rules={"limits": {"per_payment": 2_000}})

    rows = by_channel(beneficiary)
    with translation.override("en"):
        lines = PocketRules.from_dict(
            {**program.rules, **allocation.rules},
            valid_from=allocation.valid_from,
            valid_until=allocation.valid_until,
        ).describe(currency="EUR")
    assert len(lines) == 3  # validity, food shops, per payment
    for line in lines:
        assert f"- {line}" in rows[Channel.EMAIL].body
        assert line not in rows[Channel.SMS].body


def test_an_aid_without_end_is_told_without_a_date(program):
    beneficiary = person(preferred_language="en")

    allocation = allocation_create(
        program=program,
        beneficiary=beneficiary,
        amount=5_000,
        valid_from=datetime(2026, 12, 1, tzinfo=PARIS),
        valid_until=None,
        idempotency_key="no-end",
    )
    allocation_notify(allocation=allocation)

    assert "valid until" not in by_channel(beneficiary)[Channel.SMS].body


def test_without_a_phone_only_an_email_is_queued(program):
    beneficiary = person(phone="")

    grant(program, beneficiary)

    assert set(by_channel(beneficiary)) == {Channel.EMAIL}


def test_without_any_contact_one_skipped_row_says_why(
    program, queued, django_capture_on_commit_callbacks
):
    beneficiary = person(phone="", email="")

    with django_capture_on_commit_callbacks(execute=True):
        _, rows = grant(program, beneficiary)

    [row] = Notification.objects.filter(beneficiary=beneficiary)
    assert rows == [row]
    assert row.status == Status.SKIPPED
    assert row.skip_reason == Notification.SkipReason.NO_CONTACT
    assert (row.recipient, row.next_attempt_at) == ("", None)
    assert queued == []


def test_each_row_is_handed_to_the_queue_after_commit(
    program, queued, django_capture_on_commit_callbacks
):
    beneficiary = person()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        grant(program, beneficiary)
    assert queued == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    assert sorted(queued) == sorted(n.pk for n in by_channel(beneficiary).values())


def test_telling_the_same_allocation_twice_queues_once(
    program, queued, django_capture_on_commit_callbacks
):
    beneficiary = person()

    with django_capture_on_commit_callbacks(execute=True):
        allocation, first = grant(program, beneficiary)
        second = allocation_notify(allocation=allocation)

    assert Notification.objects.filter(beneficiary=beneficiary).count() == 2
    assert [n.pk for n in second] == [n.pk for n in first]
    assert len(queued) == 2


# Sending


def test_running_the_task_twice_sends_one_email(program, mailoutbox):
    beneficiary = person(phone="", email="camille@example.org")
    _, [email] = grant(program, beneficiary)

    assert send_notification(email.pk) == Status.SENT
    assert send_notification(email.pk) == Status.SENT

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["camille@example.org"]
    assert (message.subject, message.body) == (email.subject, email.body)
    email.refresh_from_db()
    assert (email.status, email.attempts, email.next_attempt_at) == (Status.SENT, 1, None)
    assert email.sent_at is not None


def test_the_sms_goes_through_the_configured_backend_once(program, sms):
    beneficiary = person(email="")
    _, [text] = grant(program, beneficiary)

    send_notification(text.pk)
    send_notification(text.pk)

    assert sms.sent == [(PHONE, text.body)]


def test_the_console_sms_backend_masks_the_number(program, settings, caplog):
    settings.SMS_BACKEND = "notifications.channels.ConsoleSMSBackend"
    beneficiary = person(email="")
    _, [text] = grant(program, beneficiary)

    with caplog.at_level("INFO", logger="notifications.channels"):
        send_notification(text.pk)

    assert "••••••••78" in caplog.text
    assert text.body in caplog.text
    assert "612345678" not in caplog.text
    text.refresh_from_db()
    assert text.status == Status.SENT


def _sign_in_code_sent(contact: str) -> tuple[Notification, str]:
    """A sign-in code sent to `contact`: its outbox row and its six digits."""
    sign_in_code_request(contact=contact_parse(contact))
    notification = Notification.objects.get(kind=Notification.Kind.SIGN_IN_CODE)
    assert send_notification(notification.pk) == Status.SENT
    return notification, re.search(r"\d{6}", notification.body).group()


def test_the_console_sms_backend_masks_a_sign_in_code(settings, caplog):
    settings.SMS_BACKEND = "notifications.channels.ConsoleSMSBackend"
    person(email="")

    with caplog.at_level("INFO", logger="notifications.channels"):
        _, code = _sign_in_code_sent(PHONE)

    assert "SMS to ••••••••78" in caplog.text
    assert code not in caplog.text
    assert "••••••" in caplog.text


def test_the_console_email_backend_masks_a_sign_in_code(settings, capsys):
    settings.EMAIL_BACKEND = "notifications.channels.ConsoleEmailBackend"
    person(email="camille@example.org", phone="")

    notification, code = _sign_in_code_sent("camille@example.org")

    written = capsys.readouterr().out
    assert code in notification.subject and code in notification.body
    assert "camille@example.org" in written
    assert code not in written


@pytest.mark.parametrize("debug", [True, False])
def test_codes_are_masked_in_development_too(settings, debug):
    # Logs travel (pasted in an issue, shipped to a log service): the demo prints the codes
    # itself (tests/demo).
    settings.DEBUG = debug
    assert mask_codes("Your sign-in code: 428195") == "Your sign-in code: ••••••"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("code 428195.", "code ••••••."),
        ("payment code 1234 567 890", "payment code ••••••"),
        ("50,00 € until 31/03/2027, 1 250 € left", "50,00 € until 31/03/2027, 1 250 € left"),
    ],
)
def test_codes_are_masked_amounts_and_dates_are_not(text, masked):
    assert mask_codes(text) == masked


CONSOLE_EMAIL = "notifications.channels.ConsoleEmailBackend"
CONSOLE_SMS = "notifications.channels.ConsoleSMSBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"
OUTBOX_SMS = "notifications.channels.OutboxSMSBackend"


@pytest.mark.parametrize(
    ("email", "sms", "errors"),
    [
        (CONSOLE_EMAIL, OUTBOX_SMS, ["wallet.E001"]),
        ("django.core.mail.backends.console.EmailBackend", OUTBOX_SMS, ["wallet.E001"]),
        ("django.core.mail.backends.filebased.EmailBackend", OUTBOX_SMS, ["wallet.E001"]),
        (SMTP, CONSOLE_SMS, ["wallet.E002"]),
        (CONSOLE_EMAIL, CONSOLE_SMS, ["wallet.E001", "wallet.E002"]),
        (SMTP, f"{__name__}.RecordingSMSBackend", []),
    ],
)
def test_console_backends_outside_development_fail_the_system_check(settings, email, sms, errors):
    settings.DEBUG = False
    settings.EMAIL_BACKEND, settings.SMS_BACKEND = email, sms

    found = [error for error in run_checks() if error.id.startswith("wallet.")]

    assert [error.id for error in found] == errors
    assert all(error.level == checks.ERROR for error in found)
    for error in found:
        assert {"wallet.E001": "EMAIL_BACKEND", "wallet.E002": "SMS_BACKEND"}[
            error.id
        ] in error.hint


def test_console_backends_in_development_pass_the_system_check(settings):
    settings.DEBUG = True
    settings.EMAIL_BACKEND, settings.SMS_BACKEND = CONSOLE_EMAIL, CONSOLE_SMS

    assert not [error for error in run_checks() if error.id.startswith("wallet.")]


def test_the_outbox_sms_backend_sends_nothing_and_marks_sent(program, settings):
    settings.SMS_BACKEND = "notifications.channels.OutboxSMSBackend"
    beneficiary = person(email="")
    _, [text] = grant(program, beneficiary)

    assert send_notification(text.pk) == Status.SENT


def test_a_failure_is_recorded_then_the_next_attempt_sends(program, sms):
    beneficiary = person(email="")
    _, [text] = grant(program, beneficiary)
    sms.failures = 1

    failed = notification_send(notification_id=text.pk)

    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert "ConnectionError" in failed.error
    assert failed.next_attempt_at is not None
    assert sms.sent == []

    sent = notification_send(notification_id=text.pk)

    assert (sent.status, sent.attempts, sent.error) == (Status.SENT, 2, "")
    assert sms.sent == [(PHONE, text.body)]


def test_the_task_tries_again_after_a_failure(program, sms):
    beneficiary = person(email="")
    _, [text] = grant(program, beneficiary)
    sms.failures = 2

    send_notification.apply(args=[text.pk])

    text.refresh_from_db()
    assert (text.status, text.attempts) == (Status.SENT, 3)
    assert len(sms.sent) == 1


def test_attempts_are_bounded(program, sms):
    beneficiary = person(email="")
    _, [text] = grant(program, beneficiary)
    sms.failures = MAX_ATTEMPTS + 5

    send_notification.apply(args=[text.pk])

    text.refresh_from_db()
    assert (text.status, text.attempts, text.next_attempt_at) == (Status.FAILED, MAX_ATTEMPTS, None)
    assert sms.failures == 5
    assert notification_send(notification_id=text.pk).attempts == MAX_ATTEMPTS


def test_a_notification_whose_task_was_lost_is_queued_again(program, queued, time_machine):
    time_machine.move_to(datetime(2026, 12, 1, 9, 0, tzinfo=PARIS), tick=False)
    beneficiary = person()
    _, rows = grant(program, beneficiary)
    sent, lost = rows
    send_notification(sent.pk)

    assert notification_due_ids() == []
    time_machine.shift(REQUEUE_GRACE + timedelta(seconds=1))

    assert send_due_notifications() == 1
    assert queued == [lost.pk]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_sms_at_once_send_it_once(program, queued, sms):
    beneficiary = person(email="")
    _, [text] = grant(program, beneficiary)
    sms.slowness = 0.3

    outcomes = run_together([lambda: send_notification(text.pk)] * 2)

    assert outcomes == [Status.SENT, Status.SENT]
    assert len(sms.sent) == 1


# Masks


@pytest.mark.parametrize(
    ("phone", "masked"), [(PHONE, "••••••••78"), ("+262 692 12 34 05", "••••••••05")]
)
def test_mask_phone_keeps_the_last_two_digits(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [("camille.martin@example.org", "c•••@example.org"), ("x@a.fr", "x•••@a.fr")],
)
def test_mask_email_keeps_the_first_letter_and_the_domain(address, masked):
    assert mask_email(address) == masked


# The funder's staff


def agent_client(funder):
    user = _make_staff(funder=funder, role=Membership.Role.AGENT)
    client = Client()
    client.force_login(user)
    return client


CHANGELIST = "/admin/wallet/notification/"


def detail(notification) -> str:
    return f"{CHANGELIST}{notification.pk}/change/"


def test_the_funders_agent_reads_the_outbox_with_recipients_masked(program, funder):
    beneficiary = person(email="camille@example.org")
    _, rows = grant(program, beneficiary)
    agent = agent_client(funder)

    listing = agent.get(CHANGELIST)
    page = agent.get(detail(rows[1]))

    assert listing.status_code == 200
    assert {n.pk for n in listing.context["cl"].result_list} == {n.pk for n in rows}
    html = listing.content.decode() + page.content.decode()
    assert "c•••@example.org" in listing.content.decode()
    assert "••••••••78" in html
    assert "camille@example.org" not in html
    assert "612345678" not in html
    assert page.status_code == 200
    assert "31 mars 2027" in page.content.decode()


def test_another_funders_agent_cannot_see_the_outbox(program):
    beneficiary = person()
    _, rows = grant(program, beneficiary)
    stranger = agent_client(FunderFactory())

    listing = stranger.get(CHANGELIST)

    assert list(listing.context["cl"].result_list) == []
    assert stranger.get(detail(rows[0])).status_code == 404


def test_a_funder_helping_the_same_person_does_not_read_of_another_funders_aid(program):
    beneficiary = person()
    _, rows = grant(program, beneficiary)
    other = FunderFactory()
    beneficiary_enrol(funder=other, beneficiary=beneficiary)
    stranger = agent_client(other)

    assert list(stranger.get(CHANGELIST).context["cl"].result_list) == []
    assert stranger.get(detail(rows[0])).status_code == 404


def test_nobody_edits_the_outbox(program, funder):
    beneficiary = person()
    _, rows = grant(program, beneficiary)
    manager = _make_staff(funder=funder, role=Membership.Role.ADMINISTRATOR)
    client = Client()
    client.force_login(manager)

    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert client.post(detail(rows[0]), {"body": "changed"}).status_code == 403
    assert client.post(f"{CHANGELIST}{rows[0].pk}/delete/", {"post": "yes"}).status_code == 403
    rows[0].refresh_from_db()
    assert rows[0].body != "changed"


def test_a_worker_imports_the_task_module():
    # Autodiscovery finds only the installed apps' own tasks.py; a worker that does not import
    # this module drops every notification it is handed.
    assert apps.get_containing_app_config(tasks.__name__).name + ".tasks" == tasks.__name__


def test_a_sign_in_code_is_never_shown_in_the_outbox_admin(db):
    from beneficiary_app.services import contact_parse, sign_in_code_request

    funder = FunderFactory()
    person = BeneficiaryFactory(phone="+33612345678")
    beneficiary_enrol(funder=funder, beneficiary=person)
    sign_in_code_request(contact=contact_parse("06 12 34 56 78"))
    (message,) = Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE)
    code = re.search(r"\b\d{6}\b", message.body).group(0)

    client = Client()
    client.force_login(_make_staff(funder=funder, role=Membership.Role.AGENT))
    page = client.get(f"/admin/wallet/notification/{message.pk}/change/")
    assert page.status_code == 200
    assert "sign-in code" in page.content.decode() or "connexion" in page.content.decode()
    assert code not in page.content.decode()
