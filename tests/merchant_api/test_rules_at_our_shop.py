"""The place and merchant rules of issue 17 on the merchant API, where the shop is always ours:
a département with its neighbours, a city covering its arrondissements, a deny list naming the
shop by name and postcode."""

import pytest

from tests.factories import make_allocation, make_merchant, make_payment_code, make_program
from tests.merchant_api.conftest import MerchantClient

pytestmark = pytest.mark.django_db

LYON_4 = {
    "postcode": "69004",
    "city": "Lyon",
    "commune_code": "69384",
    "latitude": None,
    "longitude": None,
}


def decline_code(beneficiary, rules, merchant):
    """Pays 10.00 at `merchant` with a beneficiary whose only aid has these rules; the decline
    code, None when approved."""
    program = make_program(rules={"categories": {"allow_groups": ["food"]}, **rules})
    make_allocation(program=program, beneficiary=beneficiary, amount=10_000)
    response = MerchantClient(merchant).send(
        "/authorizations",
        {"amount": 1_000, "currency": "EUR", "payment_code": make_payment_code(beneficiary.wallet)},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["amount_held"] == (0 if body["status"] == "declined" else 1_000)
    return body["decline"]["code"] if body["status"] == "declined" else None


@pytest.mark.parametrize(
    ("rules", "merchant_fields", "code"),
    [
        ({"zone": {"departements_with_neighbours": ["73"]}}, {}, None),  # Isère touches Savoie
        ({"zone": {"departements_with_neighbours": ["73"]}}, LYON_4, "outside_zone"),
        ({"zone": {"departements_with_neighbours": ["38"]}}, LYON_4, None),
        ({"zone": {"communes": ["69123"]}}, LYON_4, None),  # Lyon takes in its 4th arrondissement
        ({"zone": {"communes": ["69381"]}}, LYON_4, "outside_zone"),
        (
            {"merchants": {"deny": [{"name": "TABAC DU CENTRE", "postcode": "38000"}]}},
            {"trade_name": "Tabac du Centre"},
            "merchant_not_accepted",
        ),
        (
            {"merchants": {"deny": [{"name": "TABAC DU CENTRE", "postcode": "38100"}]}},
            {"trade_name": "Tabac du Centre"},
            None,
        ),
    ],
)
def test_a_rule_at_our_shop(beneficiary, rules, merchant_fields, code):
    assert decline_code(beneficiary, rules, make_merchant(**merchant_fields)) == code
