"""The dashboards' rollup: what moved on each program's accounts, what was spent where and
what was refused, per program and day (Europe/Paris), folded in by a task up to a watermark
(the last transfer and the last decision folded in), so that a dashboard reads a few thousand
rows of rollup instead of every payment a program ever had.

A dashboard reads the rollup and, in the same snapshot, folds the rows after the watermark on
the fly (`*_since` below, the same functions the task folds with): its figures are exact to
the moment however old the last fold is, and cheap while the fold keeps up (beat runs it every
minute; the dashboards' "refresh" runs it on demand). Nothing is written on the authorization
path: the figures are derived from the ledger's own rows.

Rows are folded once settled: only up to the last transfer (decision) made more than SETTLE
ago, so that a transaction still open when the fold runs, whose rows carry ids below those of
rows already committed, cannot be skipped: its rows are after the watermark and read on the fly
until a later fold takes them. A transaction open longer than SETTLE would be skipped; the
platform's transactions last milliseconds (the database's statement timeout is far below)."""

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection, connections, router, transaction
from django.db.models import DateField, F, Max, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import TruncDay
from django.utils import timezone

from core.time import PARIS
from funders.models import (
    Allocation,
    EndedPocketLeft,
    ProgramDecline,
    ProgramFlow,
    ProgramRefusal,
    ProgramSpending,
    RollupWatermark,
)
from ledger.models import Account, Entry, Transfer
from wallet.models.decisions import Decision

SETTLE = timedelta(minutes=2)
# Ids folded per transaction: the first fold of a large database is many of these, each short.
CHUNK = 500_000
RECEIVABLE_PREFIX = "program-receivable:"  # stripe_issuing.transactions' receivable account
NO_END = 2**63 - 1

# From a capture, and from a refund, to the authorization decision behind it.
CAPTURE_PATH = "pending_transfer__decision_hold__"
REFUND_PATH = "refund_of__pending_transfer__decision_hold__"


def _day(field: str) -> TruncDay:
    return TruncDay(field, tzinfo=PARIS, output_field=DateField())


FlowKey = tuple[int, date, str, str]  # program, day, role, kind
SpendingKey = tuple[int, date, int, str, str, str]  # program, day, merchant, name, mcc, dépt
DeclineKey = tuple[int, date, str]  # program, day, reason


# --- what moved between two watermarks ------------------------------------------------------------


def flows_since(
    lo: int, hi: int = NO_END, programs: Iterable[int] | None = None
) -> dict[FlowKey, list[int]]:
    """{(program, day, role, kind): [amount, pending]} for the transfers lo < id <= hi: the
    entries on each program's float, pockets and receivable, and the pending amount holds
    add to a pocket (+) and their resolution takes off (-)."""
    ids = None if programs is None else list(programs)
    flows: dict[FlowKey, list[int]] = defaultdict(lambda: [0, 0])
    in_range = Q(transfer_id__gt=lo, transfer_id__lte=hi)

    def only(path: str) -> Q:
        return Q() if ids is None else Q(**{f"{path}__in": ids})

    owners = {
        ProgramFlow.Role.POCKET: "account__pocket__allocation__program",
        ProgramFlow.Role.FLOAT: "account__program",
    }
    for role, path in owners.items():
        rows = (
            Entry.objects.filter(in_range, only(path), **{f"{path}__isnull": False})
            .values(program=F(path), day=_day("transfer__created_at"), kind=F("transfer__kind"))
            .annotate(total=Sum("amount"))
        )
        for row in rows:
            flows[(row["program"], row["day"], role, row["kind"])][0] += row["total"]
    receivables = (
        Entry.objects.filter(in_range, account__kind=Account.Kind.PROGRAM_RECEIVABLE)
        .values(code=F("account__code"), day=_day("transfer__created_at"), kind=F("transfer__kind"))
        .annotate(total=Sum("amount"))
    )
    for row in receivables:
        program = int(row["code"].removeprefix(RECEIVABLE_PREFIX))
        if ids is None or program in ids:
            key = (program, row["day"], ProgramFlow.Role.RECEIVABLE, row["kind"])
            flows[key][0] += row["total"]

    transfers = Q(id__gt=lo, id__lte=hi)
    held = "debit_account__pocket__allocation__program"
    released = "pending_transfer__debit_account__pocket__allocation__program"
    for path, sign, amount in ((held, 1, "amount"), (released, -1, "pending_transfer__amount")):
        condition = Q(is_pending=True) if sign > 0 else Q(pending_transfer__isnull=False)
        rows = (
            Transfer.objects.filter(transfers, condition, only(path), **{f"{path}__isnull": False})
            .values(program=F(path), day=_day("created_at"), kind_=F("kind"))
            .annotate(total=Sum(amount))
        )
        for row in rows:
            key = (row["program"], row["day"], ProgramFlow.Role.POCKET, row["kind_"])
            flows[key][1] += sign * row["total"]
    return flows


def _merchant_field(path: str, name: str) -> KeyTextTransform:
    return KeyTextTransform(name, KeyTransform("merchant", f"{path}decision__request"))


def spending_since(
    lo: int, hi: int = NO_END, programs: Iterable[int] | None = None
) -> dict[SpendingKey, list[int]]:
    """{(program, day, merchant id or 0, merchant's name, mcc, département): [captured,
    refunded]} for the captures and refunds lo < id <= hi on the programs' pockets, the
    merchant as the decision recorded it at the time of the payment."""
    ids = None if programs is None else list(programs)
    spending: dict[SpendingKey, list[int]] = defaultdict(lambda: [0, 0])
    for column, kind, path in (
        (0, Transfer.Kind.CAPTURE, CAPTURE_PATH),
        (1, Transfer.Kind.REFUND, REFUND_PATH),
    ):
        program = f"{path}pocket__allocation__program"
        rows = (
            Transfer.objects.filter(
                Q() if ids is None else Q(**{f"{program}__in": ids}),
                id__gt=lo,
                id__lte=hi,
                kind=kind,
                **{f"{program}__isnull": False},
            )
            .values(
                program=F(program),
                day=_day("created_at"),
                merchant=F(f"{path}decision__merchant"),
                name=_merchant_field(path, "name"),
                mcc=_merchant_field(path, "mcc"),
                departement=KeyTextTransform("departement", f"{path}decision__request"),
            )
            .annotate(total=Sum("amount"))
        )
        for row in rows:
            key = (
                row["program"],
                row["day"],
                row["merchant"] or 0,
                row["name"] or "",
                row["mcc"] or "",
                row["departement"] or "",
            )
            spending[key][column] += row["total"]
    return spending


def _refused(
    lo: int, hi: int, programs: Iterable[int] | None, fields: tuple[str, ...] = ()
) -> Iterator[tuple[int, date, set[str], tuple]]:
    """(program, day, reason codes, the decision's `fields`) for each program whose pockets
    refused a declined or partially approved decision lo < id <= hi: the reasons of that
    program's pockets that refused it, or, where they accepted the shop but could not pay in
    full (a limit, their balance), the payment's own reason."""
    ids = None if programs is None else set(programs)
    from wallet.models import Pocket

    decisions = list(
        Decision.objects.filter(
            id__gt=lo,
            id__lte=hi,
            status__in=[Decision.Status.DECLINED, Decision.Status.PARTIALLY_APPROVED],
        ).values_list("decided_at", "trace", *fields)
    )
    asked = {
        verdict["pocket_id"]
        for _at, trace, *_ in decisions
        for verdict in trace.get("verdicts", [])
    }
    program_of = dict(Pocket.objects.filter(pk__in=asked).values_list("pk", "allocation__program"))
    for decided_at, trace, *values in decisions:
        day = timezone.localtime(decided_at, PARIS).date()
        by_program: dict[int, list[dict]] = defaultdict(list)
        for verdict in trace.get("verdicts", []):
            program = program_of.get(verdict["pocket_id"])
            if program is not None and (ids is None or program in ids):
                by_program[program].append(verdict)
        for program, verdicts in by_program.items():
            refused = {v["reason"] for v in verdicts if not v["eligible"]}
            if not refused and trace.get("reason"):
                refused = {trace["reason"]}
            if refused:
                yield program, day, refused, tuple(values)


def declines_since(
    lo: int, hi: int = NO_END, programs: Iterable[int] | None = None
) -> dict[DeclineKey, int]:
    """{(program, day, reason): payments} for the declined or partially approved decisions
    lo < id <= hi: a payment counts once per reason its program's pockets refused it for."""
    counts: dict[DeclineKey, int] = defaultdict(int)
    for program, day, refused, _values in _refused(lo, hi, programs):
        for reason in refused:
            counts[(program, day, reason)] += 1
    return counts


def refusals_since(
    lo: int, hi: int = NO_END, programs: Iterable[int] | None = None
) -> list[ProgramRefusal]:
    """The refusals (unsaved ProgramRefusal rows) of the decisions lo < id <= hi: who, how
    much, where and why, the shop as the decision recorded it at the time of the payment."""
    fields = ("pk", "wallet_id", "amount", "approved_amount", "merchant_id", "request")
    rows = []
    for program, day, refused, values in _refused(lo, hi, programs, fields):
        decision, wallet, amount, approved, merchant_id, request = values
        merchant = request.get("merchant", {})
        rows.append(
            ProgramRefusal(
                program_id=program,
                decision_id=decision,
                day=day,
                wallet_id=wallet,
                amount=amount - approved,
                merchant_id=merchant_id,
                merchant_name=merchant.get("name", ""),
                mcc=merchant.get("mcc", ""),
                commune=merchant.get("commune_code") or merchant.get("postcode") or "",
                reasons=sorted(refused),
            )
        )
    return rows


def _ended_with_money(accounts: Q, programs: Iterable[int] | None):
    """The pockets of ended aid among `accounts` that keep money beyond their holds."""
    return Account.objects.filter(
        accounts,
        Q() if programs is None else Q(pocket__allocation__program__in=list(programs)),
        pocket__isnull=False,
        balance__gt=F("pending"),
    ).exclude(pocket__allocation__status=Allocation.Status.ACTIVE)


# --- the fold -------------------------------------------------------------------------------------


def _settled(model, lo: int, time_field: str, settle: timedelta) -> int:
    """The highest id after `lo` of the rows made more than `settle` ago (`lo` if none): every
    id below it was handed out before then, so its transaction has ended."""
    cutoff = timezone.now() - settle
    found = model.objects.filter(id__gt=lo, **{f"{time_field}__lte": cutoff}).aggregate(
        last=Max("id")
    )["last"]
    return lo if found is None else found


def _add(model, rows: dict, key_fields: list[str], value_fields: list[str]) -> None:
    """Adds `rows` ({key: values}) to the rollup table `model`, one statement to read the rows
    they fall on and one to write them."""
    if not rows:
        return
    programs = {key[0] for key in rows}
    days = {key[1] for key in rows}
    existing = {
        tuple(getattr(row, f) for f in key_fields): row
        for row in model.objects.filter(program__in=programs, day__in=days)
    }
    merged = []
    for key, values in rows.items():
        values = values if isinstance(values, list) else [values]
        row = existing.get(key) or model(**dict(zip(key_fields, key, strict=True)))
        for name, value in zip(value_fields, values, strict=True):
            setattr(row, name, (getattr(row, name) or 0) + value)
        merged.append(row)
    model.objects.bulk_create(
        merged,
        update_conflicts=True,
        unique_fields=key_fields,
        update_fields=value_fields,
        batch_size=1000,
    )


_FLOW_KEY = ["program_id", "day", "role", "kind"]
_SPENDING_KEY = ["program_id", "day", "merchant_id", "merchant_name", "mcc", "departement"]
_DECLINE_KEY = ["program_id", "day", "reason"]


@dataclass
class Folded:
    transfers: int = 0  # ids folded in by this run
    decisions: int = 0
    transfer_watermark: int = 0
    decision_watermark: int = 0


def _moved_since(lo: int) -> list[QuerySet]:
    """The accounts the transfers after `lo` moved, as subqueries: their entries, and the
    accounts their holds and hold resolutions reserve on. Each is read apart, by the
    transfers' ids (one statement ORing the three would have the planner read every account),
    and inside the statement that uses it: after a sweep or a campaign, a million accounts,
    which as a list of ids cost the dashboards a second of Python at 100,000."""
    return [
        Entry.objects.filter(transfer_id__gt=lo).values("account"),
        Transfer.objects.filter(id__gt=lo, is_pending=True).values("debit_account"),
        Transfer.objects.filter(id__gt=lo, pending_transfer__isnull=False).values(
            "pending_transfer__debit_account"
        ),
    ]


def _ended_list() -> None:
    """Brings EndedPocketLeft up to the transfer watermark. Only a transfer can give an ended
    pocket money beyond its holds (ending an allocation returns what is free in the same
    transaction; a hold released after adds it back), so only the pockets listed and those
    the transfers after the last listing moved are read again, not every ended pocket (a
    million after the sweep: 9 s a fold). The first listing reads them all."""
    with transaction.atomic():
        mark = RollupWatermark.objects.select_for_update().get(pk=1)
        if mark.ended == mark.transfer:
            return
        if mark.ended is None:
            candidates = [Q()]
        else:
            listed = EndedPocketLeft.objects.values("account_id")
            candidates = [Q(pk__in=accounts) for accounts in [listed, *_moved_since(mark.ended)]]
        left: dict[int, int] = {}
        for accounts in candidates:
            # Each apart, by its own index: ORed, the planner would read every account.
            left.update(
                _ended_with_money(accounts, None).values_list("pk", "pocket__allocation__program")
            )
        EndedPocketLeft.objects.exclude(account_id__in=left).delete()
        EndedPocketLeft.objects.bulk_create(
            [EndedPocketLeft(account_id=pk, program_id=program) for pk, program in left.items()],
            batch_size=1000,
            ignore_conflicts=True,
        )
        mark.ended = mark.transfer
        mark.save(update_fields=["ended"])


def _fold_decisions(
    field: str, fold: Callable[[int, int], object], *, settle: timedelta, chunk: int
) -> int:
    """Folds the settled decisions after the watermark's `field` with `fold(lo, hi)`, `chunk`
    ids per transaction; returns how many ids."""
    folded = 0
    while True:
        with transaction.atomic():
            mark = RollupWatermark.objects.select_for_update().get(pk=1)
            lo = getattr(mark, field)
            hi = min(_settled(Decision, lo, "decided_at", settle), lo + chunk)
            if hi == lo:
                return folded
            fold(lo, hi)
            folded += hi - lo
            setattr(mark, field, hi)
            mark.folded_at = timezone.now()
            mark.save(update_fields=[field, "folded_at"])


# How long transfers_settled() waits for the writes in flight before it gives up.
SETTLED_WAIT = timedelta(seconds=10)


def transfers_settled(*, wait: timedelta = SETTLED_WAIT) -> int | None:
    """The last transfer id handed out so far, once every transaction that may hold one below
    it has ended (its rows committed or gone): what the caller wrote, and what was paid around
    it, can be folded at once instead of after SETTLE. None if a transaction writing to this
    database is still open after `wait` (the fold then keeps to SETTLE).

    On PostgreSQL: the sequence's last value, then the transactions of this database that have
    an id of their own (a writer), waited for. A transaction that holds a transfer id had its
    own id before it (every writer of the ledger locks its accounts, the wallet or the
    allocations before it inserts a transfer, and a row lock gives a transaction its id), so it
    is among those (pg_stat_activity shows a session's transaction id to its own role and to
    pg_read_all_stats: the platform writes as one role). The caller's own transaction is not
    waited for: what it wrote is folded in it. Elsewhere (SQLite) writers take the database in
    turn: the last id is settled."""
    if connection.vendor != "postgresql":
        return Transfer.objects.aggregate(last=Max("id"))["last"]
    sequence = "pg_get_serial_sequence('wallet_transfer', 'id')"
    writers = """
        SELECT pid, backend_xid::text FROM pg_stat_activity
        WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
    """
    deadline = time.monotonic() + wait.total_seconds()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_sequence_last_value({sequence})")
        last = cursor.fetchone()[0]
        # Read after the sequence: whoever holds an id up to `last` is a writer already.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(writers)
        open_ = set(cursor.fetchall())
        while open_:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.01)
            # pg_stat_activity is read once per transaction unless its snapshot is cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(writers)
            open_ &= set(cursor.fetchall())
    return last


def rollup_fold(
    *, settle: timedelta = SETTLE, chunk: int = CHUNK, through: int | None = None
) -> Folded:
    """Folds every settled transfer and decision after the watermark into the rollup, `chunk`
    ids per transaction, then records what ended aid keeps. The transfers up to `through`
    (transfers_settled()'s answer) are settled whatever their age. Safe to run concurrently:
    each transaction locks the watermark row, so two runs fold each id once."""
    RollupWatermark.objects.get_or_create(pk=1)
    folded = Folded()
    while True:
        with transaction.atomic():
            mark = RollupWatermark.objects.select_for_update().get(pk=1)
            settled = _settled(Transfer, mark.transfer, "created_at", settle)
            hi = min(max(settled, through or 0), mark.transfer + chunk)
            if hi == mark.transfer:
                break
            _add(ProgramFlow, flows_since(mark.transfer, hi), _FLOW_KEY, ["amount", "pending"])
            spending = spending_since(mark.transfer, hi)
            _add(ProgramSpending, spending, _SPENDING_KEY, ["captured", "refunded"])
            folded.transfers += hi - mark.transfer
            mark.transfer = hi
            mark.folded_at = timezone.now()
            mark.save(update_fields=["transfer", "folded_at"])
    folded.decisions = _fold_decisions(
        "decision",
        lambda lo, hi: _add(ProgramDecline, declines_since(lo, hi), _DECLINE_KEY, ["payments"]),
        settle=settle,
        chunk=chunk,
    )
    _fold_decisions(
        "refusal",
        lambda lo, hi: ProgramRefusal.objects.bulk_create(
            refusals_since(lo, hi), batch_size=1000, ignore_conflicts=True
        ),
        settle=settle,
        chunk=chunk,
    )
    _ended_list()
    mark = RollupWatermark.objects.get(pk=1)
    folded.transfer_watermark, folded.decision_watermark = mark.transfer, mark.decision
    return folded


# --- reading it -----------------------------------------------------------------------------------


@contextmanager
def one_snapshot() -> Iterator[None]:
    """The rollup, its watermark and the rows after it read at one instant, on the database
    the reads go to (the replica inside replica_reads()): a fold committing in between would
    otherwise count its rows twice, or not at all."""
    alias = router.db_for_read(ProgramFlow)
    connection = connections[alias]
    # Only the outermost transaction chooses its isolation; inside one (a test's), its own.
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=alias):
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def watermark() -> RollupWatermark:
    return RollupWatermark.objects.filter(pk=1).first() or RollupWatermark(pk=1)


def flows(
    programs: list[int], mark: RollupWatermark, *, before: date | None = None
) -> dict[FlowKey, list[int]]:
    """Every flow of the programs (before a day, if given): the rollup's and those after its
    watermark `mark`. Call inside one_snapshot(), with the watermark read there."""
    days = Q() if before is None else Q(day__lt=before)
    total: dict[FlowKey, list[int]] = defaultdict(lambda: [0, 0])
    for row in ProgramFlow.objects.filter(days, program__in=programs).values_list(
        "program", "day", "role", "kind", "amount", "pending"
    ):
        total[row[:4]][0] += row[4]
        total[row[:4]][1] += row[5]
    for key, (amount, pending) in flows_since(mark.transfer, programs=programs).items():
        if before is None or key[1] < before:
            total[key][0] += amount
            total[key][1] += pending
    return total


def spending(programs: list[int], *, start: date, end: date) -> dict[SpendingKey, list[int]]:
    """Captures and refunds of the days start..end (included), rollup and after it."""
    total: dict[SpendingKey, list[int]] = defaultdict(lambda: [0, 0])
    for row in ProgramSpending.objects.filter(
        program__in=programs, day__gte=start, day__lte=end
    ).values_list(*_SPENDING_KEY, "captured", "refunded"):
        total[row[:6]][0] += row[6]
        total[row[:6]][1] += row[7]
    for key, (captured, refunded) in spending_since(
        watermark().transfer, programs=programs
    ).items():
        if start <= key[1] <= end:
            total[key][0] += captured
            total[key][1] += refunded
    return total


def declines(programs: list[int], *, start: date, end: date) -> dict[DeclineKey, int]:
    total: dict[DeclineKey, int] = defaultdict(int)
    for program, day, reason, payments in ProgramDecline.objects.filter(
        program__in=programs, day__gte=start, day__lte=end
    ).values_list(*_DECLINE_KEY, "payments"):
        total[(program, day, reason)] += payments
    for key, payments in declines_since(watermark().decision, programs=programs).items():
        if start <= key[1] <= end:
            total[key] += payments
    return total


def refusals(programs: list[int], *, start: date, end: date) -> list[ProgramRefusal]:
    """The refusals of the days start..end (included), rollup and after its watermark. Call
    inside one_snapshot()."""
    folded = ProgramRefusal.objects.filter(program__in=programs, day__gte=start, day__lte=end)
    after = refusals_since(watermark().refusal, programs=programs)
    return [*folded, *(row for row in after if start <= row.day <= end)]


def ended(programs: list[int], mark: RollupWatermark) -> dict[int, int]:
    """{program: what its ended aid keeps beyond its holds}, exact to the moment: only a pocket
    that kept some at the last listing, or that the ledger moved since, can keep any now. Call
    inside one_snapshot()."""
    # The list lags the transfers' watermark while a fold runs, between its transfers and
    # its listing: the pockets moved since the list was made.
    since = mark.transfer if mark.ended is None else min(mark.ended, mark.transfer)
    listed = EndedPocketLeft.objects.filter(program__in=programs).values("account_id")
    left: dict[int, tuple[int, int]] = {}
    for accounts in [listed, *_moved_since(since)]:
        # Each apart, by its own index (ORed, the planner would read every account); a
        # pocket in two of them counted once.
        rows = (
            _ended_with_money(Q(pk__in=accounts), programs)
            .annotate(left=F("balance") - F("pending"))
            .values_list("pk", "pocket__allocation__program", "left")
        )
        left.update((pk, (program, amount)) for pk, program, amount in rows)
    totals: dict[int, int] = defaultdict(int)
    for program, amount in left.values():
        totals[program] += amount
    return dict(totals)
