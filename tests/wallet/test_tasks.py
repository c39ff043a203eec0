"""Time-driven work: hold expiry (wallet.tasks) and aid expiry (funders.tasks). The tasks are
called directly, as a worker would; time is moved with time_machine."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

import funders.services
import funders.tasks
import wallet.tasks
from core.errors import HoldAlreadyResolved
from funders.models import Allocation
from funders.services import allocation_revoke
from funders.tasks import allocations_expire_due
from ledger.models import Account, Entry, Transfer
from ledger.services import hold_place, hold_post, hold_void
from ledger.tasks import verify_ledger
from ledger.verify import verify
from tests.concurrency import run_together
from tests.factories import make_allocation
from tests.markers import postgresql_only
from wallet.tasks import expire_holds

pytestmark = pytest.mark.django_db

START = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_time(time_machine):
    """Every test starts at START with time standing still; it moves only when a test says so."""
    time_machine.move_to(START, tick=False)
    return time_machine


def snapshot():
    return (
        list(Account.objects.order_by("pk").values_list("pk", "balance", "pending")),
        list(Transfer.objects.order_by("pk").values_list("pk", flat=True)),
        Entry.objects.count(),
        list(Allocation.objects.order_by("pk").values_list("pk", "status")),
    )


def place(pocket, merchant, amount, *, expires_in=None, key):
    return hold_place(
        debit=pocket.account,
        credit=merchant.payable_account,
        amount=amount,
        idempotency_key=key,
        expires_at=START + expires_in if expires_in is not None else None,
    )


def state(hold: Transfer) -> str:
    return Transfer.objects.get(pk=hold.pk).hold_state


# Holds


def test_expire_holds_releases_only_holds_past_their_expiry(frozen_time, pocket, merchant):
    # given holds due in one day, in seven days, and never
    due = place(pocket, merchant, 1_000, expires_in=timedelta(days=1), key="due")
    later = place(pocket, merchant, 2_000, expires_in=timedelta(days=7), key="later")
    never = place(pocket, merchant, 3_000, key="never")

    # when two days pass and the task runs
    frozen_time.move_to(START + timedelta(days=2), tick=False)
    expired = expire_holds()

    # then only the due hold is released
    assert expired == 1
    assert (state(due), state(later), state(never)) == ("expired", "pending", "pending")
    pocket.account.refresh_from_db()
    assert (pocket.account.balance, pocket.account.pending) == (10_000, 5_000)
    assert verify() == []


def test_expire_holds_releases_a_hold_at_its_exact_expiry(frozen_time, pocket, merchant):
    hold = place(pocket, merchant, 1_000, expires_in=timedelta(hours=1), key="h")
    frozen_time.move_to(START + timedelta(hours=1), tick=False)

    assert expire_holds() == 1
    assert state(hold) == "expired"


def test_expire_holds_before_any_expiry_releases_nothing(pocket, merchant):
    place(pocket, merchant, 1_000, expires_in=timedelta(days=7), key="h")
    before = snapshot()

    assert expire_holds() == 0
    assert snapshot() == before


def test_expire_holds_twice_in_a_row_is_harmless(frozen_time, pocket, merchant):
    # given a due hold that a first run released
    place(pocket, merchant, 1_000, expires_in=timedelta(days=1), key="h")
    frozen_time.move_to(START + timedelta(days=2), tick=False)
    assert expire_holds() == 1
    before = snapshot()

    # when the task runs again
    expired = expire_holds()

    # then nothing moves
    assert expired == 0
    assert snapshot() == before
    assert verify() == []


def test_expire_holds_leaves_captured_and_voided_holds_alone(frozen_time, pocket, merchant):
    # given two holds past their expiry that were captured and voided in time
    captured = place(pocket, merchant, 1_000, expires_in=timedelta(days=1), key="c")
    voided = place(pocket, merchant, 2_000, expires_in=timedelta(days=1), key="v")
    hold_post(hold=captured, amount=600, idempotency_key="cap")
    hold_void(hold=voided, idempotency_key="void")
    frozen_time.move_to(START + timedelta(days=2), tick=False)
    before = snapshot()

    # when the task runs
    expired = expire_holds()

    # then they keep their resolution
    assert expired == 0
    assert (state(captured), state(voided)) == ("posted", "voided")
    assert snapshot() == before


def test_a_hold_past_its_expiry_cannot_be_captured_before_the_task_runs(
    frozen_time, pocket, merchant
):
    # given a hold past its expiry that no task has released yet
    hold = place(pocket, merchant, 1_000, expires_in=timedelta(days=1), key="h")
    frozen_time.move_to(START + timedelta(days=2), tick=False)
    before = snapshot()

    # when the merchant tries to capture it
    with pytest.raises(HoldAlreadyResolved) as error:
        hold_post(hold=hold, idempotency_key="late")

    # then it is refused as expired, and the task still releases it
    assert error.value.code == "hold_already_expired"
    assert snapshot() == before
    assert expire_holds() == 1
    assert state(hold) == "expired"


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_expiring_holds_at_once_both_finish(frozen_time, pocket, merchant):
    # given ten due holds
    holds = [
        place(pocket, merchant, 100, expires_in=timedelta(days=1), key=f"h{i}") for i in range(10)
    ]
    frozen_time.move_to(START + timedelta(days=2), tick=False)

    # when two workers run the task at the same moment
    outcomes = run_together([expire_holds, expire_holds])

    # then neither fails, and each hold is released once
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes
    assert {state(hold) for hold in holds} == {"expired"}
    assert Transfer.objects.filter(kind=Transfer.Kind.HOLD_EXPIRE).count() == len(holds)
    pocket.account.refresh_from_db()
    assert pocket.account.pending == 0
    assert verify() == []


def test_expire_holds_skips_a_hold_voided_while_it_runs(frozen_time, pocket, merchant, monkeypatch):
    # given two due holds, the first of which the merchant reverses while the task runs
    first = place(pocket, merchant, 1_000, expires_in=timedelta(days=1), key="first")
    second = place(pocket, merchant, 2_000, expires_in=timedelta(days=1, hours=1), key="second")
    frozen_time.move_to(START + timedelta(days=2), tick=False)
    expire = wallet.tasks.hold_expire

    def reversed_meanwhile(*, hold):
        if hold.pk == first.pk:
            hold_void(hold=hold, idempotency_key="reversal")
        return expire(hold=hold)

    monkeypatch.setattr(wallet.tasks, "hold_expire", reversed_meanwhile)

    # when the task runs
    expired = expire_holds()

    # then the reversed hold stays voided and the task goes on to release the other one
    assert expired == 1
    assert (state(first), state(second)) == ("voided", "expired")


# Allocations


def move_past_validity(frozen_time, allocation):
    """Move past the allocation's validity (the fixture's aid is valid for 89 more days)."""
    frozen_time.move_to(allocation.valid_until + timedelta(minutes=1), tick=False)


def float_balance(allocation) -> int:
    return Account.objects.get(pk=allocation.program.float_account_id).balance


def pocket_of(allocation) -> tuple[int, int]:
    account = Account.objects.get(pk=allocation.pocket.account_id)
    return account.balance, account.pending


def status(allocation) -> str:
    return Allocation.objects.get(pk=allocation.pk).status


def test_expire_allocations_ends_only_allocations_past_their_validity(
    frozen_time, program, allocation
):
    # given one aid that ends in 89 days and one that ends in 200
    longer = make_allocation(program=program, amount=5_000, days=200)

    # when 90 days pass and the task runs
    move_past_validity(frozen_time, allocation)
    ended = allocations_expire_due()

    # then only the first has expired
    assert ended == 1
    assert (status(allocation), status(longer)) == ("expired", "active")
    assert pocket_of(longer) == (5_000, 0)


def test_expire_allocations_returns_the_remainder_to_the_program(frozen_time, allocation, merchant):
    # given an aid of 10_000 of which 2_500 was spent
    hold = place(allocation.pocket, merchant, 2_500, key="h")
    hold_post(hold=hold, idempotency_key="c")
    float_before = float_balance(allocation)

    # when it expires
    move_past_validity(frozen_time, allocation)
    allocations_expire_due()

    # then the 7_500 left go back to the program's float
    assert pocket_of(allocation) == (0, 0)
    assert float_balance(allocation) == float_before + 7_500
    assert Transfer.objects.filter(kind=Transfer.Kind.EXPIRE).get().amount == 7_500
    assert verify() == []


def test_expire_allocations_leaves_held_money_in_the_pocket(frozen_time, allocation, merchant):
    # given an aid of 10_000 with 4_000 held by a pending payment
    place(allocation.pocket, merchant, 4_000, key="h")
    float_before = float_balance(allocation)

    # when it expires
    move_past_validity(frozen_time, allocation)
    allocations_expire_due()

    # then only the free 6_000 return; the held 4_000 stay for the payment
    assert status(allocation) == "expired"
    assert pocket_of(allocation) == (4_000, 4_000)
    assert float_balance(allocation) == float_before + 6_000
    assert verify() == []


@pytest.mark.parametrize(
    ("resolve", "released"),
    [
        (lambda hold: hold_void(hold=hold, idempotency_key="void"), 4_000),
        (lambda hold: hold_post(hold=hold, amount=1_500, idempotency_key="cap"), 2_500),
    ],
    ids=["void", "partial_capture"],
)
def test_a_later_run_sweeps_what_a_resolved_hold_released(
    frozen_time, allocation, merchant, resolve, released
):
    # given an expired aid whose 4_000 were held when it expired
    hold = place(allocation.pocket, merchant, 4_000, key="h")
    move_past_validity(frozen_time, allocation)
    allocations_expire_due()
    float_before = float_balance(allocation)

    # when the hold is resolved and the task runs again
    resolve(hold)
    ended = allocations_expire_due()

    # then what the hold released returns to the program too
    assert ended == 0
    assert pocket_of(allocation) == (0, 0)
    assert float_balance(allocation) == float_before + released
    assert verify() == []


def test_expire_allocations_twice_in_a_row_is_harmless(frozen_time, allocation, merchant):
    # given an expired aid with money still held
    place(allocation.pocket, merchant, 4_000, key="h")
    move_past_validity(frozen_time, allocation)
    assert allocations_expire_due() == 1
    before = snapshot()

    # when the task runs again
    ended = allocations_expire_due()

    # then nothing moves
    assert ended == 0
    assert snapshot() == before
    assert verify() == []


def test_expire_allocations_before_the_end_of_validity_does_nothing(allocation):
    before = snapshot()

    assert allocations_expire_due() == 0
    assert status(allocation) == "active"
    assert snapshot() == before


# Nightly verification


def test_verify_ledger_counts_and_logs_each_problem(pocket, caplog):
    Account.objects.filter(pk=pocket.account.pk).update(balance=12_000)

    with caplog.at_level(logging.ERROR, logger="wallet.tasks"):
        problems = verify_ledger()

    assert problems == 1
    assert pocket.account.code in caplog.text


def test_verify_ledger_reports_nothing_on_a_consistent_ledger(pocket):
    assert verify_ledger() == 0


def test_expire_allocations_goes_on_past_one_revoked_meanwhile(program):
    # given two allocations whose validity is over, the first revoked before the task locks it
    now = timezone.now()
    first, second = (
        make_allocation(program=program, valid_from=now - timedelta(days=10),
                        valid_until=now - timedelta(days=1))
        for _ in range(2)
    )  # fmt: skip
    allocation_revoke(allocation=first)
    # when the task runs
    expired = funders.tasks.allocations_expire_due()
    # then the second one is expired all the same, and the first stays revoked
    second.refresh_from_db()
    assert (expired, second.status, status(first)) == (1, "expired", "revoked")
    assert verify() == []


def test_expire_allocations_ends_every_due_allocation_batch_after_batch(program, merchant):
    # given five allocations whose validity is over, two with a payment held
    now = timezone.now()
    due = [
        make_allocation(program=program, amount=10_000, valid_from=now - timedelta(days=10),
                        valid_until=now - timedelta(days=1))
        for _ in range(5)
    ]  # fmt: skip
    for n, allocation in enumerate(due[:2]):
        place(allocation.pocket, merchant, 1_000 * (n + 1), key=f"h{n}")
    float_before = float_balance(due[0])
    # when the task runs in batches of two
    ended = funders.tasks.allocations_expire_due(batch_size=2)
    # then all five ended, and all but the held money went back to the program
    assert ended == 5
    assert {status(allocation) for allocation in due} == {"expired"}
    assert [pocket_of(allocation) for allocation in due] == [
        (1_000, 1_000), (2_000, 2_000), (0, 0), (0, 0), (0, 0)
    ]  # fmt: skip
    assert float_balance(due[0]) == float_before + 50_000 - 3_000
    assert Allocation.history.filter(status="expired").count() == 5
    assert verify() == []
