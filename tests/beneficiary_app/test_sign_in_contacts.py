"""Sign-in finds the recorded contact by its canonical form, with "=", and sends the code to the
contact as recorded: a look-alike address gets nothing (the wallet takeover of issue 15); the
request does the same work whether or not the contact is known; each contact has one budget."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from beneficiary_app.api import auth
from tests.beneficiary_app.conftest import AppClient, error_code
from tests.factories import BeneficiaryFactory
from tests.markers import postgresql_case_folding
from wallet.models import Notification
from wallet.models.access import AppToken, SignInCode

VICTIM = "sam@gmail.com"


def ask_code(client, contact: str):
    return client.send("/auth/code", {"contact": contact})


def sign_in(client, contact: str, code: str):
    return client.send("/auth/token", {"contact": contact, "code": code})


def codes_sent_to(contact: str) -> list[str]:
    bodies = Notification.objects.filter(
        kind=Notification.Kind.SIGN_IN_CODE, recipient=contact
    ).values_list("body", flat=True)
    return [re.search(r"\b(\d{6})\b", body)[1] for body in bodies]


@pytest.fixture
def victim(db):
    return BeneficiaryFactory(first_name="Sam", email=VICTIM, phone="+33612345678")


# --- look-alike addresses -------------------------------------------------------------------


@postgresql_case_folding
def test_a_look_alike_domain_gets_no_code_and_no_token(anonymous, victim):
    # given an attacker who registered gmail.com with a dotless i (U+0131), which PostgreSQL's
    # UPPER() folds to GMAIL.COM
    lookalike = "sam@gma\u0131l.com"

    # when they ask a code for it, then try to sign in with whatever reached them
    asked = ask_code(anonymous, lookalike)
    sent = codes_sent_to(lookalike) + codes_sent_to("sam@xn--gmal-nza.com")
    tried = sign_in(anonymous, lookalike, sent[0] if sent else "000000")

    # then the answer is an unknown contact's, nothing was sent or stored, and no token exists
    assert asked.status_code == 202
    assert sent == []
    assert not Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE).exists()
    assert not SignInCode.objects.exists()
    assert tried.status_code == 400
    assert error_code(tried) == "invalid_code"
    assert not AppToken.objects.exists()


def test_a_look_alike_letter_before_the_at_sign_is_refused_and_gets_no_token(anonymous, victim):
    # the long s (U+017F): PostgreSQL's UPPER() makes it S; Django's email check lets it through
    lookalike = "\u017fam@gmail.com"

    asked = ask_code(anonymous, lookalike)
    sent = codes_sent_to(lookalike)
    tried = sign_in(anonymous, lookalike, sent[0] if sent else "000000")

    assert asked.status_code == 400
    assert error_code(asked) == "non_ascii_email"
    assert asked.json()["error"]["field"] == "contact"
    assert sent == []
    assert not Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE).exists()
    assert not SignInCode.objects.exists()
    assert tried.status_code == 400
    assert not AppToken.objects.exists()


def test_the_non_ascii_refusal_is_in_the_callers_language(victim):
    french = ask_code(AppClient(language="fr"), "élodie@example.org").json()["error"]
    english = ask_code(AppClient(language="en"), "élodie@example.org").json()["error"]

    assert french["code"] == english["code"] == "non_ascii_email"
    assert french["message"] != english["message"]
    assert "@" in french["message"] and "@" in english["message"]


def test_a_mixed_case_address_signs_in_and_the_code_goes_to_the_recorded_address(anonymous, victim):
    asked = ask_code(anonymous, "  SAM@Gmail.COM ")

    [message] = Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE)
    assert asked.status_code == 202
    assert (message.recipient, message.beneficiary) == (VICTIM, victim)
    assert SignInCode.objects.get().contact == VICTIM
    signed_in = sign_in(anonymous, "Sam@gmail.com", codes_sent_to(VICTIM)[0])
    assert signed_in.status_code == 200
    assert AppToken.objects.get().wallet == victim.wallet


def test_an_international_domain_is_recorded_in_punycode_and_signs_in(anonymous):
    person = BeneficiaryFactory(email="Marie@Bücher.DE")

    ask_code(anonymous, "marie@bücher.de")

    assert person.email == "marie@xn--bcher-kva.de"
    person.refresh_from_db()
    assert person.email == "marie@xn--bcher-kva.de"
    [code] = codes_sent_to("marie@xn--bcher-kva.de")
    assert sign_in(anonymous, "MARIE@xn--bcher-kva.de", code).status_code == 200


# --- the same work whether or not the contact is known ---------------------------------------


def test_asking_a_code_runs_the_same_queries_for_a_known_and_an_unknown_contact(
    anonymous, victim, monkeypatch
):
    queued = []
    monkeypatch.setattr(auth.sign_in_code_send, "delay", lambda *args: queued.append(args))

    with CaptureQueriesContext(connection) as known:
        assert ask_code(anonymous, VICTIM).status_code == 202
    with CaptureQueriesContext(connection) as unknown:
        assert ask_code(anonymous, "nobody@gmail.com").status_code == 202

    assert [q["sql"] for q in known.captured_queries] == [
        q["sql"].replace("nobody@gmail.com", VICTIM) for q in unknown.captured_queries
    ]
    assert queued == [(VICTIM, "email", "fr"), ("nobody@gmail.com", "email", "fr")]


def test_the_queued_task_sends_the_code_in_the_language_of_the_request(victim):
    ask_code(AppClient(language="en"), VICTIM)

    message = Notification.objects.get(kind=Notification.Kind.SIGN_IN_CODE)
    assert "code" in message.subject.lower() and "Votre" not in message.subject


# --- one budget per contact, per day ---------------------------------------------------------


def test_spellings_of_one_address_share_its_budget_of_codes_and_a_day_caps_it(victim):
    spellings = [VICTIM, "Sam@Gmail.com", "SAM@GMAIL.COM", " sam@gmail.com", "sAm@gmail.com"]
    now = timezone.now()
    for batch in range(2):  # 5 an hour: two batches, hours apart
        with time_machine.travel(now + timedelta(hours=2 * batch)):
            for n, spelling in enumerate(spellings):
                client = AppClient(REMOTE_ADDR=f"10.0.{batch}.{n}")
                assert ask_code(client, spelling).status_code == 202

    with time_machine.travel(now + timedelta(hours=5)):
        refused = ask_code(AppClient(REMOTE_ADDR="10.9.9.9"), VICTIM)

    assert refused.status_code == 429
    assert error_code(refused) == "rate_limited"
    assert SignInCode.objects.count() == 10
    with time_machine.travel(now + timedelta(days=1, hours=1)):
        assert ask_code(AppClient(REMOTE_ADDR="10.9.9.9"), VICTIM).status_code == 202


def test_code_checks_are_capped_per_contact_per_day_from_any_address(victim):
    for n in range(20):
        tried = sign_in(AppClient(REMOTE_ADDR=f"10.0.0.{n}"), "Sam@Gmail.com", "123456")
        assert tried.status_code == 400

    refused = sign_in(AppClient(REMOTE_ADDR="10.0.1.1"), VICTIM, "123456")
    someone_else = sign_in(AppClient(REMOTE_ADDR="10.0.1.1"), "nobody@gmail.com", "123456")

    assert refused.status_code == 429
    assert someone_else.status_code == 400


def test_an_ipv6_client_is_counted_per_64_block(victim):
    for n in range(20):
        sign_in(AppClient(REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}"), f"p{n}@gmail.com", "123456")

    same_block = sign_in(AppClient(REMOTE_ADDR="2001:db8:1:2:ffff::9"), VICTIM, "123456")
    next_block = sign_in(AppClient(REMOTE_ADDR="2001:db8:1:3::1"), VICTIM, "123456")

    assert same_block.status_code == 429
    assert next_block.status_code == 400
