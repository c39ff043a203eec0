from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from core.errors import (
    AmountTooLarge,
    CurrencyMismatch,
    ExceedsHoldAmount,
    ExceedsRefundable,
    HoldAlreadyResolved,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    UnknownAccount,
)
from funders.services import allocation_revoke, capture_refund, program_fund
from ledger.models import Account, Entry, Transfer
from ledger.selectors import account_balance
from ledger.services import (
    hold_expire,
    hold_place,
    hold_post,
    hold_release,
    hold_void,
    refund_post,
    transfer_post,
    transfers_post_many,
)
from ledger.verify import verify
from tests.factories import make_allocation

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        list(Account.objects.order_by("pk").values_list("pk", "balance", "pending")),
        Transfer.objects.count(),
        Entry.objects.count(),
    )


@pytest.fixture
def hold(pocket, merchant):
    return hold_place(
        debit=pocket.account, credit=merchant.payable_account, amount=4_000, idempotency_key="h1"
    )


def test_allocation_moves_money_from_program_float_to_pocket(program, pocket):
    program.float_account.refresh_from_db()
    pocket.account.refresh_from_db()
    assert pocket.account.balance == 10_000
    assert program.float_account.balance == 1_000_000 - 10_000
    assert verify() == []


def test_allocation_beyond_funded_amount_is_refused_and_changes_nothing(program):
    before = snapshot()
    with pytest.raises(InsufficientFunds):
        make_allocation(program=program, amount=1_000_001)
    assert snapshot() == before


def test_hold_reserves_without_moving_balance(pocket, hold):
    pocket.account.refresh_from_db()
    assert (pocket.account.balance, pocket.account.pending) == (10_000, 4_000)
    assert hold.hold_state == "pending"


def test_hold_over_available_is_refused(pocket, merchant, hold):
    before = snapshot()
    with pytest.raises(InsufficientFunds):
        hold_place(
            debit=pocket.account,
            credit=merchant.payable_account,
            amount=6_001,
            idempotency_key="h2",
        )
    assert snapshot() == before


def test_partial_capture_releases_the_rest(pocket, merchant, hold):
    capture = hold_post(hold=hold, amount=2_500, idempotency_key="c1")
    pocket.account.refresh_from_db()
    assert (pocket.account.balance, pocket.account.pending) == (7_500, 0)
    assert capture.amount == 2_500
    assert account_balance(merchant.payable_account) == 2_500
    hold.refresh_from_db()
    assert hold.hold_state == "posted"
    assert verify() == []


def test_capture_more_than_held_is_refused(hold):
    with pytest.raises(ExceedsHoldAmount):
        hold_post(hold=hold, amount=4_001, idempotency_key="c1")


@pytest.mark.parametrize(
    ("first", "state"),
    [
        (lambda h: hold_post(hold=h, idempotency_key="first"), "posted"),
        (lambda h: hold_void(hold=h, idempotency_key="first"), "voided"),
        (lambda h: hold_expire(hold=h), "expired"),
    ],
)
def test_a_hold_resolves_at_most_once(hold, first, state):
    first(hold)
    before = snapshot()
    with pytest.raises(HoldAlreadyResolved) as error:
        hold_void(hold=hold, idempotency_key="second")
    assert error.value.code == f"hold_already_{state}"
    assert snapshot() == before


def test_void_releases_everything(pocket, hold):
    hold_void(hold=hold, idempotency_key="v1")
    pocket.account.refresh_from_db()
    assert (pocket.account.balance, pocket.account.pending) == (10_000, 0)
    assert verify() == []


def test_releasing_part_of_a_hold_keeps_the_rest_held_with_the_same_expiry(pocket, merchant):
    expires_at = timezone.now() + timedelta(days=7)
    hold = hold_place(
        debit=pocket.account,
        credit=merchant.payable_account,
        amount=4_000,
        idempotency_key="h1",
        expires_at=expires_at,
        metadata={"split": 1},
    )

    kept = hold_release(hold=hold, amount=1_500)

    pocket.account.refresh_from_db()
    assert (pocket.account.balance, pocket.account.pending) == (10_000, 2_500)
    hold.refresh_from_db()
    assert hold.hold_state == "voided"
    assert kept.hold_state == "pending"
    assert (kept.amount, kept.expires_at, kept.metadata) == (2_500, expires_at, {"split": 1})
    assert (kept.debit_account, kept.credit_account) == (pocket.account, merchant.payable_account)
    assert verify() == []


def test_releasing_the_whole_hold_voids_it_and_keeps_nothing(pocket, hold):
    assert hold_release(hold=hold, amount=4_000) is None

    pocket.account.refresh_from_db()
    assert (pocket.account.balance, pocket.account.pending) == (10_000, 0)
    hold.refresh_from_db()
    assert hold.hold_state == "voided"
    assert Transfer.objects.filter(is_pending=True).count() == 1  # the voided hold only
    assert verify() == []


def test_releasing_more_than_held_is_refused_and_changes_nothing(hold):
    before = snapshot()
    with pytest.raises(ExceedsHoldAmount):
        hold_release(hold=hold, amount=4_001, idempotency_key="r1")
    assert snapshot() == before


def test_a_released_hold_cannot_be_released_again(hold):
    hold_release(hold=hold, amount=1_000)
    before = snapshot()
    with pytest.raises(HoldAlreadyResolved) as error:
        hold_release(hold=hold, amount=1_000, idempotency_key="r2")
    assert error.value.code == "hold_already_voided"
    assert snapshot() == before


def test_a_release_replayed_returns_the_kept_hold_and_moves_nothing(hold):
    kept = hold_release(hold=hold, amount=1_000, idempotency_key="r1")
    before = snapshot()
    assert hold_release(hold=hold, amount=1_000, idempotency_key="r1") == kept
    assert snapshot() == before
    with pytest.raises(IdempotencyConflict):
        hold_release(hold=hold, amount=1_001, idempotency_key="r1")
    assert snapshot() == before


def test_replay_returns_first_result_and_moves_nothing(pocket, merchant, hold):
    before = snapshot()
    again = hold_place(
        debit=pocket.account, credit=merchant.payable_account, amount=4_000, idempotency_key="h1"
    )
    assert again.pk == hold.pk
    assert snapshot() == before


def test_same_key_other_parameters_is_a_conflict(pocket, merchant, hold):
    before = snapshot()
    with pytest.raises(IdempotencyConflict):
        hold_place(
            debit=pocket.account,
            credit=merchant.payable_account,
            amount=4_001,
            idempotency_key="h1",
        )
    assert snapshot() == before


def test_refund_returns_to_the_pocket_up_to_the_captured_amount(pocket, hold):
    capture = hold_post(hold=hold, idempotency_key="c1")
    capture_refund(capture=capture, amount=1_000, idempotency_key="r1")
    capture_refund(capture=capture, amount=3_000, idempotency_key="r2")
    before = snapshot()
    with pytest.raises(ExceedsRefundable):
        capture_refund(capture=capture, amount=1, idempotency_key="r3")
    assert snapshot() == before
    pocket.account.refresh_from_db()
    assert pocket.account.balance == 10_000
    assert verify() == []


def test_refund_after_revocation_goes_to_the_program(program, allocation, hold):
    capture = hold_post(hold=hold, amount=4_000, idempotency_key="c1")
    allocation_revoke(allocation=allocation, reason="moved away")
    program.float_account.refresh_from_db()
    float_before = program.float_account.balance
    capture_refund(capture=capture, amount=1_500, idempotency_key="r1")
    program.float_account.refresh_from_db()
    allocation.pocket.account.refresh_from_db()
    assert program.float_account.balance == float_before + 1_500
    assert allocation.pocket.account.balance == 0
    assert verify() == []


def test_revocation_returns_what_is_free_and_leaves_held_money(program, allocation, hold):
    allocation_revoke(allocation=allocation)
    allocation.pocket.account.refresh_from_db()
    assert (allocation.pocket.account.balance, allocation.pocket.account.pending) == (4_000, 4_000)
    program.float_account.refresh_from_db()
    assert program.float_account.balance == 1_000_000 - 4_000
    assert verify() == []


BAD_AMOUNTS = [
    (0, InvalidAmount),
    (-1, InvalidAmount),
    (True, InvalidAmount),
    (12.5, InvalidAmount),
    ("100", InvalidAmount),
    (10**12 + 1, AmountTooLarge),
]


@pytest.mark.parametrize(("amount", "error"), BAD_AMOUNTS)
def test_bad_amounts_are_refused_by_every_service(pocket, merchant, hold, amount, error):
    capture_source = hold_place(
        debit=pocket.account, credit=merchant.payable_account, amount=10, idempotency_key="h9"
    )
    capture = hold_post(hold=capture_source, idempotency_key="c9")
    before = snapshot()
    calls = [
        lambda: program_fund(program=pocket.allocation.program, amount=amount, idempotency_key="f"),
        lambda: make_allocation(program=pocket.allocation.program, amount=amount),
        lambda: hold_place(
            debit=pocket.account,
            credit=merchant.payable_account,
            amount=amount,
            idempotency_key="x",
        ),
        lambda: hold_post(hold=hold, amount=amount, idempotency_key="x"),
        lambda: hold_release(hold=hold, amount=amount, idempotency_key="x"),
        lambda: refund_post(capture=capture, amount=amount, to=pocket.account, idempotency_key="x"),
    ]
    for call in calls:
        with pytest.raises(error):
            call()
    assert snapshot() == before


def test_wrong_currency_is_refused(pocket, merchant):
    usd = Account.objects.create(code="usd", name="usd", kind="pocket", currency="USD")
    before = snapshot()
    with pytest.raises(CurrencyMismatch):
        hold_place(debit=pocket.account, credit=usd, amount=10, idempotency_key="x")
    with pytest.raises(CurrencyMismatch):
        transfer_post(
            kind="fund",
            currency="EUR",
            legs=[(usd, -10), (pocket.account, 10)],
            idempotency_key="y",
        )
    assert snapshot() == before


def test_unknown_account_is_refused(pocket):
    ghost = Account(code="ghost", name="ghost", kind="pocket", currency="EUR")
    with pytest.raises(UnknownAccount):
        hold_place(debit=ghost, credit=pocket.account, amount=10, idempotency_key="x")


# --- many transfers at once (a batch job's) -------------------------------------------------------


def test_many_transfers_post_their_entries_and_move_each_guarded_account_once(program):
    pockets = [make_allocation(program=program, amount=3_000).pocket.account for _ in range(3)]
    float_account = program.float_account
    float_account.refresh_from_db()
    before = float_account.balance

    transfers = transfers_post_many(
        kind=Transfer.Kind.EXPIRE,
        currency="EUR",
        moves=[
            ([(pocket, -1_000 * n), (float_account, 1_000 * n)], {"n": n})
            for n, pocket in enumerate(pockets, 1)
        ],
    )

    assert [transfer.amount for transfer in transfers] == [1_000, 2_000, 3_000]
    assert [transfer.metadata for transfer in transfers] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert Entry.objects.filter(transfer__in=transfers).count() == 6
    balances = Account.objects.filter(pk__in=[p.pk for p in pockets]).order_by("pk")
    assert list(balances.values_list("balance", flat=True)) == [2_000, 1_000, 0]
    float_account.refresh_from_db()
    assert float_account.balance == before + 6_000
    assert verify() == []


def test_many_transfers_move_nothing_if_one_would_take_a_pocket_below_what_it_holds(
    pocket, merchant, program
):
    hold_place(
        debit=pocket.account, credit=merchant.payable_account, amount=4_000, idempotency_key="h"
    )
    before = snapshot()

    # In the caller's transaction, which the error rolls back.
    with pytest.raises(InsufficientFunds), transaction.atomic():
        transfers_post_many(
            kind=Transfer.Kind.EXPIRE,
            currency="EUR",
            moves=[([(pocket.account, -7_000), (program.float_account, 7_000)], {})],
        )

    assert snapshot() == before
