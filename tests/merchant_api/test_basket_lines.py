"""Mixed baskets on POST /authorizations: an aid pays only the lines its rules accept, and the
answer names each aid's share with its funder."""

import pytest

from tests.factories import FunderFactory, make_allocation, make_payment_code, make_program
from tests.merchant_api.conftest import MerchantClient

pytestmark = pytest.mark.django_db

FOOD = {"products": {"allow": ["food"]}}
HYGIENE = {"products": {"allow": ["hygiene"]}}
BASKET = [
    {"amount": 3000, "category": "food"},
    {"amount": 800, "category": "hygiene"},
    {"amount": 1200, "category": "tobacco"},
]


@pytest.fixture
def two_funders_wallet(beneficiary):
    """A food aid of the département and a hygiene aid of the town, on one wallet."""
    food = make_program(funder=FunderFactory(name="Département"), rules=FOOD, name="Aide alim")
    hygiene = make_program(funder=FunderFactory(name="CCAS"), rules=HYGIENE, name="Aide hygiène")
    make_allocation(program=food, beneficiary=beneficiary, amount=10_000)
    make_allocation(program=hygiene, beneficiary=beneficiary, amount=10_000)
    return beneficiary


def pay(merchant, beneficiary, **body):
    return MerchantClient(merchant).send(
        "/authorizations",
        {"currency": "EUR", "payment_code": make_payment_code(beneficiary.wallet), **body},
    )


def test_a_basket_split_across_two_aids_of_two_funders(merchant, two_funders_wallet):
    response = pay(
        merchant, two_funders_wallet, amount=5000, lines=BASKET, partial_approval_allowed=True
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "partially_approved"
    assert body["approved_amount"] == body["amount_held"] == 3800
    assert body["decline"]["code"] == "product_not_covered"
    basket = body["basket"]
    assert basket["eligible_amount"] == 3800
    assert basket["rest_amount"] == 1200
    assert [
        (line["category"], line["paid_amount"], line["rest_amount"]) for line in basket["lines"]
    ] == [
        ("food", 3000, 0),
        ("hygiene", 800, 0),
        ("tobacco", 0, 1200),
    ]
    assert sorted((s["funder"], s["aid"], s["amount"]) for s in basket["shares"]) == [
        ("CCAS", "Aide hygiène", 800),
        ("Département", "Aide alim", 3000),
    ]
    # The same answer when read back.
    again = MerchantClient(merchant).read(f"/authorizations/{body['id']}").json()
    assert again["basket"] == basket


def test_without_partial_approval_a_basket_with_tobacco_is_declined(merchant, two_funders_wallet):
    body = pay(merchant, two_funders_wallet, amount=5000, lines=BASKET).json()
    assert (body["status"], body["amount_held"]) == ("declined", 0)
    assert body["decline"]["code"] == "product_not_covered"
    assert body["basket"]["eligible_amount"] == 3800
    assert body["basket"]["shares"] == []


def test_an_aid_that_pays_none_of_the_basket_says_so_in_french(merchant, two_funders_wallet):
    response = MerchantClient(merchant).post(
        "/api/merchant/v1/authorizations",
        data={
            "amount": 1200,
            "currency": "EUR",
            "payment_code": make_payment_code(two_funders_wallet.wallet),
            "lines": [{"amount": 1200, "category": "tobacco"}],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-tabac",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    body = response.json()
    assert body["decline"]["code"] == "product_not_covered"
    assert "ne paie pas certains produits" in body["decline"]["message"]


def test_without_lines_the_answer_is_as_before(merchant, two_funders_wallet):
    body = pay(merchant, two_funders_wallet, amount=1000).json()
    assert body["status"] == "approved"
    assert body["basket"] is None


@pytest.mark.parametrize(
    ("lines", "code", "field"),
    [
        ([{"amount": 900, "category": "food"}], "basket_total_mismatch", "lines"),
        ([{"amount": 1000, "category": "jewels"}], "invalid_request", "lines.category"),
        (
            [{"amount": 0, "category": "food"}, {"amount": 1000, "category": "food"}],
            "invalid_amount",  # the engine's code for an amount, as for the payment's own
            "amount",
        ),
        ([], "invalid_request", "lines"),
        ("food", "invalid_request", "lines"),
    ],
)
def test_bad_lines_are_a_400_that_moves_nothing(merchant, two_funders_wallet, lines, code, field):
    response = pay(merchant, two_funders_wallet, amount=1000, lines=lines)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert not two_funders_wallet.wallet.decisions.exists()


def test_a_basket_in_the_sandbox(sandbox):
    from merchants.sandbox import TEST_CODES

    code = next(iter(TEST_CODES))
    response = sandbox.send(
        "/authorizations",
        {
            "amount": 1000,
            "currency": "EUR",
            "payment_code": code,
            "lines": [{"amount": 600, "category": "food"}, {"amount": 400, "category": "other"}],
            "partial_approval_allowed": True,
        },
    )
    assert response.status_code == 201, response.content
    basket = response.json()["basket"]
    assert sum(line["amount"] for line in basket["lines"]) == 1000
    assert basket["rest_amount"] == 1000 - response.json()["approved_amount"]
