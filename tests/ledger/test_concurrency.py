"""The ledger under real concurrent clients on PostgreSQL: each thread has its own connection and
transaction, all start together on a barrier, and the outcome is compared with what a serial
order of the same calls could have produced."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from core.errors import (
    ExceedsRefundable,
    HoldAlreadyResolved,
    IdempotencyConflict,
    InsufficientFunds,
)
from funders.models import Allocation
from funders.services import allocation_create, allocation_revoke, capture_refund
from ledger.models import Transfer
from ledger.selectors import account_balance
from ledger.services import (
    hold_expire,
    hold_place,
    hold_post,
    hold_void,
    transfer_post,
)
from ledger.verify import verify
from tests.concurrency import run_together
from tests.factories import BeneficiaryFactory, make_allocation, make_program
from tests.markers import postgresql_only

pytestmark = [postgresql_only, pytest.mark.django_db(transaction=True)]

THREADS = 50


def split(outcomes: list[object]) -> tuple[list[object], list[Exception]]:
    errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    return [outcome for outcome in outcomes if not isinstance(outcome, Exception)], errors


def codes(errors: list[Exception]) -> set[str]:
    return {getattr(error, "code", repr(error)) for error in errors}


@pytest.fixture
def hold(pocket, merchant):
    return hold_place(
        debit=pocket.account, credit=merchant.payable_account, amount=6_000, idempotency_key="h"
    )


@pytest.fixture
def capture(hold):
    return hold_post(hold=hold, idempotency_key="c")


def test_concurrent_holds_never_reserve_more_than_the_balance(pocket, merchant):
    # given a pocket of 10_000 and 50 holds of 700 (35_000 in all)
    amount = 700

    # when they are placed at once
    outcomes = run_together(
        [
            lambda i=i: hold_place(
                debit=pocket.account,
                credit=merchant.payable_account,
                amount=amount,
                idempotency_key=f"hold-{i}",
            )
            for i in range(THREADS)
        ]
    )

    # then exactly as many as fit succeed, and every other one is refused for lack of funds
    holds, errors = split(outcomes)
    assert codes(errors) == {InsufficientFunds.code}
    assert len(holds) == 10_000 // amount
    pocket.account.refresh_from_db()
    assert pocket.account.pending == sum(hold.amount for hold in holds) <= 10_000
    assert pocket.account.balance == 10_000
    assert verify() == []


def test_concurrent_debits_never_overdraw_the_pocket(pocket, merchant):
    # given a pocket of 10_000 and 50 posted debits of 700 (35_000 in all)
    amount = 700

    # when they are posted at once
    outcomes = run_together(
        [
            lambda i=i: transfer_post(
                kind=Transfer.Kind.CAPTURE,
                currency="EUR",
                legs=[(pocket.account, -amount), (merchant.payable_account, amount)],
                idempotency_key=f"debit-{i}",
            )
            for i in range(THREADS)
        ]
    )

    # then exactly as many as fit succeed, and every other one is refused for lack of funds
    transfers, errors = split(outcomes)
    assert codes(errors) == {InsufficientFunds.code}
    assert len(transfers) == 10_000 // amount
    pocket.account.refresh_from_db()
    spent = sum(transfer.amount for transfer in transfers)
    assert pocket.account.balance == 10_000 - spent >= 0
    paid = account_balance(merchant.payable_account)
    assert paid == spent
    assert verify() == []


# A write that could not be done twice (6_000 of a 10_000 pocket; a hold resolves once; a
# capture of 6_000 is refunded once): what it needs first, the write, and the pocket's
# (balance, pending) after it ran once.
RETRIED_WRITES = {
    "hold": (
        None,
        lambda pocket, merchant, _: hold_place(
            debit=pocket.account,
            credit=merchant.payable_account,
            amount=6_000,
            idempotency_key="retried",
        ),
        (10_000, 6_000),
    ),
    "debit": (
        None,
        lambda pocket, merchant, _: transfer_post(
            kind=Transfer.Kind.CAPTURE,
            currency="EUR",
            legs=[(pocket.account, -6_000), (merchant.payable_account, 6_000)],
            idempotency_key="retried",
        ),
        (4_000, 0),
    ),
    "capture": (
        "hold",
        lambda pocket, merchant, hold: hold_post(hold=hold, idempotency_key="retried"),
        (4_000, 0),
    ),
    "void": (
        "hold",
        lambda pocket, merchant, hold: hold_void(hold=hold, idempotency_key="retried"),
        (10_000, 0),
    ),
    "refund": (
        "capture",
        lambda pocket, merchant, capture: capture_refund(
            capture=capture, amount=6_000, idempotency_key="retried"
        ),
        (10_000, 0),
    ),
}


@pytest.mark.parametrize("write", RETRIED_WRITES.keys())
def test_concurrent_replays_of_a_keyed_write_return_the_first_result(
    pocket, merchant, request, write
):
    # given 50 retries of one write that could not be done twice
    needs, call, (balance, pending) = RETRIED_WRITES[write]
    prior = request.getfixturevalue(needs) if needs else None

    # when they all arrive at once
    outcomes = run_together([lambda: call(pocket, merchant, prior)] * THREADS)

    # then every caller gets the one result, and the money moved once
    results, errors = split(outcomes)
    assert errors == []
    assert {result.pk for result in results} == {Transfer.objects.get(idempotency_key="retried").pk}
    pocket.account.refresh_from_db()
    assert (pocket.account.balance, pocket.account.pending) == (balance, pending)
    assert verify() == []


def test_concurrent_replays_of_an_allocation_grant_it_once():
    # given 50 retries of one allocation of 60_000 from a float of 100_000
    program = make_program(funded=100_000)
    beneficiary = BeneficiaryFactory()
    now = timezone.now()

    def allocate():
        return allocation_create(
            program=program,
            beneficiary=beneficiary,
            amount=60_000,
            valid_from=now,
            valid_until=now + timedelta(days=30),
            idempotency_key="bulk-import-line-1",
        )

    # when they all arrive at once
    outcomes = run_together([allocate] * THREADS)

    # then every caller gets the one allocation, and the float paid once
    allocations, errors = split(outcomes)
    assert errors == []
    assert {allocation.pk for allocation in allocations} == {Allocation.objects.get().pk}
    program.float_account.refresh_from_db()
    assert program.float_account.balance == 40_000
    assert verify() == []


def test_concurrent_reuse_of_a_key_with_other_parameters_is_a_conflict(pocket, merchant):
    # given 25 calls for 6_000 and 25 calls for 7_000 under one key
    def place(amount: int):
        return hold_place(
            debit=pocket.account,
            credit=merchant.payable_account,
            amount=amount,
            idempotency_key="shared",
        )

    amounts = [6_000, 7_000] * (THREADS // 2)

    # when they all arrive at once
    outcomes = run_together([lambda amount=amount: place(amount) for amount in amounts])

    # then one hold exists; callers who asked for it get it, the others a conflict
    winner = Transfer.objects.get(idempotency_key="shared")
    for amount, outcome in zip(amounts, outcomes, strict=True):
        if amount == winner.amount:
            assert isinstance(outcome, Transfer)
            assert outcome.pk == winner.pk
        else:
            assert isinstance(outcome, IdempotencyConflict), outcome
    pocket.account.refresh_from_db()
    assert (pocket.account.balance, pocket.account.pending) == (10_000, winner.amount)
    assert verify() == []


def test_concurrent_resolutions_of_one_hold_resolve_it_once(pocket, hold):
    # given a hold of 6_000 and, at once, 25 captures (whole and partial), 24 voids and an expiry
    calls = [
        lambda i=i: hold_post(
            hold=hold, amount=None if i % 2 else 1_000 + i, idempotency_key=f"p{i}"
        )
        for i in range(25)
    ]
    calls += [lambda i=i: hold_void(hold=hold, idempotency_key=f"v{i}") for i in range(24)]
    calls += [lambda: hold_expire(hold=hold)]

    # when they all run together
    outcomes = run_together(calls)

    # then one resolution exists, and every other caller is told the hold is already resolved
    resolutions, errors = split(outcomes)
    resolution = Transfer.objects.get(pending_transfer=hold)
    assert [r.pk for r in resolutions] == [resolution.pk]
    hold.refresh_from_db()
    assert codes(errors) == {f"hold_already_{hold.hold_state}"}
    assert all(isinstance(error, HoldAlreadyResolved) for error in errors)
    pocket.account.refresh_from_db()
    posted = resolution.amount if resolution.kind == Transfer.Kind.CAPTURE else 0
    assert (pocket.account.balance, pocket.account.pending) == (10_000 - posted, 0)
    assert verify() == []


def test_concurrent_refunds_never_exceed_the_capture(pocket, capture):
    # given a capture of 6_000 and 50 refunds of 300 (15_000 in all)

    # when they are asked at once
    outcomes = run_together(
        [
            lambda i=i: capture_refund(capture=capture, amount=300, idempotency_key=f"r{i}")
            for i in range(THREADS)
        ]
    )

    # then exactly as many as fit succeed, and the others are refused
    refunds, errors = split(outcomes)
    assert codes(errors) == {ExceedsRefundable.code}
    assert len(refunds) == 6_000 // 300
    refunded = capture.refunds.aggregate(total=Sum("amount"))["total"]
    assert refunded == sum(refund.amount for refund in refunds) <= capture.amount
    pocket.account.refresh_from_db()
    assert pocket.account.balance == 10_000 - 6_000 + refunded
    assert verify() == []


def test_concurrent_allocations_never_overallocate_the_program():
    # given a program funded with 100_000 and 50 allocations of 7_000 (350_000 in all)
    program = make_program(funded=100_000)
    beneficiaries = BeneficiaryFactory.create_batch(THREADS)
    now = timezone.now()

    # when they are made at once
    outcomes = run_together(
        [
            lambda beneficiary=beneficiary: allocation_create(
                program=program,
                beneficiary=beneficiary,
                amount=7_000,
                valid_from=now,
                valid_until=now + timedelta(days=30),
                idempotency_key=f"alloc-{beneficiary.pk}",
            )
            for beneficiary in beneficiaries
        ]
    )

    # then exactly as many as the float covers succeed; a refused one leaves no allocation
    allocations, errors = split(outcomes)
    assert codes(errors) == {InsufficientFunds.code}
    assert len(allocations) == 100_000 // 7_000
    assert Allocation.objects.count() == len(allocations)
    program.float_account.refresh_from_db()
    assert program.float_account.balance == 100_000 - 7_000 * len(allocations) >= 0
    assert verify() == []


def test_a_refund_racing_a_revocation_never_refills_the_ended_aid(merchant):
    for round_ in range(5):
        # given a captured payment from a pocket
        allocation = make_allocation(program=make_program(), amount=10_000)
        hold = hold_place(
            debit=allocation.pocket.account,
            credit=merchant.payable_account,
            amount=4_000,
            idempotency_key=f"race-hold-{round_}",
        )
        capture = hold_post(hold=hold, idempotency_key=f"race-capture-{round_}")

        # when the funder revokes the aid while the merchant refunds part of the payment
        outcomes = run_together(
            [
                lambda a=allocation: allocation_revoke(allocation=a),
                lambda c=capture, r=round_: capture_refund(
                    capture=c, amount=1_000, idempotency_key=f"race-refund-{r}"
                ),
            ]
        )

        # then nothing is left in the ended pocket: the refund went to the program
        assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
        allocation.pocket.account.refresh_from_db()
        assert allocation.pocket.account.available == 0
    assert verify() == []
