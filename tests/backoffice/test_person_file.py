"""A person's file in the back office: what an agent reads when the person calls, limited to
the agent's funder, and the search by name, phone and file number."""

from datetime import datetime

import pytest
import time_machine
from django.urls import reverse

from core.time import PARIS, end_of_day
from funders.models import Membership
from funders.services import allocation_revoke, beneficiary_enrol
from merchants.payments import payment_authorize
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
    make_staff,
)
from tests.funders.conftest import client_for
from wallet.models import Card, Decision

pytestmark = pytest.mark.django_db

NOW = "2027-09-18 10:00 +02:00"


@pytest.fixture
def person(funder, other_funder):
    """Enrolled with both funders, each giving one aid; one refused and one accepted payment."""
    person = BeneficiaryFactory(first_name="Awa", last_name="Diallo", phone="+33670000022")
    beneficiary_enrol(funder=funder, beneficiary=person, reference="DOS-2027-0042")
    beneficiary_enrol(funder=other_funder, beneficiary=person, reference="SAV-77")
    with time_machine.travel("2027-09-01 10:00 +02:00"):
        ours = make_program(
            funder=funder,
            name="Aide alimentaire",
            rules={"limits": {"per_payment": 3000}, "categories": {"allow_groups": ["food"]}},
        )
        theirs = make_program(
            funder=other_funder,
            name="Aide Savoie secrète",
            rules={"categories": {"allow_groups": ["food"]}},
        )
        make_allocation(
            program=ours,
            beneficiary=person,
            amount=15_000,
            valid_from=datetime(2027, 9, 1, tzinfo=PARIS),
            valid_until=end_of_day(datetime(2027, 9, 30).date()),
        )
        revoked = make_allocation(program=ours, beneficiary=person, amount=2_000)
        allocation_revoke(allocation=revoked, reason="erreur de saisie")
        make_allocation(program=theirs, beneficiary=person, amount=9_900)
    card = Card.objects.create(wallet=person.wallet, kind="virtual", status="active", last4="4242")
    grocery = make_merchant(trade_name="Épicerie du Cours Berriat")
    bar = make_merchant(trade_name="Bar du Centre", mcc="5813")
    with time_machine.travel("2027-09-17 11:00 +02:00"):
        for shop, amount in ((grocery, 1_250), (bar, 1_800)):
            payment_authorize(
                merchant=shop,
                amount=amount,
                currency="EUR",
                payment_code=make_payment_code(card.wallet),
            )
    return person


@time_machine.travel(NOW)
def test_the_file_shows_each_aid_card_payment_and_history_of_the_agent_s_funder(agent, person):
    page = client_for(agent).get(reverse("admin:wallet_beneficiary_change", args=[person.pk]))
    text = page.content.decode()

    assert page.status_code == 200
    assert "Aide alimentaire" in text
    assert "150,00" in text  # the balance in euros, not 15000 cents
    assert "30 septembre 2027 inclus" in text and "12 jours" in text  # validity in whole days
    assert "30,00\xa0€ par paiement" in text  # the rules in plain words
    assert "•••• 4242" in text and "Geler la carte" in text
    # the payments, and a refusal in the words the person read, the raw code behind
    # "technical details"
    assert "Épicerie du Cours Berriat" in text and "12,50" in text
    assert "Bar du Centre" in text
    assert "cette aide ne peut pas être utilisée dans ce type de commerce" in text
    assert "Détails techniques" in text and "merchant_category_not_allowed" in text
    assert "révoquée" in text and "erreur de saisie" in text
    # another funder's aid stays private
    assert "Aide Savoie secrète" not in text
    assert "99,00" not in text


@time_machine.travel(NOW)
def test_an_agent_freezes_and_unfreezes_the_card_from_the_file(agent, person):
    client = client_for(agent)
    card = person.wallet.cards.get()
    url = reverse("admin:wallet_beneficiary_card", args=[person.pk, card.pk, "freeze"])

    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    card.refresh_from_db()
    assert card.status == Card.Status.FROZEN
    assert "Dégeler la carte" in response.content.decode()

    client.post(reverse("admin:wallet_beneficiary_card", args=[person.pk, card.pk, "unfreeze"]))
    card.refresh_from_db()
    assert card.status == Card.Status.ACTIVE


def test_another_funder_s_staff_cannot_reach_a_person_they_do_not_help(person):
    stranger = make_staff(funder=make_program().funder, role=Membership.Role.MANAGER)
    card = person.wallet.cards.get()
    client = client_for(stranger)

    assert (
        client.get(reverse("admin:wallet_beneficiary_change", args=[person.pk])).status_code == 404
    )
    url = reverse("admin:wallet_beneficiary_card", args=[person.pk, card.pk, "freeze"])
    assert client.post(url).status_code == 404
    card.refresh_from_db()
    assert card.status == Card.Status.ACTIVE


def test_a_card_of_someone_else_is_not_reached_through_a_person_s_file(agent, person, funder):
    other = BeneficiaryFactory()
    beneficiary_enrol(funder=funder, beneficiary=other)
    card = person.wallet.cards.get()
    url = reverse("admin:wallet_beneficiary_card", args=[other.pk, card.pk, "freeze"])

    assert client_for(agent).post(url).status_code == 404


@pytest.mark.parametrize(
    "term", ["Diallo", "06 70 00 00 22", "0670000022", "+33 6 70 00 00 22", "dos-2027-0042"]
)
def test_an_agent_finds_the_person_by_name_phone_or_file_number(agent, person, term):
    page = client_for(agent).get(reverse("admin:wallet_beneficiary_changelist"), {"q": term})

    assert list(page.context["cl"].result_list) == [person]


def test_another_funder_s_file_number_finds_nobody(agent, person):
    page = client_for(agent).get(reverse("admin:wallet_beneficiary_changelist"), {"q": "SAV-77"})

    assert list(page.context["cl"].result_list) == []


@time_machine.travel(NOW)
def test_a_payment_reads_in_euros_and_words_with_no_idempotency_key(agent, person):
    refused = Decision.objects.get(merchant__trade_name="Bar du Centre")
    client = client_for(agent)

    listed = client.get(reverse("admin:wallet_decision_changelist")).content.decode()
    assert "18,00" in listed and "1800" not in listed

    page = client.get(reverse("admin:wallet_decision_change", args=[refused.pk])).content.decode()
    assert "cette aide ne peut pas être utilisée dans ce type de commerce" in page
    assert "Détails techniques" in page
    assert refused.idempotency_key not in page and refused.fingerprint not in page


@time_machine.travel(NOW)
def test_the_grants_list_tells_the_last_day_included(agent, person):
    listed = client_for(agent).get(reverse("admin:funders_allocation_changelist"))

    assert "au 30 septembre 2027 inclus" in listed.content.decode()
