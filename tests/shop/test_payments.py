"""Taking payments at the till, and what follows: the answer in big words, capture, reversal
and refund (each confirmed), the day's takings by aid and by funder, the receipt. Each goes
through merchants.payments, the merchant API's services: the ledger shows the same money."""

import re
import uuid

import pytest

from engine.request import PRODUCT_FAMILIES
from shop.forms import PRODUCT_NAMES
from shop.models import TillSettings
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_payment_code,
    make_program,
)
from tests.shop.conftest import make_shop, signed_in
from wallet.models.decisions import Decision

pytestmark = pytest.mark.django_db


@pytest.fixture
def marie(db):
    """Food aid from the Isère (30 €) and from the city of Grenoble (20 €)."""
    person = BeneficiaryFactory(first_name="Marie")
    isere = FunderFactory(name="Département de l'Isère")
    city = FunderFactory(name="Ville de Grenoble")
    for funder, name, amount, days in (
        (isere, "Aide alimentaire", 3_000, 30),
        (city, "Chèque pain", 2_000, 60),
    ):
        program = make_program(
            funder=funder, name=name, rules={"categories": {"allow_groups": ["food"]}}
        )
        make_allocation(program=program, beneficiary=person, amount=amount, days=days)
    return person.wallet


def _balances(wallet) -> list[tuple[int, int]]:
    return [(p.account.balance, p.account.pending) for p in wallet.pockets.order_by("pk")]


def pay(client, wallet, amount: str, **extra):
    data = {"amount": amount, "code": make_payment_code(wallet), "attempt": str(uuid.uuid4())}
    return client.post("/shop/pay/", {**data, **extra})


def test_an_approved_payment_says_which_aid_paid_what(cashier, marie):
    client = signed_in(cashier)
    response = pay(client, marie, "42,50")
    assert response.status_code == 302
    page = client.get(response["Location"])
    answer = page.context["answer"]
    assert answer["status"] == "approved"
    parts = [(p["aid"], p["funder"], p["money"]) for p in answer["parts"]]
    # The aid that ends first pays first.
    assert parts == [
        ("Aide alimentaire", "Département de l'Isère", "30,00\xa0€"),
        ("Chèque pain", "Ville de Grenoble", "12,50\xa0€"),
    ]
    assert page.context["ops"]["state"] == "captured"  # one step: taken at once
    assert b'data-outcome="approved"' in page.content  # sound and vibration


def test_a_partial_approval_says_what_to_collect_another_way(cashier, marie):
    client = signed_in(cashier)
    page = client.get(pay(client, marie, "60")["Location"])
    answer = page.context["answer"]
    assert (answer["status"], answer["approved"], answer["rest"]) == (
        "partially_approved",
        "50,00\xa0€",
        "10,00\xa0€",
    )
    assert "10,00\xa0€" in page.content.decode()


def test_a_refusal_gives_the_shop_message_and_what_to_do(marie):
    pharmacy = make_shop(mcc="5912")
    client = signed_in(pharmacy)
    page = client.get(pay(client, marie, "10")["Location"])
    answer = page.context["answer"]
    assert answer["status"] == "declined"
    assert "ne peut pas être utilisée dans ce commerce" in answer["message"]
    assert answer["what_to_do"]
    assert answer["parts"] == []


def test_a_wrong_code_moves_nothing_and_says_why(cashier, marie):
    client = signed_in(cashier)
    response = client.post(
        "/shop/pay/", {"amount": "10", "code": "0000000000", "attempt": str(uuid.uuid4())}
    )
    assert response.status_code == 400
    assert response.context["form"].errors
    response = client.post(
        "/shop/pay/",
        {"amount": "12,345", "code": make_payment_code(marie), "attempt": str(uuid.uuid4())},
    )
    assert response.status_code == 400 and "amount" in response.context["form"].errors
    assert not Decision.objects.exists()


@pytest.mark.parametrize(
    ("language", "too_large"),
    [
        ("fr", "Un paiement à la caisse ne dépasse pas 100\u202f000,00\u00a0€."),
        ("en", "A payment at the till is at most €100,000.00."),
    ],
)
def test_an_amount_above_the_tills_limit_is_refused_before_any_decision(
    cashier, marie, language, too_large
):
    client = signed_in(cashier)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    balances = _balances(marie)
    for field, data in (
        ("amount", {"amount": "99 999 999"}),
        ("amount", {"amount": "100000,01"}),
        ("line1_amount", {"amount": "10", "line1_family": "food", "line1_amount": "100000,01"}),
    ):
        code = make_payment_code(marie)
        response = client.post("/shop/pay/", {**data, "code": code, "attempt": str(uuid.uuid4())})
        assert response.status_code == 400
        assert response.context["form"].errors[field] == [too_large]
    assert not Decision.objects.exists()
    assert _balances(marie) == balances

    # The limit itself is a payment like any other (Marie's 50 € pay their part of it).
    response = pay(signed_in(cashier), marie, "100000")
    assert response.status_code == 302
    assert Decision.objects.get().amount == 10**7


def test_a_second_tap_on_the_same_form_takes_one_payment(cashier, marie):
    client = signed_in(cashier)
    data = {"amount": "5", "code": make_payment_code(marie), "attempt": str(uuid.uuid4())}
    first = client.post("/shop/pay/", data)
    second = client.post("/shop/pay/", data)
    assert first["Location"] == second["Location"]
    assert Decision.objects.count() == 1


def test_a_part_refund_after_confirmation(cashier, marie):
    client = signed_in(cashier)
    location = pay(client, marie, "20")["Location"]
    reference = location.rstrip("/").rsplit("/", 1)[-1]
    confirm = client.get(f"/shop/payments/{reference}/refund/")
    assert confirm.status_code == 200
    response = client.post(
        f"/shop/payments/{reference}/refund/", {"amount": "7,50", "attempt": str(uuid.uuid4())}
    )
    assert response.status_code == 302
    decision = client.get(location).context["decision"]
    assert (decision.amount_captured, decision.amount_refunded) == (2_000, 750)
    # More than what is left is refused, moving nothing.
    response = client.post(
        f"/shop/payments/{reference}/refund/", {"amount": "13", "attempt": str(uuid.uuid4())}
    )
    assert response.status_code == 400
    assert client.get(location).context["decision"].amount_refunded == 750
    marie.refresh_from_db()
    assert sum(p.account.balance for p in marie.pockets.all()) == 5_000 - 2_000 + 750


def test_in_two_steps_a_payment_is_captured_or_cancelled_later(owner, cashier, marie):
    TillSettings.objects.create(merchant=owner.merchant, capture_later=True)
    client = signed_in(cashier)
    first = pay(client, marie, "10")["Location"].rstrip("/").rsplit("/", 1)[-1]
    second = pay(client, marie, "8")["Location"].rstrip("/").rsplit("/", 1)[-1]
    page = client.get(f"/shop/payments/{first}/")
    assert page.context["ops"]["state"] == "requires_capture"
    response = client.post(
        f"/shop/payments/{first}/capture/", {"amount": "9", "attempt": str(uuid.uuid4())}
    )
    assert response.status_code == 302
    response = client.post(
        f"/shop/payments/{second}/reverse/", {"amount": "", "attempt": str(uuid.uuid4())}
    )
    assert response.status_code == 302
    states = {
        p["decision"].reference: p["state"] for p in client.get("/shop/today/").context["payments"]
    }
    assert states == {first: "captured", second: "reversed"}
    # A cancelled payment cannot be captured any more.
    response = client.get(f"/shop/payments/{second}/capture/")
    assert response.status_code == 302


def test_the_days_takings_by_aid_and_by_funder(cashier, marie):
    client = signed_in(cashier)
    reference = pay(client, marie, "40")["Location"].rstrip("/").rsplit("/", 1)[-1]
    client.post(
        f"/shop/payments/{reference}/refund/", {"amount": "5", "attempt": str(uuid.uuid4())}
    )
    takings = client.get("/shop/today/").context["takings"]
    assert (takings["captured"], takings["refunded"], takings["net"]) == (
        "40,00\xa0€",
        "5,00\xa0€",
        "35,00\xa0€",
    )
    # The refund goes back to the aid used last (the city's) first.
    assert takings["by_aid"] == [
        ("Aide alimentaire", "Département de l'Isère", "30,00\xa0€"),
        ("Chèque pain", "Ville de Grenoble", "5,00\xa0€"),
    ]
    assert takings["by_funder"] == [
        ("Département de l'Isère", "30,00\xa0€"),
        ("Ville de Grenoble", "5,00\xa0€"),
    ]


def test_the_receipt_names_the_shop_and_each_aid(cashier, marie):
    client = signed_in(cashier)
    reference = pay(client, marie, "35")["Location"].rstrip("/").rsplit("/", 1)[-1]
    page = client.get(f"/shop/payments/{reference}/receipt/").content.decode()
    assert cashier.merchant.siret in page
    assert "Aide alimentaire" in page and "Ville de Grenoble" in page
    assert "35,00\xa0€" in page


def test_the_receipt_says_what_each_aid_got_back_of_a_refund(cashier, marie):
    """35 € paid by the Isère's aid (30 €, used first) and the city's (5 €); 10 € refunded
    give back the city's 5 € first, then 5 € of the Isère's."""
    client = signed_in(cashier)
    reference = pay(client, marie, "35")["Location"].rstrip("/").rsplit("/", 1)[-1]
    client.post(
        f"/shop/payments/{reference}/refund/", {"amount": "10", "attempt": str(uuid.uuid4())}
    )

    parts = client.get(f"/shop/payments/{reference}/receipt/").context["answer"]["parts"]

    assert [(p["funder"], p["money"], p["refunded"]) for p in parts] == [
        ("Département de l'Isère", "30,00\xa0€", "5,00\xa0€"),
        ("Ville de Grenoble", "5,00\xa0€", "5,00\xa0€"),
    ]
    page = client.get(f"/shop/payments/{reference}/receipt/").content.decode()
    assert page.count("dont remboursé\xa0: 5,00\xa0€") == 2


def test_a_shop_awaiting_approval_cannot_take_a_payment(marie):
    pending = make_shop(approved=False)
    client = signed_in(pending)
    response = pay(client, marie, "5")
    assert response.status_code == 400
    assert not Decision.objects.exists()


def test_a_basket_split_by_product_lets_the_food_aids_pay_the_food_only(cashier, db):
    """Two food aids of two funders, a basket of food and tobacco: the aids pay the food, the
    till is told to collect the tobacco another way, each funder's share named."""
    person = BeneficiaryFactory(first_name="Marie")
    for funder, name, amount in (
        (FunderFactory(name="Département de l'Isère"), "Aide alimentaire", 3_000),
        (FunderFactory(name="Ville de Grenoble"), "Chèque pain", 2_000),
    ):
        program = make_program(
            funder=funder,
            name=name,
            rules={"categories": {"allow_groups": ["food"]}, "products": {"allow": ["food"]}},
        )
        make_allocation(program=program, beneficiary=person, amount=amount)
    client = signed_in(cashier)

    response = pay(
        client,
        person.wallet,
        "45",
        line1_family="food",
        line1_amount="38",
        line2_family="tobacco",
        line2_amount="7",
    )

    answer = client.get(response["Location"]).context["answer"]
    assert (answer["status"], answer["approved"], answer["rest"]) == (
        "partially_approved",
        "38,00\xa0€",
        "7,00\xa0€",
    )
    assert {p["funder"]: p["money"] for p in answer["parts"]} == {
        "Département de l'Isère": "30,00\xa0€",
        "Ville de Grenoble": "8,00\xa0€",
    }
    # Each line of the basket: what the aids paid of it, what to collect another way; the same
    # on the receipt.
    for page in (client.get(response["Location"]), client.get(response["Location"] + "receipt/")):
        # Tags and line breaks out; the no-break spaces of French money kept.
        text = re.sub(r"[ \n]+", " ", re.sub(r"<[^>]+>", " ", page.content.decode()))
        assert "Produits couverts par l\u2019aide\xa0: 38,00\xa0€" in text
        assert "Alimentation 38,00\xa0€ payé par l\u2019aide\xa0: 38,00\xa0€" in text
        assert "Tabac 7,00\xa0€ à payer autrement\xa0: 7,00\xa0€" in text


def test_basket_lines_that_do_not_add_up_take_no_payment(cashier, marie):
    client = signed_in(cashier)
    response = pay(
        client, marie, "45", line1_family="food", line1_amount="30", line2_family="tobacco"
    )
    assert response.status_code == 400
    assert not Decision.objects.exists()
    errors = response.context["form"].errors
    assert "line2_amount" in errors


def test_every_product_family_has_its_name_at_the_till():
    assert list(PRODUCT_NAMES) == list(PRODUCT_FAMILIES)
