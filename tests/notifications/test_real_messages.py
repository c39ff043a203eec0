"""Real messages: SMS through Brevo's API and email through django-anymail's Brevo backend, both
to a local fake of Brevo speaking its API (tests/notifications/brevo_fake.py) through the real
client code; Brevo's SMS webhook (delivery reports, replies, opt-outs) and anymail's tracking
webhook; STOP honoured; failing contacts shown to agents."""

import base64
import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from demo.management.commands.demo import Command as DemoCommand
from funders.services import beneficiary_enrol
from notifications.selectors import contact_failing
from notifications.services import notification_send, notifications_send
from tests.factories import BeneficiaryFactory, make_allocation, make_program
from wallet.models import SmsOptOut
from wallet.models.notifications import Notification

PARIS = ZoneInfo("Europe/Paris")
PHONE = "+33612345678"
EMAIL = "camille@example.org"
SECRET = "s3cret-shared-with-brevo"
Kind, Channel, Status, Delivery = (
    Notification.Kind,
    Notification.Channel,
    Notification.Status,
    Notification.Delivery,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(time_machine):
    time_machine.move_to(datetime(2027, 3, 10, 15, 30, tzinfo=PARIS), tick=False)
    return BeneficiaryFactory(first_name="Camille", phone=PHONE, email=EMAIL)


@pytest.fixture
def hooks(settings):
    settings.SMS_INBOUND_SECRET = SECRET
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "brevo:hook-password"}


def grant(person, program=None) -> dict[str, Notification]:
    allocation = make_allocation(program=program or make_program(), beneficiary=person)
    rows = Notification.objects.filter(
        kind=Kind.ALLOCATION_GRANTED,
        dedupe_key__startswith=f"{Kind.ALLOCATION_GRANTED}:{allocation.pk}:",
    )
    return {row.channel: row for row in rows}


def send(notification: Notification) -> Notification:
    return notification_send(notification_id=notification.pk)


def brevo_sms_event(**fields):
    return Client().post(
        reverse("sms-brevo"),
        json.dumps(fields),
        content_type="application/json",
        headers={"Authorization": f"Bearer {SECRET}"},
    )


# --- SMS through Brevo -----------------------------------------------------------------------


def test_an_sms_leaves_through_brevo_and_its_id_is_kept(person, brevo_fake, settings):
    settings.SMS_STATUS_WEBHOOK_URL = "https://wallet.example.org/hooks/sms/brevo"
    sms = send(grant(person)[Channel.SMS])

    assert sms.status == Status.SENT
    (sent,) = brevo_fake.sms()
    assert sent["recipient"] == "33612345678"
    assert sent["sender"] == settings.SMS_SENDER
    assert sent["content"] == sms.body
    assert sent["type"] == "transactional"
    assert sent["webUrl"] == "https://wallet.example.org/hooks/sms/brevo"
    assert sent["unicodeEnabled"] is False  # French text made GSM-friendly
    assert sms.provider_message_id == "1511882900176220"


def test_a_batch_goes_to_brevo_on_one_connection_a_channel_and_a_failure_is_its_own(
    person, brevo_fake
):
    others = [
        BeneficiaryFactory(phone=f"+3361234567{n}", email=f"p{n}@example.org") for n in (1, 2)
    ]
    rows = [grant(someone) for someone in (person, *others)]
    brevo_fake.failures = [(500, {"code": "internal_error", "message": "try later"})]

    notifications_send(
        notification_ids=[
            row[channel].pk for row in rows for channel in (Channel.SMS, Channel.EMAIL)
        ]
    )

    sms = [r for r in brevo_fake.requests if r.path == "/v3/transactionalSMS/sms"]
    emails = [r for r in brevo_fake.requests if r.path == "/v3/smtp/email"]
    assert len(sms) == len(emails) == 3
    # The failed SMS's client is dropped; the two after it share a new connection.
    assert sms[1].port == sms[2].port != sms[0].port
    assert len({r.port for r in emails}) == 1
    statuses = {
        (n.recipient, n.channel): n.status
        for n in Notification.objects.filter(kind=Kind.ALLOCATION_GRANTED)
    }
    assert statuses.pop((PHONE, Channel.SMS)) == Status.FAILED
    assert set(statuses.values()) == {Status.SENT}


def test_an_sms_about_a_funders_aid_leaves_under_the_funders_sender_name(person, brevo_fake):
    program = make_program()
    program.funder.sms_sender = "ISERE"
    program.funder.save()

    send(grant(person, program)[Channel.SMS])

    (sent,) = brevo_fake.sms()
    assert sent["sender"] == "ISERE"


@pytest.mark.parametrize("name", ["IS", "Département", "ISERE-38", "123456", "ISERE DEPT 38"])
def test_a_sender_name_operators_would_refuse_is_refused_in_the_form(name):
    from django.core.exceptions import ValidationError

    from funders.models import Funder

    field = Funder._meta.get_field("sms_sender")
    with pytest.raises(ValidationError):
        field.run_validators(name)
    field.run_validators("CD 38")  # a letter, digits and a space: taken


def test_brevo_refusing_an_sms_fails_it_for_a_retry_with_the_number_masked(person, brevo_fake):
    brevo_fake.failures = [(400, {"code": "invalid_parameter", "message": "Bad 33612345678"})]
    sms = send(grant(person)[Channel.SMS])

    assert sms.status == Status.FAILED
    assert "400" in sms.error and "612345678" not in sms.error
    assert sms.next_attempt_at is not None
    # the retry goes through
    assert send(sms).status == Status.SENT


def test_brevo_delivery_reports_set_the_delivery_state(person, brevo_fake, hooks):
    sms = send(grant(person)[Channel.SMS])

    answer = brevo_sms_event(
        msg_status="delivered", messageId=int(sms.provider_message_id), to="33612345678"
    )
    assert answer.status_code == 200
    sms.refresh_from_db()
    assert sms.delivery == Delivery.DELIVERED and sms.delivery_reported_at
    assert contact_failing(person) == []

    later = send(grant(person)[Channel.SMS])
    brevo_sms_event(
        msg_status="hard_bounce",
        messageId=int(later.provider_message_id),
        to="33612345678",
        description="Number unreachable",
    )
    later.refresh_from_db()
    assert later.delivery == Delivery.BOUNCED
    (failing,) = contact_failing(person)
    assert (failing.channel, failing.why) == (Channel.SMS, Delivery.BOUNCED)
    assert failing.recipient.endswith("78") and "612345678" not in failing.recipient
    # a late "delivered" of the bounced message does not take the failure back
    brevo_sms_event(msg_status="delivered", messageId=int(later.provider_message_id), to="x")
    later.refresh_from_db()
    assert later.delivery == Delivery.BOUNCED


def test_brevo_batched_events_are_all_read(person, brevo_fake, hooks):
    first = send(grant(person)[Channel.SMS])
    second = send(grant(person)[Channel.SMS])
    answer = brevo_sms_event(msg_status="delivered", messageId=int(first.provider_message_id))
    assert answer.status_code == 200
    answer = Client().post(
        reverse("sms-brevo"),
        json.dumps(
            [
                {"msg_status": "delivered", "messageId": int(second.provider_message_id)},
                {"msg_status": "soft_bounce", "messageId": int(first.provider_message_id)},
            ]
        ),
        content_type="application/json",
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert answer.status_code == 200
    second.refresh_from_db()
    assert second.delivery == Delivery.DELIVERED


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {"msg_status": "delivered"}, 403, "authentication_failed"),
        ({"Authorization": "Bearer wrong"}, {"msg_status": "delivered"}, 403, None),
        ({"Authorization": f"Bearer {SECRET}"}, {"no": "status"}, 400, "malformed_request"),
        ({"Authorization": f"Bearer {SECRET}"}, [1, 2], 400, "malformed_request"),
        ({"Authorization": f"Bearer {SECRET}"}, {"msg_status": "x", "to": {}}, 400, None),
    ],
)
def test_the_brevo_webhook_refuses_strangers_and_malformed_bodies(
    hooks, headers, body, status, code
):
    answer = Client().post(
        reverse("sms-brevo"), json.dumps(body), content_type="application/json", headers=headers
    )
    assert answer.status_code == status
    if code:
        assert answer.json()["error"]["code"] == code


def test_the_brevo_webhook_does_not_exist_without_a_secret(settings):
    settings.SMS_INBOUND_SECRET = ""
    assert brevo_sms_event(msg_status="delivered").status_code == 404


def test_a_reply_solde_through_brevo_is_answered_with_the_balance(person, brevo_fake, hooks):
    grant(person)
    answer = brevo_sms_event(msg_status="replied", to="33612345678", reply="Solde", ts_event=1)
    assert answer.status_code == 200
    (reply,) = Notification.objects.filter(kind=Kind.BALANCE_REPLY, beneficiary=person)
    assert reply.channel == Channel.SMS and "100,00" in reply.body


# --- STOP -----------------------------------------------------------------------------------


def test_stop_is_recorded_and_honoured_and_start_undoes_it(person, brevo_fake, hooks):
    brevo_sms_event(msg_status="replied", to="33612345678", reply="STOP", ts_event=2)
    assert SmsOptOut.objects.get(phone=PHONE).source == "sms"
    assert contact_failing(person)[0].why == Delivery.OPTED_OUT

    # no more news by SMS; email still goes
    rows = grant(person)
    assert rows[Channel.SMS].status == Status.SKIPPED
    assert rows[Channel.SMS].skip_reason == Notification.SkipReason.OPTED_OUT
    assert rows[Channel.EMAIL].status == Status.QUEUED

    # what the person asks for still comes: a sign-in code
    code = Notification.objects.create(
        beneficiary=person,
        kind=Kind.SIGN_IN_CODE,
        channel=Channel.SMS,
        recipient=PHONE,
        body="Code : 123456",
        next_attempt_at=person.created_at,
        dedupe_key="sign_in_code:test:sms",
    )
    assert send(code).status == Status.SENT

    # START, through the provider-neutral hook, in another spelling
    Client().post(
        reverse("sms-inbound"),
        {"from": "0612345678", "text": "start"},
        headers={"X-SMS-Webhook-Secret": SECRET},
    )
    assert not SmsOptOut.objects.exists()
    assert grant(person)[Channel.SMS].status == Status.QUEUED


@pytest.mark.parametrize("word", ["STOP", "Stop.", "ARRÊT", "arret", "STOP SMS", "unsubscribe"])
def test_the_stop_words(person, hooks, word):
    Client().post(
        reverse("sms-inbound"),
        {"from": PHONE, "text": word},
        headers={"X-SMS-Webhook-Secret": SECRET},
    )
    assert SmsOptOut.objects.filter(phone=PHONE).exists()


def test_a_message_queued_before_stop_is_not_sent_after_it(person, brevo_fake, hooks):
    sms = grant(person)[Channel.SMS]
    brevo_sms_event(msg_status="unsubscribed", to="33612345678", messageId=1)
    assert SmsOptOut.objects.get(phone=PHONE).source == "provider"

    sms = send(sms)
    assert sms.status == Status.SKIPPED and brevo_fake.sms() == []


# --- email through django-anymail -------------------------------------------------------------


def tracking(event: dict, auth: str | None = "brevo:hook-password"):
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return Client().post(
        reverse("email-tracking", args=["brevo"]),
        json.dumps(event),
        content_type="application/json",
        headers=headers,
    )


def test_an_email_leaves_through_anymail_and_a_bounce_marks_the_contact_failing(
    person, brevo_fake, hooks
):
    email = send(grant(person)[Channel.EMAIL])

    assert email.status == Status.SENT
    (sent,) = brevo_fake.emails()
    assert sent["to"] == [{"email": EMAIL}]
    assert sent["subject"] == email.subject
    assert email.provider_message_id.endswith("@smtp-relay.mailin.fr>")

    event = {"event": "delivered", "email": EMAIL, "message-id": email.provider_message_id}
    assert tracking({**event, "ts_event": 1}).status_code == 200
    email.refresh_from_db()
    assert email.delivery == Delivery.DELIVERED

    bounced = send(grant(person)[Channel.EMAIL])
    answer = tracking(
        {
            "event": "hard_bounce",
            "email": EMAIL,
            "message-id": bounced.provider_message_id,
            "reason": "550 no such user",
            "ts_event": 2,
        }
    )
    assert answer.status_code == 200
    bounced.refresh_from_db()
    assert bounced.delivery == Delivery.BOUNCED
    (failing,) = contact_failing(person)
    assert (failing.channel, failing.why) == (Channel.EMAIL, Delivery.BOUNCED)


def test_a_complaint_fails_the_contact_and_a_soft_bounce_does_not(person, brevo_fake, hooks):
    email = send(grant(person)[Channel.EMAIL])
    tracking({"event": "soft_bounce", "email": EMAIL, "message-id": email.provider_message_id})
    email.refresh_from_db()
    assert email.delivery == Delivery.DEFERRED
    assert contact_failing(person) == []

    tracking({"event": "spam", "email": EMAIL, "message-id": email.provider_message_id})
    email.refresh_from_db()
    assert email.delivery == Delivery.COMPLAINED
    assert contact_failing(person)[0].why == Delivery.COMPLAINED


def test_the_tracking_webhook_takes_no_stranger(person, brevo_fake, hooks, settings):
    email = send(grant(person)[Channel.EMAIL])
    event = {"event": "hard_bounce", "email": EMAIL, "message-id": email.provider_message_id}
    assert tracking(event, auth=None).status_code == 400
    assert tracking(event, auth="brevo:wrong").status_code == 400
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": None}
    assert tracking(event).status_code == 404
    email.refresh_from_db()
    assert email.delivery == ""


# --- what agents see -----------------------------------------------------------------------


def test_agents_see_the_delivery_state_and_the_failing_contact(
    person, brevo_fake, hooks, funder, agent
):
    beneficiary_enrol(funder=funder, beneficiary=person)
    sms = send(grant(person, make_program(funder=funder))[Channel.SMS])
    brevo_sms_event(msg_status="hard_bounce", messageId=int(sms.provider_message_id))
    client = Client()
    client.force_login(agent)

    outbox = client.get(reverse("admin:wallet_notification_changelist"), {"delivery": "bounced"})
    assert outbox.status_code == 200
    assert list(outbox.context["cl"].result_list) == [sms]

    file = client.get(reverse("admin:wallet_beneficiary_change", args=[person.pk]))
    warnings = [str(message) for message in file.context["messages"]]
    assert any("78" in text and "612345678" not in text for text in warnings), warnings


# --- the demo shows sign-in codes itself ---------------------------------------------------


def test_the_demo_prints_the_sign_in_codes_the_logs_mask(person):
    out = io.StringIO()
    demo = DemoCommand(stdout=out)
    seen = demo._show_sign_in_codes(0)
    Notification.objects.create(
        beneficiary=person,
        kind=Kind.SIGN_IN_CODE,
        channel=Channel.SMS,
        recipient=PHONE,
        body="Votre code de connexion : 428195",
        dedupe_key="sign_in_code:demo:sms",
    )
    demo._show_sign_in_codes(seen)
    assert "428195" in out.getvalue()
    assert "612345678" not in out.getvalue()
