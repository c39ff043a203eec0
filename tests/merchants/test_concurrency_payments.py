"""Captures, reversals and refunds of the merchant API under real concurrent clients on
PostgreSQL: an authorization's money is captured, released or refunded at most once."""

import pytest
from django.db import transaction
from django.utils import timezone

from core.one_statement import OneStatement
from engine.request import AuthorizationRequest
from ledger.verify import verify
from merchants.models import Capture, Refund, Reversal
from merchants.payments import (
    merchant_place,
    payment_capture,
    payment_refund,
    payment_reverse,
)
from tests.concurrency import run_together
from tests.factories import BeneficiaryFactory, make_allocation, make_program
from tests.markers import postgresql_only
from wallet.authorize import authorize

pytestmark = [postgresql_only, pytest.mark.django_db(transaction=True)]


def approved(merchant, wallet, amount, key):
    decision = authorize(
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
    assert decision.status == "approved"
    return decision


@pytest.fixture
def wallet():
    beneficiary = BeneficiaryFactory()
    program = make_program()
    # Two pockets, so that operations span several accounts and their lock order matters.
    make_allocation(program=program, beneficiary=beneficiary, amount=6_000)
    make_allocation(program=program, beneficiary=beneficiary, amount=6_000)
    return beneficiary.wallet


@pytest.fixture(params=[False, True], ids=["orm", "one statement"])
def operate(request):
    """Run a capture or a refund as the API does: through the ORM, or (PostgreSQL's fast path)
    writing in one statement run in the operation's transaction."""

    def run(service, **kwargs):
        if not request.param:
            return service(**kwargs)
        writes = OneStatement()
        with transaction.atomic():
            operation = service(writes=writes, **kwargs)
            writes.run()
        return operation

    return run


def outcome_codes(outcomes):
    return sorted(getattr(o, "code", type(o).__name__) for o in outcomes)


def test_concurrent_refunds_never_exceed_the_capture(merchant, wallet, operate):
    decision = approved(merchant, wallet, 9_000, "a")
    operate(payment_capture, merchant=merchant, decision=decision, idempotency_key="c")

    outcomes = run_together(
        [
            lambda i=i: operate(
                payment_refund,
                merchant=merchant,
                decision=decision,
                amount=1_000,
                idempotency_key=f"r{i}",
            )
            for i in range(20)
        ]
    )

    assert sum(isinstance(o, Refund) for o in outcomes) == 9
    assert set(outcome_codes(o for o in outcomes if not isinstance(o, Refund))) == {
        "exceeds_refundable_amount"
    }
    assert verify() == []


def test_capture_and_reverse_race_one_wins(merchant, wallet, operate):
    decision = approved(merchant, wallet, 8_000, "a")

    outcomes = run_together(
        [
            lambda: operate(
                payment_capture, merchant=merchant, decision=decision, idempotency_key="c"
            )
        ]
        * 10
        + [lambda: payment_reverse(merchant=merchant, decision=decision, idempotency_key="v")] * 10
    )

    winners = {type(o) for o in outcomes if isinstance(o, Capture | Reversal)}
    assert len(winners) == 1
    assert set(outcome_codes(o for o in outcomes if isinstance(o, Exception))) <= {
        "authorization_not_capturable"
    }
    assert verify() == []


def test_concurrent_operations_on_one_wallet_do_not_deadlock(merchant, wallet, operate):
    decisions = [approved(merchant, wallet, 1_000, f"a{i}") for i in range(10)]

    outcomes = run_together(
        [
            lambda d=d, i=i: operate(
                payment_capture, merchant=merchant, decision=d, idempotency_key=f"c{i}"
            )
            for i, d in enumerate(decisions)
        ]
        + [lambda i=i: approved(merchant, wallet, 100, f"b{i}") for i in range(10)]
    )

    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert verify() == []
