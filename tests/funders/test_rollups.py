"""The dashboards' rollup (funders/rollups.py): whenever it was last folded, the figures a
dashboard shows equal the straightforward aggregate of the ledger, across Paris midnights, after
payments, captures, refunds, releases and the expiry sweep."""

import threading
from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from funders import reports, rollups
from funders.models import (
    Allocation,
    EndedPocketLeft,
    Program,
    ProgramFlow,
    RollupWatermark,
)
from funders.services import allocation_revoke, allocations_expire_due, program_fund
from ledger.models import Account, Entry, Transfer
from merchants.payments import payment_authorize, payment_capture, payment_refund, payment_reverse
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.funders.test_reports import PERIOD, Scenario, build_scenario
from tests.markers import postgresql_only

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def scenario(funder, other_funder, time_machine) -> Scenario:
    """test_reports' program life: funded twice, grants, payments captured and refunded, one
    held, three refused, one grant revoked and one expired."""
    return build_scenario(funder=funder, other_funder=other_funder, time_machine=time_machine)


def fold(**kwargs) -> rollups.Folded:
    # Everything folded at once: the rows of a test are not minutes old.
    return rollups.rollup_fold(settle=timedelta(0), **kwargs)


def straightforward(program: Program) -> reports.ProgramFigures:
    """The figures read the long way, from every account and entry of the program."""
    figures = reports.ProgramFigures(currency=program.currency)
    float_account = Account.objects.get(pk=program.float_account_id)
    figures.float_available = float_account.balance - float_account.pending
    on_float = dict(
        Entry.objects.filter(account=float_account)
        .values_list("transfer__kind")
        .annotate(total=Sum("amount"))
    )
    figures.funded = on_float.get(Transfer.Kind.FUND, 0)
    figures.allocated = -on_float.get(Transfer.Kind.ALLOCATE, 0)
    figures.expired_returned = on_float.get(Transfer.Kind.EXPIRE, 0)
    figures.revoked_returned = on_float.get(Transfer.Kind.REVOKE, 0)
    figures.refunded = on_float.get(Transfer.Kind.REFUND, 0)
    pockets = Account.objects.filter(pocket__allocation__program=program)
    for account in pockets.select_related("pocket__allocation"):
        figures.held += account.pending
        if account.pocket.allocation.status == Allocation.Status.ACTIVE:
            figures.in_pockets += account.balance - account.pending
        else:
            figures.not_yet_returned += account.balance - account.pending
    on_pockets = dict(
        Entry.objects.filter(account__in=pockets)
        .values_list("transfer__kind")
        .annotate(total=Sum("amount"))
    )
    figures.captured = -on_pockets.get(Transfer.Kind.CAPTURE, 0)
    figures.refunded += on_pockets.get(Transfer.Kind.REFUND, 0)
    return figures


def spending_by_day(program: Program, start: date, end: date) -> dict[date, int]:
    """Captures minus refunds of the program's pockets by Paris day, transfer by transfer."""
    totals: dict[date, int] = defaultdict(int)
    for transfer in Transfer.objects.filter(kind__in=["capture", "refund"]):
        hold = (transfer.refund_of if transfer.kind == "refund" else transfer).pending_transfer
        if hold is None or hold.decision_hold.pocket.allocation.program_id != program.pk:
            continue
        day = transfer.created_at.astimezone(PARIS).date()
        if start <= day <= end:
            totals[day] += transfer.amount if transfer.kind == "capture" else -transfer.amount
    return {day: amount for day, amount in totals.items() if amount}


def assert_exact(program: Program, start: date, end: date) -> None:
    assert reports.program_figures(programs=[program])[program.pk] == straightforward(program)
    period = reports.Period(start=start, end=end)
    shown = {
        day: amount
        for day, amount in reports.spending_over_time(program=program, period=period)
        if amount
    }
    assert shown == spending_by_day(program, start, end)


def test_figures_stay_exact_across_paris_midnights_whenever_the_rollup_was_folded(
    funder, time_machine
):
    # given a program, two grants (one ending on the 10th) and a shop
    time_machine.move_to(datetime(2026, 3, 1, 9, tzinfo=PARIS), tick=False)
    program = make_program(funder=funder, funded=50_000)
    shop = make_merchant(trade_name="Épicerie", mcc="5411")
    alice = make_allocation(program=program, beneficiary=BeneficiaryFactory(), amount=20_000)
    bob = make_allocation(
        program=program,
        beneficiary=BeneficiaryFactory(),
        amount=10_000,
        valid_until=datetime(2026, 3, 10, tzinfo=PARIS),
    )
    keys = iter(range(100))

    def pay(allocation, amount, *, capture=True):
        return payment_authorize(
            merchant=shop,
            amount=amount,
            currency="EUR",
            payment_code=make_payment_code(allocation.beneficiary.wallet),
            capture=capture,
            idempotency_key=f"pay-{next(keys)}",
        )

    march = (date(2026, 3, 1), date(2026, 3, 31))
    assert_exact(program, *march)  # nothing folded yet: everything read after the watermark

    # when payments are made either side of Paris midnights (23:50 on the 2nd is the 2nd in
    # Paris and in UTC; 00:20 on the 3rd in Paris is still the 2nd in UTC)
    time_machine.move_to(datetime(2026, 3, 2, 23, 50, tzinfo=PARIS), tick=False)
    first = pay(alice, 3_000)
    time_machine.move_to(datetime(2026, 3, 3, 0, 20, tzinfo=PARIS), tick=False)
    pay(bob, 1_500)
    held = pay(alice, 2_000, capture=False)
    fold()
    assert_exact(program, *march)

    # then captures, a refund and a release after the fold are exact before the next one
    time_machine.move_to(datetime(2026, 3, 4, 0, 5, tzinfo=PARIS), tick=False)
    payment_capture(merchant=shop, decision=held, amount=1_200, idempotency_key="cap")
    payment_refund(merchant=shop, decision=first, amount=400, idempotency_key="ref")
    assert_exact(program, *march)
    held_on_bob = pay(bob, 2_500, capture=False)
    fold()
    assert_exact(program, *march)
    assert_exact(program, date(2026, 3, 3), date(2026, 3, 3))  # one day: the 2nd's excluded

    # and the expiry sweep on the 10th, then a hold released on the ended pocket (money the
    # ended aid keeps until the next sweep), both exact with or without a fold in between
    time_machine.move_to(datetime(2026, 3, 10, 0, 30, tzinfo=PARIS), tick=False)
    assert allocations_expire_due() == 1
    assert_exact(program, *march)
    payment_reverse(merchant=shop, decision=held_on_bob, idempotency_key="rev")
    figures = reports.program_figures(programs=[program])[program.pk]
    assert figures.not_yet_returned == 2_500
    assert_exact(program, *march)
    fold()
    assert_exact(program, *march)
    allocation_revoke(allocation=alice, reason="moved")
    assert_exact(program, *march)
    fold()
    assert_exact(program, *march)
    assert reports.program_figures(programs=[program])[program.pk].revoked_returned > 0


def test_a_fold_changes_no_figure_of_any_dashboard(scenario):
    # In English for the labels it compares, and only here: an activation left behind made
    # the next modules (the reconciliation's tests) read English labels for French ones.
    with translation.override("en"):
        programs = [scenario.program, scenario.small_program, scenario.other_program]

        def everything():
            program = scenario.program
            return (
                reports.program_figures(programs=programs),
                reports.spending_over_time(program=program, period=PERIOD),
                reports.spending_by_category(program=program, period=PERIOD),
                reports.spending_by_merchant(program=program, period=PERIOD),
                reports.spending_by_departement(program=program, period=PERIOD),
                reports.declines_by_reason(program=program, period=PERIOD),
                reports.program_statement(program=program, period=PERIOD),
            )

        before = everything()
        # Folded a few ids at a time, as a large database is, chunk by chunk.
        folded = fold(chunk=3)
        assert folded.transfers > 0 and folded.decisions > 0
        assert ProgramFlow.objects.exists()
        assert everything() == before
        assert fold().transfers == 0  # nothing new: nothing folded twice
        assert everything() == before


def test_the_fold_leaves_rows_younger_than_the_settling_time_to_the_dashboards(
    scenario, time_machine
):
    last = Transfer.objects.latest("pk")
    before = reports.program_figures(programs=[scenario.program])

    # a minute after the last transfer, only what is older than two minutes is folded
    time_machine.move_to(last.created_at + timedelta(minutes=1), tick=False)
    folded = rollups.rollup_fold()
    assert 0 < folded.transfer_watermark < last.pk
    assert Transfer.objects.filter(pk__gt=folded.transfer_watermark).exists()
    assert reports.program_figures(programs=[scenario.program]) == before

    # three minutes after it, everything
    time_machine.move_to(last.created_at + timedelta(minutes=3), tick=False)
    assert rollups.rollup_fold().transfer_watermark == last.pk
    assert reports.program_figures(programs=[scenario.program]) == before


def test_a_fold_reads_again_only_the_ended_pockets_listed_or_moved_since(funder):
    # given two grants revoked while a payment held part of each, folded
    program = make_program(funder=funder, funded=50_000)
    shop = make_merchant()
    held = {}
    for name in ("alice", "bob"):
        allocation = make_allocation(program=program, amount=10_000)
        held[name] = payment_authorize(
            merchant=shop,
            amount=3_000,
            currency="EUR",
            payment_code=make_payment_code(allocation.beneficiary.wallet),
            idempotency_key=f"pay-{name}",
        )
        allocation_revoke(allocation=allocation)
        held[name].pocket_account = allocation.pocket.account_id
    fold()
    assert not EndedPocketLeft.objects.exists()  # all they kept is held

    def listed() -> set[int]:
        return set(EndedPocketLeft.objects.values_list("account_id", flat=True))

    # when Alice's hold is released (her ended pocket keeps 30 €), then Bob's
    payment_reverse(merchant=shop, decision=held["alice"], idempotency_key="rev-alice")
    fold()
    assert listed() == {held["alice"].pocket_account}
    payment_reverse(merchant=shop, decision=held["bob"], idempotency_key="rev-bob")
    fold()

    # then both are listed (Alice's kept though her pocket did not move since)
    assert listed() == {held["alice"].pocket_account, held["bob"].pocket_account}
    assert reports.program_figures(programs=[program])[program.pk] == straightforward(program)
    # and a fold with nothing new reads no ended pocket again
    with CaptureQueriesContext(connection) as queries:
        assert fold().transfers == 0
    assert not [q for q in queries.captured_queries if "funders_allocation" in q["sql"]]
    # and once the sweep has returned what they kept, neither is
    allocations_expire_due()
    fold()
    assert listed() == set()
    assert reports.program_figures(programs=[program])[program.pk] == straightforward(program)


def test_the_sweep_folds_what_it_returned_as_it_goes_with_what_was_paid_just_before(
    funder, time_machine, monkeypatch
):
    # given a program folded once, two grants ending on the 10th, and a payment a minute before
    # the sweep (younger than the settling time: a fold of its own would leave it out)
    time_machine.move_to(datetime(2026, 3, 1, 9, tzinfo=PARIS), tick=False)
    program = make_program(funder=funder, funded=50_000)
    shop = make_merchant()
    ending = [
        make_allocation(
            program=program, amount=10_000, valid_until=datetime(2026, 3, 10, tzinfo=PARIS)
        )
        for _ in range(2)
    ]
    fold()
    time_machine.move_to(datetime(2026, 3, 10, 0, 29, tzinfo=PARIS), tick=False)
    payment_authorize(
        merchant=shop,
        amount=3_000,
        currency="EUR",
        payment_code=make_payment_code(ending[0].beneficiary.wallet),
        idempotency_key="pay-just-before",
    )

    # when the sweep runs a minute later, one pocket a batch, folding after each
    folds = []

    def recorded(**kwargs) -> rollups.Folded:
        folds.append(fold_as_it_goes(**kwargs))
        assert_exact(program, *march)
        return folds[-1]

    fold_as_it_goes = rollups.rollup_fold
    monkeypatch.setattr(rollups, "rollup_fold", recorded)
    march = (date(2026, 3, 1), date(2026, 3, 31))
    time_machine.move_to(datetime(2026, 3, 10, 0, 30, tzinfo=PARIS), tick=False)
    assert allocations_expire_due(batch_size=1, fold_every=1) == 2

    # then its transfers and the payment are in the rollup as it goes, no dashboard reads
    # them again, and every figure is exact
    last = Transfer.objects.latest("pk")
    assert [folded.transfer_watermark for folded in folds] == [last.pk - 1, last.pk]
    monkeypatch.undo()
    assert last.kind == Transfer.Kind.EXPIRE
    assert rollups.watermark().transfer == last.pk
    assert rollups.flows_since(last.pk, programs=[program.pk]) == {}
    assert ProgramFlow.objects.filter(program=program, kind=Transfer.Kind.EXPIRE).exists()
    assert_exact(program, *march)
    # and the next fold has nothing to add: nothing counted twice
    assert fold().transfers == 0
    assert_exact(program, *march)


def test_the_sweep_leaves_a_rollup_never_folded_to_its_first_fold(funder, time_machine):
    time_machine.move_to(datetime(2026, 3, 1, 9, tzinfo=PARIS), tick=False)
    program = make_program(funder=funder, funded=50_000)
    make_allocation(program=program, amount=10_000, valid_until=datetime(2026, 3, 10, tzinfo=PARIS))
    time_machine.move_to(datetime(2026, 3, 10, 0, 30, tzinfo=PARIS), tick=False)
    assert allocations_expire_due() == 1
    assert not RollupWatermark.objects.exists()
    assert_exact(program, date(2026, 3, 1), date(2026, 3, 31))


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_transfers_are_settled_once_the_writers_open_before_have_ended(funder):
    # given a transaction that wrote a transfer and has not committed yet
    program = make_program(funder=funder, funded=50_000)
    wrote, release = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                program_fund(program=program, amount=1_000, idempotency_key="still-open")
                wrote.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert wrote.wait(timeout=10)
        # then no id is settled while it is open (the fold keeps to the settling time)
        assert rollups.transfers_settled(wait=timedelta(milliseconds=200)) is None
    finally:
        release.set()
    # and once it has committed, the last id is, its transfer's
    settled = rollups.transfers_settled()
    thread.join(timeout=10)
    assert settled == Transfer.objects.latest("pk").pk
    assert Transfer.objects.get(pk=settled).kind == Transfer.Kind.FUND
