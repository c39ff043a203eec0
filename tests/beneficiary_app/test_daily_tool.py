"""The app as a daily tool (issue 21): who gives each aid and whom to call, the total, the last
day of validity said whole, whom to ask when no shop accepts an aid, what a payment really took,
and the funder's logo served by the app itself."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.files.base import ContentFile

from beneficiary_app.web.views import funder_logo_url
from merchants.payments import payment_authorize, payment_capture
from tests.beneficiary_app.conftest import FOOD_IN_ISERE
from tests.factories import FunderFactory, make_allocation, make_payment_code, make_program

PARIS = ZoneInfo("Europe/Paris")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5c1e4d10000000049454e44ae426082"
)


@pytest.fixture
def isere(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    funder = FunderFactory(name="Département de l'Isère", contact_phone="+33476000022")
    funder.logo.save("isere.png", ContentFile(PNG))
    return funder


@pytest.fixture
def food(isere, beneficiary):
    program = make_program(funder=isere, name="Aide alimentaire", rules=FOOD_IN_ISERE)
    return make_allocation(
        program=program,
        beneficiary=beneficiary,
        amount=15_000,
        valid_from=datetime(2026, 1, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 10, 1, tzinfo=PARIS),
    ).pocket


def test_each_aid_says_who_gives_it_and_whom_to_call_in_french(api, food, grocer):
    [pocket] = api.read("/pockets").json()["data"]

    assert pocket["given_by"] == "De la part du Département de l'Isère"
    assert pocket["where_title"] == "Où utiliser l'Aide alimentaire\u00a0?"
    assert pocket["funder"]["name"] == "Département de l'Isère"
    assert pocket["funder"]["phone"] == "+33476000022"
    assert pocket["funder"]["phone_display"] == "04 76 00 00 22"
    assert pocket["funder"]["logo_url"].startswith(
        f"/app/funders/{food.allocation.program.funder.pk}/logo?v="
    )
    assert pocket["valid_until_phrase"] == "jusqu\u2019au 30 septembre 2027 inclus"
    assert pocket["no_shop"] is None


def test_in_english_the_names_come_without_french_articles(api_en, food, grocer):
    [pocket] = api_en.read("/pockets").json()["data"]

    assert pocket["given_by"] == "Given by Département de l'Isère"
    assert pocket["where_title"] == "Where can I use Aide alimentaire?"
    assert pocket["valid_until_phrase"] == "until Sept. 30, 2027 included"


def test_the_list_has_the_total_that_can_be_spent(api, food, beneficiary):
    make_allocation(beneficiary=beneficiary, amount=4_000)

    totals = api.read("/pockets").json()["totals"]

    assert totals == [
        {"currency": "EUR", "available": 19_000, "available_display": "190,00\u00a0€"}
    ]


def test_an_aid_no_shop_accepts_says_whom_to_call(api, food):
    """No merchant at all: the food aid has nowhere to be spent yet."""
    [pocket] = api.read("/pockets").json()["data"]

    assert pocket["no_shop"] == (
        "Aucun commerce n\u2019accepte encore cette aide. Appelez le Département de l'Isère au "
        "04 76 00 00 22 pour savoir où l\u2019utiliser."
    )


def test_without_a_phone_it_says_whom_to_ask(api, beneficiary):
    program = make_program(funder=FunderFactory(name="Caisse d'allocations familiales"))
    make_allocation(program=program, beneficiary=beneficiary)

    [pocket] = api.read("/pockets").json()["data"]

    assert pocket["no_shop"].endswith(
        "Demandez à la Caisse d'allocations familiales où l\u2019utiliser."
    )


def test_the_history_shows_what_was_really_paid(api, food, card, grocer):
    code = make_payment_code(card.wallet)
    partly = payment_authorize(merchant=grocer, amount=1_250, currency="EUR", payment_code=code)
    payment_capture(merchant=grocer, decision=partly, idempotency_key="c", amount=790)
    pending = payment_authorize(
        merchant=grocer, amount=500, currency="EUR", payment_code=make_payment_code(card.wallet)
    )

    events = api.read("/history").json()["results"]

    by_reference = {e["payment_reference"]: e for e in events if e["type"] == "payment"}
    taken = by_reference[partly.reference]
    assert taken["signed_amount_display"] == "\u22127,90\u00a0€"
    assert taken["note"] == "4,60\u00a0€ vous ont été rendus"
    assert taken["summary"] == "Vous avez payé 7,90\u00a0€ chez Épicerie du Vieux Temple."
    held = by_reference[pending.reference]
    assert (held["signed_amount_display"], held["note"]) == ("\u22125,00\u00a0€", "réservé")
    [granted] = [e for e in events if e["type"] == "aid_granted"]
    assert granted["signed_amount_display"] == "+150,00\u00a0€"
    assert granted["summary"].startswith("Le Département de l'Isère vous a accordé")


def test_a_refused_payment_names_the_funder_to_call(api, food, card, grocer):
    bar = grocer.__class__.objects.get(pk=grocer.pk)
    bar.mcc = "5813"
    bar.save(update_fields=["mcc"])
    refused = payment_authorize(
        merchant=bar, amount=1_800, currency="EUR", payment_code=make_payment_code(card.wallet)
    )

    body = api.read(f"/history/{refused.reference}").json()

    assert body["status"] == "declined"
    assert [f["name"] for f in body["funders"]] == ["Département de l'Isère"]
    assert body["funders"][0]["phone_display"] == "04 76 00 00 22"


def test_the_logo_is_served_by_the_app_to_anyone(client, food):
    funder = food.allocation.program.funder

    response = client.get(funder_logo_url(funder))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == PNG
    assert client.get(f"/app/funders/{funder.pk + 1000}/logo").status_code == 404
