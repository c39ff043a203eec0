"""Fixtures of the Stripe webhook tests: a beneficiary with food aid in Isère and an active
card known to Stripe. Imported by each test module (the directory's conftest is not ours)."""

import pytest

from tests.factories import BeneficiaryFactory, make_allocation, make_program
from tests.stripe_issuing.stripe_events import SECRET
from wallet.models import Card

FOOD_IN_ISERE = {
    "categories": {"allow_groups": ["food"]},
    "zone": {"departements": ["38"]},
    "limits": {"per_payment": 8_000},
}


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    return SECRET


@pytest.fixture
def beneficiary(db):
    return BeneficiaryFactory()


@pytest.fixture
def food_pocket(beneficiary):
    program = make_program(rules=FOOD_IN_ISERE)
    return make_allocation(program=program, beneficiary=beneficiary, amount=10_000).pocket


@pytest.fixture
def card(beneficiary, food_pocket):
    return Card.objects.create(
        wallet=beneficiary.wallet,
        kind="virtual",
        status="active",
        last4="4242",
        stripe_card_id="ic_1TestCard0001",
    )


def balances(pocket) -> tuple[int, int]:
    """(balance, held) of a pocket."""
    pocket.account.refresh_from_db()
    return pocket.account.balance, pocket.account.pending
