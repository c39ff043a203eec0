"""The balance by SMS: a beneficiary texts SOLDE and gets each aid's balance and end date back,
in their language, once per message; the webhook answers only the SMS provider."""

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from notifications.inbound import REPLIES_PER_HOUR, is_balance_request, sender_e164
from notifications.tasks import send_notification
from tests.factories import BeneficiaryFactory, FunderFactory, make_allocation, make_program
from wallet.models.notifications import Notification

PARIS = ZoneInfo("Europe/Paris")
PHONE = "+33612345678"
URL = "/hooks/sms/inbound"
SECRET = "s3cret-shared-with-the-provider"
Kind = Notification.Kind
Channel = Notification.Channel


class RecordingSMSBackend:
    sent: list[tuple[str, str]] = []

    def send(self, phone: str, text: str, sender: str | None = None) -> None:
        RecordingSMSBackend.sent.append((phone, text))


@pytest.fixture(autouse=True)
def sms(settings):
    settings.SMS_BACKEND = f"{__name__}.RecordingSMSBackend"
    settings.SMS_INBOUND_SECRET = SECRET
    RecordingSMSBackend.sent = []
    return RecordingSMSBackend


@pytest.fixture
def provider():
    """The SMS provider, posting JSON with the shared secret."""

    class Provider(Client):
        def deliver(self, body, *, secret=SECRET):
            headers = {"X-SMS-Webhook-Secret": secret} if secret is not None else {}
            return self.post(
                URL, data=json.dumps(body), content_type="application/json", headers=headers
            )

    return Provider()


@pytest.fixture
def person(db, time_machine):
    time_machine.move_to(datetime(2027, 3, 10, 15, 30, tzinfo=PARIS), tick=False)
    return BeneficiaryFactory(first_name="Camille", phone=PHONE, preferred_language="fr")


def grant(person, *, funder=None, amount=4_250, **fields):
    program = make_program(funder=funder or FunderFactory())
    fields.setdefault("valid_from", datetime(2027, 3, 1, tzinfo=PARIS))
    fields.setdefault("valid_until", datetime(2027, 4, 1, tzinfo=PARIS))
    return make_allocation(program=program, beneficiary=person, amount=amount, **fields)


def replies(person=None) -> list[Notification]:
    found = Notification.objects.filter(kind=Kind.BALANCE_REPLY).order_by("pk")
    return list(found.filter(beneficiary=person) if person else found)


@pytest.mark.parametrize("text", ["SOLDE", "solde", " Soldé ? ", "BALANCE", "balance!", "Solde."])
def test_the_balance_words_are_understood_whatever_their_case_and_accents(text):
    assert is_balance_request(text)


@pytest.mark.parametrize("text", ["", "bonjour", "solde svp", "soldes 2", "STOP"])
def test_other_words_are_not_a_balance_request(text):
    assert not is_balance_request(text)


@pytest.mark.parametrize(
    "sender", ["+33612345678", "33612345678", "0033612345678", "06 12 34 56 78", "06.12.34.56.78"]
)
def test_the_sender_is_read_however_the_provider_writes_it(sender):
    assert sender_e164(sender) == PHONE


@pytest.mark.parametrize("sender", ["INFO", "12345", "+1234"])
def test_a_sender_that_is_not_a_phone_number_is_no_one(sender):
    assert sender_e164(sender) is None


@pytest.mark.django_db
def test_solde_is_answered_with_each_aid_its_balance_and_end_date(person, provider, sms):
    aid = grant(person)
    funder = aid.program.funder
    other = grant(person, funder=funder, amount=1_000)

    response = provider.deliver({"from": "33612345678", "text": "Solde", "id": "msg-1"})

    assert response.status_code == 200
    [reply] = replies(person)
    assert (reply.channel, reply.recipient, reply.funder) == (Channel.SMS, PHONE, funder)
    first, second = reply.body.split(";")
    assert aid.program.name in first
    assert "42,50 €" in first
    assert "31 mars 2027" in first
    assert other.program.name in second
    assert "10,00 €" in second
    assert send_notification(reply.pk) == Notification.Status.SENT
    assert sms.sent == [(PHONE, reply.body)]


@pytest.mark.django_db
def test_the_answer_is_in_the_beneficiary_s_language(person, provider):
    person.preferred_language = "en"
    person.save()
    aid = grant(person)

    provider.deliver({"from": PHONE, "text": "BALANCE"})

    [reply] = replies(person)
    assert f"{aid.program.name}: €42.50 until March 31, 2027 included" in reply.body


@pytest.mark.django_db
def test_each_funder_s_aid_is_told_in_its_own_sms(person, provider):
    first, second = grant(person), grant(person, amount=2_000)

    provider.deliver({"from": PHONE, "text": "SOLDE"})

    by_funder = {reply.funder: reply for reply in replies(person)}
    assert set(by_funder) == {first.program.funder, second.program.funder}
    assert first.program.name in by_funder[first.program.funder].body
    assert second.program.name not in by_funder[first.program.funder].body


@pytest.mark.django_db
def test_aid_ended_or_not_yet_started_is_not_in_the_answer(person, provider):
    grant(
        person,
        valid_from=datetime(2027, 2, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 3, 1, tzinfo=PARIS),
    )
    grant(person, valid_from=datetime(2027, 5, 1, tzinfo=PARIS), valid_until=None)

    provider.deliver({"from": PHONE, "text": "SOLDE"})

    [reply] = replies(person)
    assert reply.funder is None
    assert "€" not in reply.body


@pytest.mark.django_db
def test_a_message_delivered_twice_is_answered_once(person, provider, sms):
    grant(person)

    for _ in range(2):
        assert provider.deliver({"from": PHONE, "text": "SOLDE", "id": "msg-1"}).status_code == 200
    [reply] = replies(person)
    send_notification(reply.pk)
    send_notification(reply.pk)

    assert len(sms.sent) == 1


@pytest.mark.django_db
def test_without_an_id_the_same_words_in_the_same_minute_are_one_request(
    person, provider, time_machine
):
    grant(person)

    provider.deliver({"from": PHONE, "text": "SOLDE"})
    provider.deliver({"from": PHONE, "text": "SOLDE"})
    assert len(replies(person)) == 1
    time_machine.shift(60)
    provider.deliver({"from": PHONE, "text": "SOLDE"})

    assert len(replies(person)) == 2


@pytest.mark.django_db
def test_answers_are_bounded_per_hour(person, provider):
    grant(person)

    for n in range(REPLIES_PER_HOUR + 2):
        assert provider.deliver({"from": PHONE, "text": "SOLDE", "id": f"m{n}"}).status_code == 200

    assert len(replies(person)) == REPLIES_PER_HOUR


@pytest.mark.django_db
def test_everyone_sharing_the_number_gets_their_own_answer(person, provider):
    partner = BeneficiaryFactory(phone=PHONE, preferred_language="en")
    grant(person)
    grant(partner, amount=900)

    provider.deliver({"from": PHONE, "text": "SOLDE"})

    assert len(replies(person)) == len(replies(partner)) == 1
    assert "9,00" not in replies(person)[0].body
    assert "€9.00" in replies(partner)[0].body


@pytest.mark.django_db
def test_an_unknown_number_gets_no_answer_and_the_provider_an_ordinary_200(person, provider):
    grant(person)

    response = provider.deliver({"from": "+33699999999", "text": "SOLDE"})
    known = provider.deliver({"from": PHONE, "text": "bonjour"})

    assert (response.status_code, known.status_code) == (200, 200)
    assert response.json() == known.json()
    assert not Notification.objects.filter(kind=Kind.BALANCE_REPLY).exists()


@pytest.mark.django_db
def test_a_form_post_works_too(person):
    grant(person)

    response = Client().post(
        URL, {"from": PHONE, "text": "solde"}, headers={"X-SMS-Webhook-Secret": SECRET}
    )

    assert response.status_code == 200
    assert len(replies(person)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("secret", [None, "", "wrong"])
def test_a_bad_secret_is_refused_and_answers_nothing(person, provider, secret):
    grant(person)

    response = provider.deliver({"from": PHONE, "text": "SOLDE"}, secret=secret)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "authentication_failed"
    assert replies() == []


@pytest.mark.django_db
def test_without_a_secret_set_the_webhook_does_not_exist(person, provider, settings):
    settings.SMS_INBOUND_SECRET = ""

    response = provider.deliver({"from": PHONE, "text": "SOLDE"}, secret="")

    assert response.status_code == 404
    assert replies() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"text": "SOLDE"}, "invalid_request", "from"),
        ({"from": "", "text": "SOLDE"}, "invalid_request", "from"),
        ({"from": PHONE}, "invalid_request", "text"),
        ({"from": PHONE, "text": ["SOLDE"]}, "invalid_request", "text"),
        ({"from": PHONE, "text": "x" * 2_000}, "invalid_request", "text"),
        ({"from": PHONE, "text": "SOLDE", "id": {"a": 1}}, "invalid_request", "id"),
        (["SOLDE"], "malformed_request", None),
    ],
)
def test_bad_input_is_refused_with_a_code(person, provider, body, code, field):
    response = provider.deliver(body)

    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (code, field)


@pytest.mark.django_db
def test_malformed_json_is_refused(person):
    response = Client().post(
        URL, "{not json", content_type="application/json", headers={"X-SMS-Webhook-Secret": SECRET}
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


@pytest.mark.django_db
def test_only_post_is_accepted(person):
    response = Client().get(URL, headers={"X-SMS-Webhook-Secret": SECRET})

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
