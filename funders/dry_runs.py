"""Rule dry runs: what a change of a program's rules (or of one allocation's overrides) would
have done to the payments of a past window, before it is saved.

Each decision of the window that asked one of the program's pockets is decided again, in memory,
by the engine's pure core (engine.decide.decide) with the proposed rules for the program's
pockets and the rules in force today for the wallet's other pockets, on the balances and the
spending per period recorded in the decision's trace when it was taken
(wallet.authorize.pockets_snapshot). What flips is counted against what was decided then:
approved (fully or in part) to refused, and refused to approved, with their amounts, by shop,
category, commune and reason, the people affected and a sample of each kind.

A decision recorded before the trace kept its snapshot, or refused before any rule was read (a
frozen card or wallet), cannot flip: the first are counted as not replayable, the second are
left alone. A decision where only another funder's aid was asked is never read.
"""

import heapq
import logging
import multiprocessing
import multiprocessing.connection
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from typing import NamedTuple

import orjson
from django.db import connection, connections, transaction
from django.db.models import TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast, Mod
from django.utils import timezone

from core.money import MAX_AMOUNT
from engine import categories, geo
from engine.decide import Outcome, PocketState, ShopChecks, decide
from engine.periods import Usage
from engine.request import AuthorizationRequest, BasketLine, MerchantPlace
from engine.rules import (
    PocketRules,
    check_categories,
    check_merchant,
    check_zone,
    limits_capacity,
    merge_rules,
    schedule_allows,
)
from funders import tasks
from funders.models import Enrolment, Program, RuleDryRun
from wallet.models import Decision, Pocket

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 90
SAMPLE_SIZE = 10
PROGRESS_EVERY = 5_000
# Below this many decisions a second process costs more (its start, its connection) than it
# saves; above, one per core, up to MAX_PARTS.
PARALLEL_FROM = 100_000
MAX_PARTS = 4
APPROVED_TO_REFUSED = "approved_to_refused"
REFUSED_TO_APPROVED = "refused_to_approved"
KINDS = (APPROVED_TO_REFUSED, REFUSED_TO_APPROVED)


def rule_dry_run_start(
    *,
    program: Program,
    rules: dict,
    by,
    days: int = DEFAULT_WINDOW_DAYS,
    allocation=None,
    now: datetime | None = None,
) -> RuleDryRun:
    """Record a dry run of `rules` over the last `days` days and queue it. The rules must be
    valid (the form checked them with the engine)."""
    until = now or timezone.now()
    dry_run = RuleDryRun.objects.create(
        program=program,
        allocation=allocation,
        rules=rules,
        since=until - timedelta(days=days),
        until=until,
        created_by=by,
    )
    transaction.on_commit(lambda: tasks.rule_dry_run_execute.delay(dry_run.pk))
    return dry_run


def rule_dry_run_seen(*, dry_run: RuleDryRun) -> None:
    """Its author read the finished result: the form may now save these rules."""
    if dry_run.status == RuleDryRun.Status.DONE and dry_run.seen_at is None:
        dry_run.seen_at = timezone.now()
        dry_run.save(update_fields=["seen_at"])


def confirmable(
    *, program: Program, dry_run_id, rules: dict, user, allocation=None
) -> RuleDryRun | None:
    """The dry run a form may save `rules` on: finished, of this program's own rules (or of
    this allocation's overrides), of exactly these rules, run and seen by this user. None
    otherwise."""
    if not str(dry_run_id or "").isdigit():
        return None
    dry_run = RuleDryRun.objects.filter(
        pk=dry_run_id,
        program=program,
        allocation=allocation,
        created_by=user,
        status=RuleDryRun.Status.DONE,
        seen_at__isnull=False,
    ).first()
    # Compared as documents: the database's JSON comparison depends on the key order on SQLite.
    return dry_run if dry_run is not None and dry_run.rules == rules else None


def rule_dry_run_execute(*, dry_run: RuleDryRun) -> RuleDryRun:
    """Replay and store the result. Safe to run twice: a finished dry run is left as it is."""
    if dry_run.status == RuleDryRun.Status.DONE:
        return dry_run
    dry_run.status = RuleDryRun.Status.RUNNING
    dry_run.save(update_fields=["status"])

    def progress(processed: int, total: int) -> None:
        RuleDryRun.objects.filter(pk=dry_run.pk).update(processed=processed, total=total)

    try:
        result = replay(
            program=dry_run.program,
            rules=dry_run.rules,
            since=dry_run.since,
            until=dry_run.until,
            allocation=dry_run.allocation,
            progress=progress,
        )
    except Exception as error:  # the manager is told it failed; the details go to the logs
        logger.exception("rule dry run %s failed", dry_run.pk)
        dry_run.status = RuleDryRun.Status.FAILED
        dry_run.error = type(error).__name__
        dry_run.finished_at = timezone.now()
        dry_run.save(update_fields=["status", "error", "finished_at"])
        return dry_run
    dry_run.result = result
    dry_run.total = dry_run.processed = result["decisions"]
    dry_run.status = RuleDryRun.Status.DONE
    dry_run.finished_at = timezone.now()
    dry_run.save(update_fields=["result", "total", "processed", "status", "finished_at"])
    return dry_run


# --- the replay --------------------------------------------------------------------------------


class _Pocket(NamedTuple):
    """What the replay needs of a pocket a decision asked, loaded once per dry run: its name,
    its funder's name, its rules today or as proposed, and `kind`, the same number for every
    pocket whose rules (validity aside) are the same document, so that what depends on the
    rules and the shop only is worked out once per kind of pocket and shop."""

    name: str
    funder_name: str
    rules: PocketRules
    kind: int
    valid_from: datetime | None  # in UTC, as check_validity compares them
    valid_until: datetime | None
    caps: tuple[tuple[str, int], ...]  # for rules.limits_capacity


class _Place(NamedTuple):
    """A shop as decisions recorded it, with what the checks derive from it, once per shop."""

    place: MerchantPlace
    departement: str | None
    clock: tzinfo


class _Replayer:
    """Every pocket of the program's wallets with its rules compiled once, and the replay of one
    decision: `approved_amount`, the amount the engine's decide() answers, found without building
    its explanation (the fast path, used on every decision), and `outcome`, decide() itself on
    the same request and balances, for the decisions whose reason is wanted."""

    def __init__(self, program: Program, rules: dict, allocation) -> None:
        self.program = program
        self.rules = rules
        self.allocation_id = allocation.pk if allocation is not None else None
        self.pockets: dict[int, _Pocket] = {}
        self.places: dict[tuple, _Place] = {}
        # (kind, shop) -> the pocket's shop checks (categories, merchant lists, zone) pass.
        self.shop_checks: dict[tuple[int, int], bool] = {}
        self.verdicts: ShopChecks = {}  # decide()'s own, for the decisions decided in full

    def load(self, wallets) -> None:
        """Every pocket of these wallets (a queryset of wallet ids), in one query."""
        pockets = Pocket.objects.filter(wallet__in=wallets).select_related(
            "allocation__program__funder"
        )
        kinds: dict[bytes, int] = {}
        for pocket in pockets.iterator(chunk_size=2_000):
            allocation = pocket.allocation
            program_rules, overrides = allocation.program.rules, allocation.rules
            if self.allocation_id is None and allocation.program_id == self.program.pk:
                program_rules = self.rules
            elif allocation.pk == self.allocation_id:
                overrides = self.rules
            document = merge_rules(program_rules, overrides)
            kind = kinds.setdefault(orjson.dumps(document, option=orjson.OPT_SORT_KEYS), len(kinds))
            rules = PocketRules.from_dict(
                document, valid_from=allocation.valid_from, valid_until=allocation.valid_until
            )
            per_payment = rules.limits.per_payment
            self.pockets[pocket.pk] = _Pocket(
                name=allocation.program.name,
                funder_name=allocation.program.funder.name,
                rules=rules,
                kind=kind,
                valid_from=allocation.valid_from and allocation.valid_from.astimezone(UTC),
                valid_until=allocation.valid_until and allocation.valid_until.astimezone(UTC),
                caps=(
                    *((("per_payment", per_payment),) if per_payment is not None else ()),
                    *rules.limits.caps(),
                ),
            )

    def place(self, record: dict) -> _Place:
        key = tuple(record.values())
        place = self.places.get(key)
        if place is None:
            merchant = MerchantPlace(**record)
            departement = merchant.departement
            place = self.places[key] = _Place(
                merchant, departement, geo.local_time_zone(departement)
            )
        return place

    def _shop_passes(self, pocket: _Pocket, place: _Place) -> bool:
        key = (pocket.kind, id(place))
        passes = self.shop_checks.get(key)
        if passes is None:
            rules, merchant = pocket.rules, place.place
            passes = self.shop_checks[key] = (
                check_categories(rules.categories, merchant.mcc).eligible
                and check_merchant(rules.merchants, merchant).eligible
                and check_zone(rules.zone, merchant).eligible
            )
        return passes

    def approved_amount(self, record: dict, snapshots: list) -> int | None:
        """What decide() would approve (see outcome), None when a pocket asked is unknown.

        Without basket lines the split pays min(amount, sum of the eligible pockets' caps)
        whatever its order (each pocket takes what it can of what is left), and a pocket is
        eligible when every check of engine.decide.STAGES passes; with lines the split depends
        on the families, and decide() answers."""
        if record.get("lines"):
            outcome = self.outcome(record, snapshots)
            return None if outcome is None else outcome.approved_amount
        amount = record["amount"]
        currency = record["currency"]
        place = self.place(record["merchant"])
        at = datetime.fromisoformat(record["at"])
        instant = at.astimezone(UTC)
        local = None
        asked = False
        payable = 0
        for snapshot in snapshots:
            pocket = self.pockets.get(snapshot["pocket_id"])
            if pocket is None:
                return None
            if snapshot["currency"] != currency:
                continue
            asked = True
            if (pocket.valid_from is not None and instant < pocket.valid_from) or (
                pocket.valid_until is not None and instant >= pocket.valid_until
            ):
                continue
            schedule = pocket.rules.schedule
            if schedule is not None:
                local = local or at.astimezone(place.clock)
                if not schedule_allows(schedule, local, place.departement):
                    continue
            if not self._shop_passes(pocket, place):
                continue
            cap = max(snapshot["available"], 0)
            capacity = limits_capacity(pocket.caps, snapshot["usage"]) if pocket.caps else None
            if capacity is not None:
                if capacity <= 0:
                    continue
                cap = min(cap, capacity)
            payable += cap
        # Checked after the pockets, as outcome() does: a pocket unknown makes the decision
        # not replayable, whatever its amount.
        if not asked or amount <= 0 or amount > MAX_AMOUNT:
            return 0
        covered = min(amount, payable)
        if covered == amount:
            return amount
        return covered if record.get("partial_allowed", False) else 0

    def outcome(self, record: dict, snapshots: list) -> Outcome | None:
        """decide() on the recorded request and balances, None when a pocket is unknown."""
        states = []
        for snapshot in snapshots:
            pocket = self.pockets.get(snapshot["pocket_id"])
            if pocket is None:
                return None
            states.append(
                PocketState(
                    pocket_id=snapshot["pocket_id"],
                    name=pocket.name,
                    funder_name=pocket.funder_name,
                    rules=pocket.rules,
                    available=snapshot["available"],
                    currency=snapshot["currency"],
                    created_at=datetime.fromisoformat(snapshot["created_at"]),
                    usage=Usage(spent=snapshot["usage"]),
                )
            )
        request = AuthorizationRequest(
            amount=record["amount"],
            currency=record["currency"],
            merchant=self.place(record["merchant"]).place,
            at=datetime.fromisoformat(record["at"]),
            channel=record["channel"],
            partial_allowed=record.get("partial_allowed", False),
            lines=tuple(BasketLine(**line) for line in record.get("lines", ())),
        )
        return decide(request, states, shop_checks=self.verdicts)


def _scope(program: Program, allocation):
    """The pockets a dry run is about: the program's, or the one allocation's."""
    scope = Pocket.objects.filter(allocation__program=program.pk)
    if allocation is not None:
        scope = scope.filter(allocation=allocation.pk)
    return scope


def _window(since: datetime, until: datetime, wallets):
    return Decision.objects.filter(decided_at__gte=since, decided_at__lt=until, wallet__in=wallets)


def _rows(since: datetime, until: datetime, wallets, part: int = 0, parts: int = 1):
    """(id, wallet id, approved amount, reason, request, pockets' snapshot) of the window's
    decisions on these wallets (those of id = `part` modulo `parts`), the last two as JSON
    text, parsed by orjson, several times faster than the driver's json.loads. Only the
    trace's snapshot is read: the verdicts are most of its size, and the replay makes its own."""
    rows = _window(since, until, wallets)
    if parts > 1:
        rows = rows.alias(part=Mod("pk", parts)).filter(part=part)
    return (
        # In no order: sorting a million rows costs more than keeping the samples' smallest ids.
        rows.order_by().values_list(
            "pk",
            "wallet_id",
            "approved_amount",
            "reason",
            Cast("request", TextField()),
            Cast(KeyTransform("pockets", "trace"), TextField()),
        )
    )


def _stream(rows) -> Iterator[tuple]:
    """The rows, through COPY on PostgreSQL: one statement planned for all of them (a
    server-side cursor is planned for its first rows, an index walk over a million), parsed by
    the driver's C code."""
    if connection.vendor != "postgresql":
        yield from rows.iterator(chunk_size=5_000)
        return
    sql, params = rows.query.sql_with_params()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy,
    ):
        copy.set_types(["int8", "int8", "int8", "text", "text", "text"])
        yield from copy.rows()


def decisions_query(
    *, program: Program, since: datetime, until: datetime, allocation=None
) -> tuple[str, tuple]:
    """The SQL and parameters of what a dry run reads (the benchmark times it bare)."""
    wallets = _scope(program, allocation).values("wallet")
    return _rows(since, until, wallets).query.sql_with_params()


@cache
def _category(mcc: str) -> str:
    """The first named group the code belongs to, else the code itself."""
    return next((name for name, codes in categories.GROUPS.items() if mcc in codes), mcc)


class _Tally:
    def __init__(self) -> None:
        self.count = 0
        self.amount = 0
        self.wallets: set[int] = set()

    def add(self, amount: int, wallet_id: int) -> None:
        self.count += 1
        self.amount += amount
        self.wallets.add(wallet_id)

    def merge(self, other: "_Tally") -> None:
        self.count += other.count
        self.amount += other.amount
        self.wallets |= other.wallets

    def as_dict(self) -> dict:
        return {"count": self.count, "amount": self.amount, "people": len(self.wallets)}


def _tallies() -> defaultdict[tuple, _Tally]:
    return defaultdict(_Tally)


class _Counts:
    """What one pass over decisions found: the counters, the flips by kind and breakdown, and
    for each kind the SAMPLE_SIZE flips of smallest id (a heap of (-id, sample))."""

    def __init__(self) -> None:
        self.read = self.replayed = self.unreplayable = 0
        self.tallies = {kind: _Tally() for kind in KINDS}
        self.breakdowns: dict[str, defaultdict[str, defaultdict[tuple, _Tally]]] = {
            kind: defaultdict(_tallies) for kind in KINDS
        }
        self.samples: dict[str, list[tuple[int, tuple]]] = {kind: [] for kind in KINDS}

    def flip(self, kind: str, pk: int, wallet_id: int, amount: int, merchant: dict, why: str):
        self.tallies[kind].add(amount, wallet_id)
        by = self.breakdowns[kind]
        by["shop"][(merchant.get("merchant_id"), merchant["name"])].add(amount, wallet_id)
        by["category"][(_category(merchant["mcc"]),)].add(amount, wallet_id)
        commune = merchant.get("commune_code") or merchant.get("postcode") or ""
        by["commune"][(commune,)].add(amount, wallet_id)
        by["reason"][(why,)].add(amount, wallet_id)
        self._sample(kind, (-pk, (pk, wallet_id, amount, merchant["name"], why)))

    def _sample(self, kind: str, item: tuple[int, tuple]) -> None:
        samples = self.samples[kind]
        if len(samples) < SAMPLE_SIZE:
            heapq.heappush(samples, item)
        elif item[0] > samples[0][0]:
            heapq.heapreplace(samples, item)

    def merge(self, other: "_Counts") -> None:
        self.read += other.read
        self.replayed += other.replayed
        self.unreplayable += other.unreplayable
        for kind in KINDS:
            self.tallies[kind].merge(other.tallies[kind])
            for name, groups in other.breakdowns[kind].items():
                for key, tally in groups.items():
                    self.breakdowns[kind][name][key].merge(tally)
            for item in other.samples[kind]:
                self._sample(kind, item)

    def result(self, program: Program) -> dict:
        flips = {}
        for kind in KINDS:
            by = {
                name: sorted(
                    ([*key, *tally.as_dict().values()] for key, tally in groups.items()),
                    key=lambda line: (-line[-3], str(line[0])),
                )
                for name, groups in self.breakdowns[kind].items()
            }
            samples = [sample for _, sample in sorted(self.samples[kind], reverse=True)]
            flips[kind] = {
                **self.tallies[kind].as_dict(),
                "by": by,
                "samples": _with_file_numbers(program, samples),
            }
        people = (
            self.tallies[APPROVED_TO_REFUSED].wallets | self.tallies[REFUSED_TO_APPROVED].wallets
        )
        return {
            "decisions": self.read,
            "replayed": self.replayed,
            "not_replayable": self.unreplayable,
            "people": len(people),
            "flips": flips,
        }


def _replay_rows(
    replayer: _Replayer, rows, pocket_ids: set[int], done: Callable[[int], None]
) -> _Counts:
    """One pass of the replay over `rows`; `done(n)` is told of every PROGRESS_EVERY rows."""
    counts = _Counts()
    loads = orjson.loads
    for row_number, (pk, wallet_id, approved, reason, record, snapshots) in enumerate(rows, 1):
        if row_number % PROGRESS_EVERY == 0:
            done(PROGRESS_EVERY)
        if snapshots is None:  # recorded before decisions kept their snapshot
            counts.unreplayable += 1
            counts.read += 1
            continue
        snapshots = loads(snapshots)
        # Not asked: the program's aid was not yet valid or had ended, or nothing was (a
        # frozen card refused before any pocket was read, and no rule changes that).
        if not any(snapshot["pocket_id"] in pocket_ids for snapshot in snapshots):
            continue
        counts.read += 1
        record = loads(record)
        would_approve = replayer.approved_amount(record, snapshots)
        if would_approve is None:
            counts.unreplayable += 1
            continue
        counts.replayed += 1
        if (approved > 0) == (would_approve > 0):
            continue
        if approved > 0:
            # The reason of a refusal is the engine's whole explanation: decided in full, only
            # for the payments that flip this way.
            outcome = replayer.outcome(record, snapshots)
            assert outcome is not None  # its pockets were all known a moment ago
            kind, amount, why = APPROVED_TO_REFUSED, approved, outcome.reason or ""
        else:
            kind, amount, why = REFUSED_TO_APPROVED, would_approve, reason
        counts.flip(kind, pk, wallet_id, amount, record["merchant"], why)
    return counts


def _parts(total: int) -> int:
    """How many processes replay at once: one per core for a large window read from
    PostgreSQL outside a transaction (a process of its own cannot see a transaction's rows),
    else one."""
    if (
        total < PARALLEL_FROM
        or connection.vendor != "postgresql"
        or connection.in_atomic_block
        or multiprocessing.get_start_method(allow_none=True) not in (None, "fork")
    ):
        return 1
    return min(os.cpu_count() or 1, MAX_PARTS)


def replay(
    *,
    program: Program,
    rules: dict,
    since: datetime,
    until: datetime,
    allocation=None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Decide the window's decisions again with `rules`; the figures of what would flip (see the
    module's docstring). A large window is split by decision id between processes, each with
    its own connection, and their counts added up."""
    scope = _scope(program, allocation)
    pocket_ids = set(scope.values_list("pk", flat=True))
    wallets = scope.values("wallet")
    replayer = _Replayer(program, rules, allocation)
    replayer.load(wallets)
    total = _window(since, until, wallets).count()
    parts = _parts(total)
    if parts == 1:
        processed = 0

        def done(rows: int) -> None:
            nonlocal processed
            processed += rows
            if progress:
                progress(processed, total)

        counts = _replay_rows(replayer, _stream(_rows(since, until, wallets)), pocket_ids, done)
    else:
        counts = _replay_in_parts(
            replayer, since, until, wallets, pocket_ids, parts, total, progress
        )
    if progress:
        progress(total, total)
    return counts.result(program)


def _replay_in_parts(replayer, since, until, wallets, pocket_ids, parts, total, progress):
    """`parts` forked processes, each replaying the decisions of id = its number modulo
    `parts` on a connection of its own, sending back its counts; the progress they share is
    reported from here."""
    context = multiprocessing.get_context("fork")
    processed = context.Value("q", 0)

    def done(rows: int) -> None:
        with processed.get_lock():
            processed.value += rows

    def work(part: int, sender) -> None:
        # A connection the parent still held at the fork (one close_all() did not reach: after
        # a browser test's event loop, say) is the parent's socket: forgotten here, never used
        # nor closed (closing it ends the session the other parts would share), so that this
        # process opens its own.
        for alias_connection in connections.all(initialized_only=True):
            alias_connection.connection = None
        try:
            rows = _stream(_rows(since, until, wallets, part, parts))
            sender.send(("ok", _replay_rows(replayer, rows, pocket_ids, done)))
        except Exception as error:  # told to the parent, which fails the dry run
            sender.send(("error", f"{type(error).__name__}: {error}"))
        finally:
            connections.close_all()

    # The children must not share this process's connections: closed before the fork, each
    # side opens its own.
    connections.close_all()
    receivers, processes = [], []
    for part in range(parts):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=work, args=(part, sender), daemon=True)
        process.start()
        receivers.append(receiver)
        processes.append(process)
    counts = _Counts()
    try:
        waiting = list(receivers)
        while waiting:
            for receiver in multiprocessing.connection.wait(waiting, timeout=2):
                status, value = receiver.recv()
                if status != "ok":
                    raise RuntimeError(f"a part of the dry run failed: {value}")
                counts.merge(value)
                waiting.remove(receiver)
            if progress:
                progress(min(processed.value, total), total)
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    return counts


def _with_file_numbers(program: Program, samples: list[tuple]) -> list[dict]:
    """Each sample with the person's file number at the program's funder, the most its staff
    may see of them (the beneficiary's id leads to the page they may open)."""
    wallets = {sample[1] for sample in samples}
    enrolments = {
        enrolment.beneficiary.wallet.pk: enrolment
        for enrolment in Enrolment.objects.filter(
            funder=program.funder_id, beneficiary__wallet__in=wallets
        ).select_related("beneficiary__wallet")
    }
    return [
        {
            "decision": pk,
            "beneficiary": enrolments[wallet_id].beneficiary_id
            if wallet_id in enrolments
            else None,
            "file_number": enrolments[wallet_id].reference if wallet_id in enrolments else "",
            "amount": amount,
            "shop": shop,
            "reason": reason,
        }
        for pk, wallet_id, amount, shop, reason in samples
    ]
