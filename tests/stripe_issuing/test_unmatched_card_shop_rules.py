"""The funder's place and merchant rules at a card shop that is not one of our merchants: Stripe
gives its name, network id and postcode only. Through the signed webhook, as Stripe asks."""

import pytest

from engine.codes import beneficiary_message
from tests.factories import make_allocation, make_program
from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import balances, beneficiary, webhook_secret
from wallet.models import Card, Decision

__all__ = ["beneficiary", "webhook_secret"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]

GRENOBLE = {"lat": 45.188, "lon": 5.724, "radius_km": 10}
# Ten communes share 01400; the rule below names nine of them.
NINE_OF_01400 = ["01001", "01084", "01093", "01113", "01146", "01272", "01328", "01356", "01393"]


@pytest.fixture
def aid(beneficiary):
    """Gives the beneficiary food aid with these rules; returns its pocket."""

    def give(rules):
        program = make_program(rules={"categories": {"allow_groups": ["food"]}, **rules})
        return make_allocation(program=program, beneficiary=beneficiary, amount=10_000).pocket

    return give


@pytest.fixture
def card(beneficiary):
    """The beneficiary's card, with no aid yet: each test gives the one it is about."""
    return Card.objects.create(
        wallet=beneficiary.wallet,
        kind="virtual",
        status="active",
        last4="4242",
        stripe_card_id="ic_1TestCard0001",
    )


def pay(client, card, merchant=se.GROCERY, amount=1_000):
    auth = se.authorization(card=card.stripe_card_id, amount=amount, merchant=merchant)
    response = se.post(client, se.event("issuing_authorization.request", auth))
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    ("rules", "merchant", "reason"),
    [
        # communes: every commune of the shop's postcode must be allowed
        ({"zone": {"communes": ["38185"]}}, se.GROCERY, None),
        ({"zone": {"communes": ["38185"]}}, se.LYON_GROCERY, "outside_zone"),
        (
            {"zone": {"communes": NINE_OF_01400}},
            se.GROCERY | {"postal_code": "01400"},
            "outside_zone",
        ),
        (
            {"zone": {"communes": [*NINE_OF_01400, "01412"]}},
            se.GROCERY | {"postal_code": "01400"},
            None,
        ),
        # département and postcode prefix: from the postcode
        ({"zone": {"departements": ["38"]}}, se.GROCERY, None),
        ({"zone": {"postcode_prefixes": ["690"]}}, se.LYON_GROCERY, None),
        # a circle and an allow list cannot tell: not recognised, never outside or not listed
        ({"zone": {"circles": [GRENOBLE]}}, se.GROCERY, "merchant_not_recognised"),
        ({"zone": {"circles": [GRENOBLE]}}, se.LYON_GROCERY, "merchant_not_recognised"),
        ({"merchants": {"allow": [1]}}, se.GROCERY, "merchant_not_recognised"),
        # a deny list names the card shop by its network id, or its name and postcode
        (
            {"merchants": {"deny": [{"network_id": "1234567890"}]}},
            se.GROCERY,
            "merchant_not_accepted",
        ),
        ({"merchants": {"deny": [{"network_id": "1234567891"}]}}, se.GROCERY, None),
        (
            {"merchants": {"deny": [{"name": "Épicerie du Cours", "postcode": "38000"}]}},
            se.GROCERY,
            "merchant_not_accepted",
        ),
        (
            {"merchants": {"deny": [{"name": "Épicerie du Cours", "postcode": "38100"}]}},
            se.GROCERY,
            None,
        ),
        # this département and its neighbours: Rhône touches Isère, not Savoie
        ({"zone": {"departements_with_neighbours": ["38"]}}, se.LYON_GROCERY, None),
        ({"zone": {"departements_with_neighbours": ["73"]}}, se.GROCERY, None),
        ({"zone": {"departements_with_neighbours": ["73"]}}, se.LYON_GROCERY, "outside_zone"),
        # Corsica and overseas: no neighbour over the sea
        (
            {"zone": {"departements_with_neighbours": ["2B"]}},
            se.GROCERY | {"postal_code": "20000"},
            None,
        ),
        (
            {"zone": {"departements_with_neighbours": ["06"]}},
            se.GROCERY | {"postal_code": "20000"},
            "outside_zone",
        ),
        (
            {"zone": {"departements_with_neighbours": ["971"]}},
            se.GROCERY | {"postal_code": "97110"},
            None,
        ),
        (
            {"zone": {"departements_with_neighbours": ["971"]}},
            se.GROCERY | {"postal_code": "97200"},
            "outside_zone",
        ),
    ],
)
def test_a_rule_at_a_card_shop_we_do_not_know(client, card, aid, rules, merchant, reason):
    pocket = aid(rules)
    answer = pay(client, card, merchant)
    assert answer["approved"] is (reason is None)
    assert answer.get("metadata", {}).get("reason") == reason
    assert balances(pocket) == (10_000, 0 if reason else 1_000)


def test_not_recognised_names_the_aid_to_the_beneficiary(client, card, aid):
    aid({"zone": {"circles": [GRENOBLE]}})
    pay(client, card)
    decision = Decision.objects.get()
    assert (decision.reason, decision.details) == ("merchant_not_recognised", {"cause": "circle"})
    message = beneficiary_message(
        decision.reason, pocket_name=decision.reason_pocket, details=decision.details
    )
    assert decision.reason_pocket
    # in French, the default language
    assert message.startswith(f"{decision.reason_pocket}\u00a0: ce commerce n\u2019est pas reconnu")
