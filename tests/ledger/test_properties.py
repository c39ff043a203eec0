"""Random sequences of ledger operations, checked after every step against a plain Python model
of what every balance should be. Each example runs in a savepoint rolled back at its end, which
works the same on SQLite and PostgreSQL."""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from core.errors import (
    DomainError,
    ExceedsHoldAmount,
    ExceedsRefundable,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidState,
)
from funders.models import Allocation, Program
from funders.services import (
    allocation_create,
    allocation_expire,
    allocation_revoke,
    capture_refund,
    external_funding_account,
    program_create,
    program_fund,
)
from ledger.models import Account, Entry, Transfer
from ledger.services import hold_expire, hold_place, hold_post, hold_release, hold_void
from ledger.verify import verify
from tests.factories import BeneficiaryFactory, FunderFactory, make_merchant
from wallet.models import Pocket

pytestmark = pytest.mark.django_db

SETTINGS = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# How often each operation is drawn, among those possible in the current state. One weighted
# draw per step (rather than one rule per operation, which Hypothesis picks unevenly) keeps the
# payment life cycle (hold, capture, refund) frequent in every example. The first possible one
# is what Hypothesis's simplest examples do at every step: capture, refund, else place a hold.
WEIGHTS = {
    "capture_hold": 4,
    "refund": 3,
    "place_hold": 4,
    "release_hold": 2,
    "resolve_a_resolved_hold": 1,
    "replay": 3,
    "replay_every_key": 1,
    "fund": 1,
    "allocate": 2,
    "end_allocation": 2,
}

# A third of the amounts asked are more than what is available, and must be refused.
OVER = st.sampled_from([False, False, True])


def snapshot():
    """Everything a refused operation or a replay must leave as it was."""
    return (
        list(Account.objects.order_by("pk").values_list("pk", "balance", "pending")),
        list(Transfer.objects.order_by("pk").values_list("pk", flat=True)),
        Entry.objects.count(),
        list(Allocation.objects.order_by("pk").values_list("pk", "status")),
        Pocket.objects.count(),
    )


@dataclass
class PocketModel:
    allocation: Allocation
    program: Program
    balance: int
    pending: int = 0
    status: str = Allocation.Status.ACTIVE
    window_over: bool = False

    @property
    def available(self) -> int:
        return self.balance - self.pending


@dataclass
class HoldModel:
    transfer: Transfer
    pocket: PocketModel
    merchant_pk: int
    amount: int
    state: str = "pending"
    resolution_pk: int | None = None


@dataclass
class CaptureModel:
    transfer: Transfer
    pocket: PocketModel
    merchant_pk: int
    amount: int
    refunded: int = 0


@dataclass
class Replay:
    """A keyed write that succeeded: the same call again, and its key reused for another one."""

    what: str
    same: Callable[[], object]
    other: Callable[[], object]
    pk: int
    pocket: PocketModel | None = None  # the pocket it moved money on, if any


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self._example = transaction.atomic()
        self._example.__enter__()
        self._keys = itertools.count()
        self.now = timezone.now()
        funder = FunderFactory()
        self.programs = [program_create(funder=funder, name=f"Programme {n}") for n in range(2)]
        self.merchants = [make_merchant() for _ in range(2)]
        self.beneficiaries = BeneficiaryFactory.create_batch(2)
        self.funding = external_funding_account("EUR")
        # the model
        self.funded = 0
        self.floats = {program.pk: 0 for program in self.programs}
        self.payables = {merchant.pk: 0 for merchant in self.merchants}
        self.pockets: list[PocketModel] = []
        self.holds: list[HoldModel] = []
        self.captures: list[CaptureModel] = []
        self.replays: list[Replay] = []

    def teardown(self):
        transaction.set_rollback(True)
        self._example.__exit__(None, None, None)

    # helpers

    def key(self) -> str:
        return f"key-{next(self._keys)}"

    @staticmethod
    def refused(error: type[DomainError] | str, call: Callable[[], object]) -> None:
        """`call` raises the error of that code and changes nothing."""
        code = error if isinstance(error, str) else error.code
        before = snapshot()
        with pytest.raises(DomainError) as raised:
            call()
        assert raised.value.code == code
        assert snapshot() == before

    @staticmethod
    def amount(data, available: int, over: bool, *, ceiling: int = 10_000) -> int:
        """An amount that fits in `available` or, when `over` (or nothing is available), one
        that does not; one time in four right at the edge (all of it, or one cent more)."""
        at_edge = data.draw(st.integers(0, 3), label="at edge") == 0
        if over or available <= 0:
            excess = 1 if at_edge else data.draw(st.integers(1, ceiling), label="excess")
            return max(available, 0) + excess
        return available if at_edge else data.draw(st.integers(1, available), label="amount")

    def sweep(self, pocket: PocketModel) -> None:
        self.floats[pocket.program.pk] += pocket.available
        pocket.balance -= pocket.available

    def pending_holds(self) -> list[HoldModel]:
        return [hold for hold in self.holds if hold.state == "pending"]

    def resolved_holds(self) -> list[HoldModel]:
        return [hold for hold in self.holds if hold.state != "pending"]

    def refundable(self) -> list[CaptureModel]:
        return [capture for capture in self.captures if capture.refunded < capture.amount]

    def possible(self, operation: str) -> bool:
        needs = {
            # holds and refunds over the limit are tried too, but only while some could succeed
            "place_hold": [pocket for pocket in self.pockets if pocket.available > 0],
            "capture_hold": self.pending_holds(),
            "release_hold": self.pending_holds(),
            "resolve_a_resolved_hold": self.resolved_holds(),
            "refund": self.refundable(),
            "replay": self.replays,
            "replay_every_key": self.replays,
            "end_allocation": self.pockets,
        }
        return bool(needs.get(operation, True))

    # the steps

    @initialize(data=st.data(), pockets=st.integers(1, 3))
    def fund_and_allocate(self, data, pockets):
        """Start with money to spend: tiny amounts find no more bugs, they only end an example
        early (the edges are drawn on purpose, see `amount`)."""
        for program in self.programs:
            funded = data.draw(st.integers(50_000, 500_000), label="funded")
            self.fund_program(program, funded)
        for _ in range(pockets):
            self.allocate(data, amount=data.draw(st.integers(1_000, 30_000), label="amount"))

    @rule(data=st.data())
    def step(self, data):
        operations = [
            operation
            for operation, weight in WEIGHTS.items()
            if self.possible(operation)
            for _ in range(weight)
        ]
        operation = data.draw(st.sampled_from(operations), label="operation")
        getattr(self, operation)(data)

    # funding and allocation

    def fund(self, data):
        program = data.draw(st.sampled_from(self.programs), label="program")
        self.fund_program(program, data.draw(st.integers(1, 50_000), label="amount"))

    def fund_program(self, program: Program, amount: int) -> None:
        key = self.key()
        transfer = program_fund(program=program, amount=amount, idempotency_key=key).transfer
        self.funded += amount
        self.floats[program.pk] += amount
        self.replays.append(
            Replay(
                "fund",
                lambda: program_fund(program=program, amount=amount, idempotency_key=key).transfer,
                lambda: program_fund(program=program, amount=amount + 1, idempotency_key=key),
                transfer.pk,
            )
        )

    def allocate(self, data, amount: int | None = None):
        program = data.draw(st.sampled_from(self.programs), label="program")
        beneficiary = data.draw(st.sampled_from(self.beneficiaries), label="beneficiary")
        window_over = data.draw(st.booleans(), label="window_over")
        if amount is None:
            over = data.draw(OVER, label="over")
            amount = self.amount(data, self.floats[program.pk], over, ceiling=50_000)
        kwargs = {
            "program": program,
            "beneficiary": beneficiary,
            "amount": amount,
            # an aid whose window is over may be expired; the others only revoked
            "valid_from": self.now - timedelta(days=10),
            "valid_until": self.now + timedelta(days=-1 if window_over else 30),
            "idempotency_key": self.key(),
        }
        if amount > self.floats[program.pk]:
            self.refused(InsufficientFunds, lambda: allocation_create(**kwargs))
            return
        allocation = allocation_create(**kwargs)
        self.floats[program.pk] -= amount
        self.pockets.append(PocketModel(allocation, program, amount, window_over=window_over))
        self.replays.append(
            Replay(
                "allocate",
                lambda: allocation_create(**kwargs),
                lambda: allocation_create(**{**kwargs, "amount": amount + 1}),
                allocation.pk,
                self.pockets[-1],
            )
        )

    def end_allocation(self, data):
        pocket = data.draw(st.sampled_from(self.pockets), label="pocket")
        how = data.draw(st.sampled_from(["revoke", "expire"]), label="how")
        allocation = pocket.allocation
        if how == "revoke":
            target = Allocation.Status.REVOKED

            def end():
                return allocation_revoke(allocation=allocation)
        else:
            target = Allocation.Status.EXPIRED

            def end():
                return allocation_expire(allocation=allocation)

        still_valid = how == "expire" and not pocket.window_over
        if still_valid or pocket.status not in (Allocation.Status.ACTIVE, target):
            self.refused(InvalidState, end)
            return
        end()
        # ending an aid again the same way is allowed: it sweeps what was released since
        pocket.status = target
        self.sweep(pocket)
        # a client may retry any earlier write on this aid now that it has ended
        self.replay_each([replay for replay in self.replays if replay.pocket is pocket])

    # holds

    def place_hold(self, data):
        pocket = data.draw(st.sampled_from(self.pockets), label="pocket")
        merchant = data.draw(st.sampled_from(self.merchants), label="merchant")
        amount = self.amount(data, pocket.available, data.draw(OVER, label="over"))
        key = self.key()

        def place(amount=amount):
            return hold_place(
                debit=pocket.allocation.pocket.account,
                credit=merchant.payable_account,
                amount=amount,
                idempotency_key=key,
                expires_at=self.now + timedelta(days=7),
            )

        if amount > pocket.available:
            self.refused(InsufficientFunds, place)
            return
        hold = place()
        pocket.pending += amount
        self.holds.append(HoldModel(hold, pocket, merchant.pk, amount))
        self.replays.append(Replay("hold", place, lambda: place(amount + 1), hold.pk, pocket))

    def capture_hold(self, data):
        hold = data.draw(st.sampled_from(self.pending_holds()), label="hold")
        how = data.draw(st.sampled_from(["whole", "partial", "over"]), label="how")
        key = self.key()
        if how == "over":
            excess = data.draw(st.just(1) | st.integers(1, 1_000), label="excess")
            self.refused(
                ExceedsHoldAmount,
                lambda: hold_post(
                    hold=hold.transfer, amount=hold.amount + excess, idempotency_key=key
                ),
            )
            return
        amount = None
        if how == "partial" and hold.amount > 1:
            amount = data.draw(st.integers(1, hold.amount - 1), label="amount")
        capture = hold_post(hold=hold.transfer, amount=amount, idempotency_key=key)
        posted = hold.amount if amount is None else amount
        assert capture.amount == posted
        hold.state = "posted"
        hold.resolution_pk = capture.pk
        hold.pocket.pending -= hold.amount
        hold.pocket.balance -= posted
        self.payables[hold.merchant_pk] += posted
        self.captures.append(CaptureModel(capture, hold.pocket, hold.merchant_pk, posted))
        self.replays.append(
            Replay(
                "capture",
                lambda: hold_post(hold=hold.transfer, amount=amount, idempotency_key=key),
                lambda: hold_void(hold=hold.transfer, idempotency_key=key),
                capture.pk,
                hold.pocket,
            )
        )

    def release_hold(self, data):
        hold = data.draw(st.sampled_from(self.pending_holds()), label="hold")
        how = data.draw(st.sampled_from(["void", "expire", "release"]), label="how")
        if how == "release":
            self.release_part(data, hold)
            return
        if how == "void":
            key = self.key()
            resolution = hold_void(hold=hold.transfer, idempotency_key=key)
            self.replays.append(
                Replay(
                    "void",
                    lambda: hold_void(hold=hold.transfer, idempotency_key=key),
                    lambda: hold_post(hold=hold.transfer, idempotency_key=key),
                    resolution.pk,
                    hold.pocket,
                )
            )
        else:
            resolution = hold_expire(hold=hold.transfer)
        hold.state = {"void": "voided", "expire": "expired"}[how]
        hold.resolution_pk = resolution.pk
        hold.pocket.pending -= hold.amount

    def release_part(self, data, hold: HoldModel) -> None:
        """A partial reversal: `amount` of the hold goes back to its pocket, and a new hold on
        the same accounts keeps the rest (none when `amount` is all of it)."""
        amount = self.amount(data, hold.amount, data.draw(OVER, label="over"))
        key = self.key()

        def release(amount=amount):
            return hold_release(hold=hold.transfer, amount=amount, idempotency_key=key)

        if amount > hold.amount:
            self.refused(ExceedsHoldAmount, release)
            return
        kept = release()
        hold.state = "voided"
        hold.resolution_pk = Transfer.objects.get(pending_transfer=hold.transfer).pk
        hold.pocket.pending -= amount
        if kept is None:
            assert amount == hold.amount
            before = snapshot()
            assert release() is None
            assert snapshot() == before
            return
        assert kept.amount == hold.amount - amount
        assert kept.expires_at == hold.transfer.expires_at
        self.holds.append(HoldModel(kept, hold.pocket, hold.merchant_pk, kept.amount))
        self.replays.append(
            Replay("release", release, lambda: release(amount + 1), kept.pk, hold.pocket)
        )

    def resolve_a_resolved_hold(self, data):
        hold = data.draw(st.sampled_from(self.resolved_holds()), label="hold")
        how = data.draw(st.sampled_from(["post", "void", "expire"]), label="how")
        if how == "expire" and hold.state == "expired":
            # an expiry is keyed by its hold: running it again returns it and moves nothing
            before = snapshot()
            assert hold_expire(hold=hold.transfer).pk == hold.resolution_pk
            assert snapshot() == before
            return
        key = self.key()
        call = {
            "post": lambda: hold_post(hold=hold.transfer, idempotency_key=key),
            "void": lambda: hold_void(hold=hold.transfer, idempotency_key=key),
            "expire": lambda: hold_expire(hold=hold.transfer),
        }[how]
        self.refused(f"hold_already_{hold.state}", call)

    # refunds

    def refund(self, data):
        capture = data.draw(st.sampled_from(self.refundable()), label="capture")
        refundable = capture.amount - capture.refunded
        amount = self.amount(data, refundable, data.draw(OVER, label="over"))
        key = self.key()

        def refund(amount=amount):
            return capture_refund(capture=capture.transfer, amount=amount, idempotency_key=key)

        if amount > refundable:
            self.refused(ExceedsRefundable, refund)
            return
        transfer = refund()
        capture.refunded += amount
        self.payables[capture.merchant_pk] -= amount
        pocket = capture.pocket
        if pocket.status == Allocation.Status.ACTIVE:
            pocket.balance += amount
        else:
            # an ended aid is never refilled: the money goes back to its program
            self.floats[pocket.program.pk] += amount
        self.replays.append(
            Replay(
                "refund",
                refund,
                lambda: refund(amount + 1),
                transfer.pk,
                pocket,
            )
        )

    # idempotency

    def replay(self, data):
        """A key used again: with the same parameters it returns the first result; with other
        parameters it is a conflict. Either way nothing moves."""
        replay = data.draw(st.sampled_from(self.replays), label="replay")
        if data.draw(st.booleans(), label="same parameters"):
            before = snapshot()
            assert replay.same().pk == replay.pk
            assert snapshot() == before
        else:
            self.refused(IdempotencyConflict, replay.other)

    def replay_every_key(self, data):
        """Every keyed write so far retried now, whatever has happened since (holds resolved,
        aid ended, money spent)."""
        self.replay_each(self.replays)

    @staticmethod
    def replay_each(replays: list[Replay]) -> None:
        """Each write retried with the same parameters returns its first result; nothing moves."""
        before = snapshot()
        for replay in replays:
            assert replay.same().pk == replay.pk, replay.what
        assert snapshot() == before

    # invariants, after every step

    @invariant()
    def verify_finds_no_problem(self):
        assert verify() == []

    @invariant()
    def guarded_accounts_match_the_model(self):
        expected = {
            program.float_account_id: (self.floats[program.pk], 0) for program in self.programs
        }
        expected |= {
            pocket.allocation.pocket.account_id: (pocket.balance, pocket.pending)
            for pocket in self.pockets
        }
        actual = {
            pk: (balance, pending)
            for pk, balance, pending in Account.objects.filter(guarded=True).values_list(
                "pk", "balance", "pending"
            )
        }
        assert actual == expected

    @invariant()
    def allocations_match_the_model(self):
        expected = {pocket.allocation.pk: pocket.status for pocket in self.pockets}
        assert dict(Allocation.objects.values_list("pk", "status")) == expected

    @invariant()
    def money_is_conserved(self):
        totals = dict(
            Entry.objects.values("account")
            .annotate(total=Sum("amount"))
            .values_list("account", "total")
        )
        # every transfer balances, so all entries together sum to zero
        assert sum(totals.values()) == 0
        # what entered the ledger is what funders paid in
        assert totals.get(self.funding.pk, 0) == -self.funded
        # merchants are owed what was captured less what was refunded
        owed = {
            merchant.pk: totals.get(merchant.payable_account_id, 0) for merchant in self.merchants
        }
        assert owed == self.payables
        captured = sum(capture.amount for capture in self.captures)
        refunded = sum(capture.refunded for capture in self.captures)
        assert sum(owed.values()) == captured - refunded
        # and it is all somewhere: on a program's float, in a pocket, or owed to a merchant
        floats = sum(self.floats.values())
        pockets = sum(pocket.balance for pocket in self.pockets)
        assert self.funded == floats + pockets + sum(owed.values())


def test_random_sequences_of_operations_keep_the_ledger_consistent():
    run_state_machine_as_test(LedgerMachine, settings=SETTINGS)


def test_refund_replayed_after_the_aid_ended_returns_the_first_refund(allocation, merchant):
    """The refund goes to the pocket while the aid is active and to the program after: a retry
    must not read that change as other parameters (it did, before the fix in refund_post)."""
    # given a refund made while the aid was active, then the aid revoked
    hold = hold_place(
        debit=allocation.pocket.account,
        credit=merchant.payable_account,
        amount=4_000,
        idempotency_key="h",
    )
    capture = hold_post(hold=hold, idempotency_key="c")
    first = capture_refund(capture=capture, amount=1_000, idempotency_key="r")
    allocation_revoke(allocation=allocation)
    before = snapshot()

    # when the client retries the refund
    again = capture_refund(capture=capture, amount=1_000, idempotency_key="r")

    # then it gets the first refund, and nothing moves
    assert again.pk == first.pk
    assert snapshot() == before
