"""The till's captures and refunds are the merchant API's: the same service, committed the same
way (on PostgreSQL the one statement of merchants/hot_path.py), so both channels write the same
rows; what the till refuses it still says to the shop's staff in plain words, French or
English."""

import uuid

import pytest
from django.utils import translation

from core.money import format_money
from ledger import services as ledger_services
from merchants import payments
from merchants.models import Capture, Refund
from shop.models import TillSettings
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_payment_code,
    make_program,
)
from tests.markers import postgresql_only
from tests.merchant_api.conftest import MerchantClient
from tests.shop.conftest import make_cashier, make_shop, signed_in
from wallet.models.decisions import Decision

pytestmark = pytest.mark.django_db(transaction=True)


def _wallet(funder):
    """Food aid from two programs (30 € and 20 €): a payment of 42 € is split over both."""
    person = BeneficiaryFactory()
    for name, amount in (("Aide alimentaire", 3_000), ("Chèque pain", 2_000)):
        program = make_program(
            funder=funder, name=name, rules={"categories": {"allow_groups": ["food"]}}
        )
        make_allocation(program=program, beneficiary=person, amount=amount)
    return person.wallet


def _reference(response) -> str:
    assert response.status_code == 302, response.content
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def _till_payment(client, wallet, amount: str) -> str:
    response = client.post(
        "/shop/pay/",
        {"amount": amount, "code": make_payment_code(wallet), "attempt": str(uuid.uuid4())},
    )
    return _reference(response)


def _till_operation(client, reference: str, action: str, amount: str):
    return client.post(
        f"/shop/payments/{reference}/{action}/", {"amount": amount, "attempt": str(uuid.uuid4())}
    )


def _held_at_the_till(language: str):
    """A cashier's till, in `language`, that captures later, and a payment of 20 € held there."""
    owner = make_shop()
    TillSettings.objects.create(merchant=owner.merchant, capture_later=True)
    till = signed_in(make_cashier(owner))
    till.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    return till, _till_payment(till, _wallet(FunderFactory()), "20")


def _written(decision: Decision, wallet) -> dict:
    """What a capture and a refund wrote for `decision`: its operations, the ledger's movements
    of its holds, the pockets' balances (accounts named by their pocket)."""
    pockets = list(wallet.pockets.order_by("pk"))
    roles = {pocket.account_id: f"pocket {i}" for i, pocket in enumerate(pockets)}

    def moved(transfer) -> dict:
        return {
            "kind": transfer.kind,
            "amount": transfer.amount,
            "entries": [
                (roles.get(entry.account_id, "merchant"), entry.amount)
                for entry in transfer.entries.order_by("pk")
            ],
            "refunds": [moved(refund) for refund in transfer.refunds.order_by("pk")],
        }

    links = decision.holds.select_related("hold__resolution").order_by("pk")
    return {
        "captures": list(
            Capture.objects.filter(decision=decision).values_list("amount", "livemode")
        ),
        "refunds": list(Refund.objects.filter(decision=decision).values_list("amount", "livemode")),
        "holds": [(link.hold.amount, moved(link.hold.resolution)) for link in links],
        "balances": [(p.account.balance, p.account.pending) for p in pockets],
    }


@postgresql_only
def test_the_till_captures_and_refunds_as_the_api_does_in_one_statement(monkeypatch):
    owner = make_shop()
    TillSettings.objects.create(merchant=owner.merchant, capture_later=True)
    funder = FunderFactory()
    at_till, by_api = _wallet(funder), _wallet(funder)
    one_statement = []
    for name in ("holds_resolve_in", "refunds_post_in"):
        real = getattr(ledger_services, name)

        def spy(writes, rows, _real=real, _name=name):
            one_statement.append(_name)
            return _real(writes, rows)

        monkeypatch.setattr(payments, name, spy)

    till = signed_in(make_cashier(owner))
    reference = _till_payment(till, at_till, "42")
    _reference(_till_operation(till, reference, "capture", "40"))
    _reference(_till_operation(till, reference, "refund", "35"))
    assert one_statement == ["holds_resolve_in", "refunds_post_in"]

    api = MerchantClient(owner.merchant)
    code = make_payment_code(by_api)
    answer = api.send("/authorizations", {"amount": 4_200, "currency": "EUR", "payment_code": code})
    assert answer.status_code == 201, answer.content
    api_reference = answer.json()["id"]
    assert (
        api.send(f"/authorizations/{api_reference}/capture", {"amount": 4_000}).status_code == 201
    )
    assert (
        api.send(f"/authorizations/{api_reference}/refunds", {"amount": 3_500}).status_code == 201
    )

    written = _written(Decision.objects.get(reference=reference), at_till)
    assert written == _written(Decision.objects.get(reference=api_reference), by_api)
    assert written["captures"] == [(4_000, True)] and written["refunds"] == [(3_500, True)]
    assert [hold[1]["kind"] for hold in written["holds"]] == ["capture", "capture"]


@pytest.mark.parametrize(
    ("language", "too_much_held", "too_much_refunded"),
    [
        (
            "fr",
            "Le montant est plus élevé que le montant bloqué.",
            "Le montant est plus élevé que ce qui reste à rembourser.",
        ),
        (
            "en",
            "The amount is larger than what the hold reserved.",
            "The amount is larger than what is left to refund.",
        ),
    ],
)
def test_what_the_till_refuses_it_says_in_the_staffs_words(
    language, too_much_held, too_much_refunded
):
    till, reference = _held_at_the_till(language)

    refused = _till_operation(till, reference, "capture", "20,01")
    assert refused.status_code == 400
    assert refused.context["form"].errors["amount"] == [too_much_held]
    assert not Capture.objects.exists()

    _reference(_till_operation(till, reference, "capture", "15"))
    refused = _till_operation(till, reference, "refund", "15,01")
    assert refused.status_code == 400
    assert refused.context["form"].errors["amount"] == [too_much_refunded]
    assert not Refund.objects.exists()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_capture_for_less_than_approved_shows_what_was_taken_and_what_went_back(language):
    """Captured 18 € of a 20 € approval: the payment's page and the receipt say 18 €, per aid
    too, and that the other 2 € went back to the aid; they used to say 20 € "paid"."""
    till, reference = _held_at_the_till(language)
    _reference(_till_operation(till, reference, "capture", "18"))

    with translation.override(language):
        taken, back = format_money(1_800, "EUR"), format_money(200, "EUR")
    page = till.get(f"/shop/payments/{reference}/")
    answer = page.context["answer"]
    assert (answer["captured"], answer["released"]) == (taken, back)
    assert [part["money"] for part in answer["parts"]] == [taken]
    said = {
        "fr": f"Encaissé\u00a0: {taken}. Les {back} restants sont revenus sur l\u2019aide.",
        "en": f"Captured: {taken}. The other {back} went back to the aid.",
    }[language]
    assert said in page.content.decode()

    receipt = till.get(f"/shop/payments/{reference}/receipt/").content.decode()
    # "Paid with aid" and the one aid's part both say what was taken.
    assert receipt.count(f"<strong>{taken}</strong>") == 2
