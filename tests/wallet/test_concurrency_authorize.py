"""Concurrent authorizations on one wallet, on PostgreSQL with real concurrent clients: the
wallet lock serialises them, so no balance is overspent and no per-period cap is broken."""

import pytest
from django.db.models import Sum
from django.utils import timezone

from engine.request import AuthorizationRequest
from ledger.verify import verify
from merchants.payments import merchant_place
from tests.concurrency import run_together
from tests.factories import BeneficiaryFactory, make_allocation, make_program
from tests.markers import postgresql_only
from wallet.authorize import authorize
from wallet.models import Decision

pytestmark = [postgresql_only, pytest.mark.django_db(transaction=True)]

CLIENTS = 40


def attempt(merchant, wallet, amount: int, key: str):
    def call():
        return authorize(
            request=AuthorizationRequest(
                amount=amount,
                currency="EUR",
                merchant=merchant_place(merchant),
                at=timezone.now(),
                channel="api",
            ),
            wallet=wallet,
            credit_account=merchant.payable_account,
            merchant_id=merchant.pk,
            idempotency_key=key,
        )

    return call


def test_concurrent_payments_never_overspend_two_pockets(merchant):
    # given a wallet with two pockets, 7,000 in all
    beneficiary = BeneficiaryFactory()
    program = make_program()
    first = make_allocation(program=program, beneficiary=beneficiary, amount=4_000).pocket
    second = make_allocation(program=program, beneficiary=beneficiary, amount=3_000).pocket
    wallet = beneficiary.wallet

    # when 40 clients each try to pay 300 at once (12,000 asked)
    outcomes = run_together([attempt(merchant, wallet, 300, f"pay-{i}") for i in range(CLIENTS)])

    # then every call got a decision, and exactly what the pockets hold was approved
    assert all(isinstance(outcome, Decision) for outcome in outcomes), outcomes
    approved = sum(d.approved_amount for d in outcomes)
    assert approved == 6_900  # 23 payments of 300; the 100 left cannot pay a 300 payment
    assert {d.reason for d in outcomes if d.status == "declined"} == {"insufficient_funds"}
    for pocket in (first, second):
        pocket.account.refresh_from_db()
    assert first.account.pending + second.account.pending == approved
    assert verify() == []


def test_concurrent_payments_never_break_a_daily_cap(merchant):
    beneficiary = BeneficiaryFactory()
    pocket = make_allocation(
        program=make_program(),
        beneficiary=beneficiary,
        amount=100_000,
        rules={"limits": {"day": 5_000}},
    ).pocket

    outcomes = run_together(
        [attempt(merchant, beneficiary.wallet, 700, f"cap-{i}") for i in range(CLIENTS)]
    )

    assert all(isinstance(outcome, Decision) for outcome in outcomes), outcomes
    approved = Decision.objects.aggregate(total=Sum("approved_amount"))["total"]
    assert approved <= 5_000
    assert approved == 4_900  # seven payments of 700 fit under the cap, an eighth does not
    assert {d.reason for d in outcomes if d.status == "declined"} == {"limit_exceeded"}
    pocket.account.refresh_from_db()
    assert pocket.account.pending == approved
    assert verify() == []


def test_concurrent_replays_of_one_payment_decide_once(merchant):
    beneficiary = BeneficiaryFactory()
    pocket = make_allocation(program=make_program(), beneficiary=beneficiary).pocket

    outcomes = run_together(
        [attempt(merchant, beneficiary.wallet, 1_000, "one-key") for _ in range(CLIENTS)]
    )

    assert {outcome.pk for outcome in outcomes} == {Decision.objects.get().pk}
    pocket.account.refresh_from_db()
    assert pocket.account.pending == 1_000
    assert verify() == []
