"""authorize(): the database side of the engine — instrument checks, holds, the decision record,
per-period usage read from the ledger, idempotency."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import IdempotencyConflict
from engine.request import AuthorizationRequest
from funders.services import allocation_revoke, capture_refund
from ledger.models import Transfer
from ledger.services import hold_post, hold_void
from ledger.verify import verify
from merchants.payments import merchant_place
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from wallet.authorize import authorize
from wallet.models import Card, Decision
from wallet.services import wallet_freeze

pytestmark = pytest.mark.django_db

FOOD_IN_ISERE = {"categories": {"allow_groups": ["food"]}, "zone": {"departements": ["38"]}}


@pytest.fixture
def beneficiary():
    return BeneficiaryFactory()


@pytest.fixture
def food_program():
    return make_program(rules=FOOD_IN_ISERE)


@pytest.fixture
def food_pocket(food_program, beneficiary):
    return make_allocation(program=food_program, beneficiary=beneficiary, amount=10_000).pocket


@pytest.fixture
def card(beneficiary):
    return Card.objects.create(wallet=beneficiary.wallet, kind="virtual", status="active")


def pay(
    merchant,
    beneficiary,
    amount,
    *,
    key=None,
    partial=False,
    card=None,
    at=None,
):
    return authorize(
        request=AuthorizationRequest(
            amount=amount,
            currency="EUR",
            merchant=merchant_place(merchant),
            at=at or timezone.now(),
            channel="api",
            partial_allowed=partial,
        ),
        wallet=beneficiary.wallet,
        card=card,
        credit_account=merchant.payable_account,
        merchant_id=merchant.pk,
        idempotency_key=key or f"k-{Transfer.objects.count()}-{Decision.objects.count()}",
    )


def held(pocket) -> int:
    pocket.account.refresh_from_db()
    return pocket.account.pending


def test_an_eligible_payment_is_approved_and_held(merchant, beneficiary, food_pocket):
    decision = pay(merchant, beneficiary, 2_500)
    assert (decision.status, decision.approved_amount, decision.reason) == ("approved", 2_500, "")
    assert held(food_pocket) == 2_500
    [hold] = decision.holds.all()
    assert (hold.pocket, hold.amount) == (food_pocket, 2_500)
    decision.refresh_from_db()
    assert decision.trace["split"] == [{"pocket_id": food_pocket.pk, "amount": 2_500}]
    assert verify() == []


@pytest.mark.parametrize(
    ("merchant_fields", "reason"),
    [
        ({"postcode": "69004", "city": "Lyon", "commune_code": "69384"}, "outside_zone"),
        ({"mcc": "5921"}, "merchant_category_not_allowed"),
        ({"mcc": "6011"}, "merchant_category_not_allowed"),
    ],
)
def test_a_refused_merchant_is_declined_and_nothing_is_held(
    beneficiary, food_pocket, merchant_fields, reason
):
    merchant = make_merchant(**merchant_fields)
    decision = pay(merchant, beneficiary, 1_000)
    assert (decision.status, decision.reason, decision.approved_amount) == ("declined", reason, 0)
    assert decision.reason_pocket == food_pocket.allocation.program.name
    assert held(food_pocket) == 0
    assert not decision.holds.exists()


def test_frozen_wallet_is_declined(merchant, beneficiary, food_pocket):
    wallet_freeze(wallet=beneficiary.wallet, reason="lost phone")
    decision = pay(merchant, beneficiary, 1_000)
    assert (decision.status, decision.reason) == ("declined", "wallet_frozen")
    assert held(food_pocket) == 0


@pytest.mark.parametrize(
    ("status", "reason"), [("frozen", "card_frozen"), ("lost", "card_inactive")]
)
def test_card_not_active_is_declined(merchant, beneficiary, food_pocket, card, status, reason):
    Card.objects.filter(pk=card.pk).update(status=status)
    card.refresh_from_db()
    decision = pay(merchant, beneficiary, 1_000, card=card)
    assert (decision.status, decision.reason) == ("declined", reason)
    assert held(food_pocket) == 0


def test_revoked_aid_is_not_used(merchant, beneficiary, food_pocket):
    allocation_revoke(allocation=food_pocket.allocation)
    decision = pay(merchant, beneficiary, 1_000)
    assert decision.status == "declined"
    assert decision.reason == "no_aid_available"


def test_expired_aid_is_declined_with_its_reason(merchant, beneficiary, food_program):
    now = timezone.now()
    make_allocation(
        program=food_program,
        beneficiary=beneficiary,
        valid_from=now - timedelta(days=30),
        valid_until=now - timedelta(seconds=1),
    )
    decision = pay(merchant, beneficiary, 1_000)
    assert (decision.status, decision.reason) == ("declined", "aid_expired")


def test_the_amount_is_split_over_pockets_soonest_expiry_first(merchant, beneficiary, food_program):
    now = timezone.now()
    later = make_allocation(
        program=food_program,
        beneficiary=beneficiary,
        amount=5_000,
        valid_from=now - timedelta(1),
        valid_until=now + timedelta(days=60),
    ).pocket
    sooner = make_allocation(
        program=food_program,
        beneficiary=beneficiary,
        amount=3_000,
        valid_from=now - timedelta(1),
        valid_until=now + timedelta(days=10),
    ).pocket
    decision = pay(merchant, beneficiary, 4_000)
    assert decision.status == "approved"
    assert (held(sooner), held(later)) == (3_000, 1_000)


def test_short_balance_is_declined_unless_partial_is_allowed(merchant, beneficiary, food_pocket):
    declined = pay(merchant, beneficiary, 12_000)
    assert (declined.status, declined.reason) == ("declined", "insufficient_funds")
    partial = pay(merchant, beneficiary, 12_000, partial=True)
    assert (partial.status, partial.approved_amount) == ("partially_approved", 10_000)
    assert held(food_pocket) == 10_000


def test_daily_cap_counts_net_of_voids_and_refunds(merchant, beneficiary, food_program):
    pocket = make_allocation(
        program=food_program,
        beneficiary=beneficiary,
        amount=50_000,
        rules={"limits": {"day": 5_000}},
    ).pocket
    captured = pay(merchant, beneficiary, 3_000)
    voided = pay(merchant, beneficiary, 2_000)
    refused = pay(merchant, beneficiary, 1)
    assert (refused.status, refused.reason) == ("declined", "limit_exceeded")
    assert refused.details["limit"] == "day"

    hold_void(hold=voided.holds.get().hold, idempotency_key="void-1")
    capture = hold_post(hold=captured.holds.get().hold, idempotency_key="cap-1")
    assert pay(merchant, beneficiary, 2_000).status == "approved"
    assert pay(merchant, beneficiary, 1).reason == "limit_exceeded"

    capture_refund(capture=capture, amount=1_000, idempotency_key="ref-1")
    assert pay(merchant, beneficiary, 1_000).status == "approved"
    assert held(pocket) == 3_000
    assert verify() == []


def test_yesterdays_spending_does_not_count_today(merchant, beneficiary, food_program):
    make_allocation(
        program=food_program,
        beneficiary=beneficiary,
        amount=50_000,
        rules={"limits": {"day": 5_000}},
    )
    pay(merchant, beneficiary, 5_000)
    tomorrow = timezone.now() + timedelta(days=1)
    assert pay(merchant, beneficiary, 5_000, at=tomorrow).status == "approved"


def test_a_replay_returns_the_first_decision_and_holds_nothing_more(
    merchant, beneficiary, food_pocket
):
    first = pay(merchant, beneficiary, 2_500, key="same")
    again = pay(merchant, beneficiary, 2_500, key="same")
    assert again.pk == first.pk
    assert held(food_pocket) == 2_500


def test_the_same_key_for_another_payment_is_a_conflict(merchant, beneficiary, food_pocket):
    pay(merchant, beneficiary, 2_500, key="same")
    with pytest.raises(IdempotencyConflict):
        pay(merchant, beneficiary, 2_600, key="same")
    assert held(food_pocket) == 2_500


def test_the_hot_path_runs_a_bounded_number_of_queries(
    merchant, beneficiary, food_program, django_assert_max_num_queries
):
    for _ in range(3):
        make_allocation(
            program=food_program, beneficiary=beneficiary, rules={"limits": {"day": 50_000}}
        )
    with django_assert_max_num_queries(16):
        decision = pay(merchant, beneficiary, 100)
    assert decision.status == "approved"


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        (0, "EUR", "invalid_amount"),
        (-500, "EUR", "invalid_amount"),
        (10**12 + 1, "EUR", "amount_too_large"),
        (1_000, "USD", "currency_not_supported"),
    ],
)
def test_absurd_requests_are_declined_with_their_own_code_and_hold_nothing(
    merchant, beneficiary, food_pocket, amount, currency, reason
):
    decision = authorize(
        request=AuthorizationRequest(
            amount=amount,
            currency=currency,
            merchant=merchant_place(merchant),
            at=timezone.now(),
            channel="api",
        ),
        wallet=beneficiary.wallet,
        credit_account=merchant.payable_account,
        merchant_id=merchant.pk,
        idempotency_key="absurd",
    )
    assert (decision.status, decision.reason, decision.approved_amount) == ("declined", reason, 0)
    assert held(food_pocket) == 0
    assert not Transfer.objects.filter(is_pending=True).exists()


def test_a_decision_cannot_be_changed(merchant, beneficiary, food_pocket):
    decision = pay(merchant, beneficiary, 100)
    decision.approved_amount = 0
    with pytest.raises(ValueError, match="immutable"):
        decision.save()
    decision.refresh_from_db()
    assert decision.approved_amount == 100
