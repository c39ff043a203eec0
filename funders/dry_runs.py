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

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import cache

from django.db import transaction
from django.utils import timezone

from engine import categories
from engine.decide import PocketState, decide
from engine.periods import Usage
from engine.request import AuthorizationRequest, MerchantPlace
from engine.rules import PocketRules, merge_rules
from funders import tasks
from funders.models import Enrolment, Program, RuleDryRun
from wallet.models import Decision, Pocket

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_DAYS = 90
SAMPLE_SIZE = 10
PROGRESS_EVERY = 5_000
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


def confirmable(*, program: Program, dry_run_id, rules: dict, user) -> RuleDryRun | None:
    """The dry run a form may save `rules` on: finished, of this program's own rules (not an
    allocation's), of exactly these rules, run and seen by this user. None otherwise."""
    if not str(dry_run_id or "").isdigit():
        return None
    dry_run = RuleDryRun.objects.filter(
        pk=dry_run_id,
        program=program,
        allocation=None,
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


class _Pockets:
    """What the replay needs of each pocket a decision asked, loaded once per pocket: its name,
    its funder's name, and its rules today or as proposed."""

    def __init__(self, program: Program, rules: dict, allocation) -> None:
        self.program = program
        self.rules = rules
        self.allocation_id = allocation.pk if allocation is not None else None
        self.cache: dict[int, tuple[str, str, PocketRules] | None] = {}

    def load(self, wallets) -> None:
        """Every pocket of these wallets (a queryset of wallet ids), in one query."""
        pockets = Pocket.objects.filter(wallet__in=wallets).select_related(
            "allocation__program__funder"
        )
        for pocket in pockets.iterator(chunk_size=2_000):
            allocation = pocket.allocation
            program_rules, overrides = allocation.program.rules, allocation.rules
            if self.allocation_id is None and allocation.program_id == self.program.pk:
                program_rules = self.rules
            elif allocation.pk == self.allocation_id:
                overrides = self.rules
            rules = PocketRules.from_dict(
                merge_rules(program_rules, overrides),
                valid_from=allocation.valid_from,
                valid_until=allocation.valid_until,
            )
            self.cache[pocket.pk] = (
                allocation.program.name,
                allocation.program.funder.name,
                rules,
            )


def _place(record: dict, places: dict) -> MerchantPlace:
    key = tuple(sorted((k, v) for k, v in record.items() if not isinstance(v, (dict, list))))
    place = places.get(key)
    if place is None:
        place = places[key] = MerchantPlace(**record)
    return place


def _request(record: dict, places: dict) -> AuthorizationRequest:
    return AuthorizationRequest(
        amount=record["amount"],
        currency=record["currency"],
        merchant=_place(record["merchant"], places),
        at=datetime.fromisoformat(record["at"]),
        channel=record["channel"],
        partial_allowed=record.get("partial_allowed", False),
    )


def _states(snapshots: list, pockets: _Pockets) -> list[PocketState] | None:
    states = []
    for snapshot in snapshots:
        known = pockets.cache.get(snapshot["pocket_id"])
        if known is None:
            return None
        name, funder_name, rules = known
        states.append(
            PocketState(
                pocket_id=snapshot["pocket_id"],
                name=name,
                funder_name=funder_name,
                rules=rules,
                available=snapshot["available"],
                currency=snapshot["currency"],
                created_at=datetime.fromisoformat(snapshot["created_at"]),
                usage=Usage(spent=snapshot["usage"]),
            )
        )
    return states


def _window(since: datetime, until: datetime, wallets):
    return Decision.objects.filter(decided_at__gte=since, decided_at__lt=until, wallet__in=wallets)


def _decisions(since: datetime, until: datetime, wallets):
    """(id, wallet id, approved amount, reason, request, pockets' snapshot) of the window's
    decisions on these wallets, streamed. Only the trace's snapshot is read: the verdicts are
    most of its size, and the replay makes its own."""
    rows = (
        _window(since, until, wallets)
        .order_by("pk")
        .values_list("pk", "wallet_id", "approved_amount", "reason", "request", "trace__pockets")
    )
    return rows.iterator(chunk_size=5_000)


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

    def as_dict(self) -> dict:
        return {"count": self.count, "amount": self.amount, "people": len(self.wallets)}


def replay(
    *,
    program: Program,
    rules: dict,
    since: datetime,
    until: datetime,
    allocation=None,
    progress: Callable[[int, int], None] | None = None,
    rows: Iterator | None = None,
) -> dict:
    """Decide the window's decisions again with `rules`; the figures of what would flip (see the
    module's docstring). `rows` replaces the database read (the benchmark's own stream)."""
    scope = Pocket.objects.filter(allocation__program=program.pk)
    if allocation is not None:
        scope = scope.filter(allocation=allocation.pk)
    pocket_ids = set(scope.values_list("pk", flat=True))
    wallets = scope.values("wallet")
    pockets = _Pockets(program, rules, allocation)
    pockets.load(wallets)
    total = _window(since, until, wallets).count() if progress else 0
    places: dict = {}
    tallies = {kind: _Tally() for kind in KINDS}
    breakdowns: dict[str, dict[str, dict[tuple, _Tally]]] = {
        kind: defaultdict(lambda: defaultdict(_Tally)) for kind in KINDS
    }
    samples: dict[str, list[tuple[int, int, int, str, str]]] = {kind: [] for kind in KINDS}
    replayed = unreplayable = read = 0
    stream = rows if rows is not None else _decisions(since, until, wallets)
    for row_number, (pk, wallet_id, approved, reason, record, snapshots) in enumerate(stream, 1):
        if progress and row_number % PROGRESS_EVERY == 0:
            progress(row_number, total)
        if snapshots is None:  # recorded before decisions kept their snapshot
            unreplayable += 1
            read += 1
            continue
        # Not asked: the program's aid was not yet valid or had ended, or nothing was (a
        # frozen card refused before any pocket was read, and no rule changes that).
        if not any(snapshot["pocket_id"] in pocket_ids for snapshot in snapshots):
            continue
        read += 1
        states = _states(snapshots, pockets)
        if states is None:
            unreplayable += 1
            continue
        request = _request(record, places)
        outcome = decide(request, states)
        replayed += 1
        was_approved = approved > 0
        if was_approved == (outcome.approved_amount > 0):
            continue
        kind = APPROVED_TO_REFUSED if was_approved else REFUSED_TO_APPROVED
        amount = approved if was_approved else outcome.approved_amount
        why = outcome.reason if was_approved else reason
        merchant = record["merchant"]
        tallies[kind].add(amount, wallet_id)
        by = breakdowns[kind]
        by["shop"][(merchant.get("merchant_id"), merchant["name"])].add(amount, wallet_id)
        by["category"][(_category(merchant["mcc"]),)].add(amount, wallet_id)
        by["commune"][(merchant.get("commune_code") or merchant.get("postcode") or "",)].add(
            amount, wallet_id
        )
        by["reason"][(why or "",)].add(amount, wallet_id)
        if len(samples[kind]) < SAMPLE_SIZE:
            samples[kind].append((pk, wallet_id, amount, merchant["name"], why or ""))
    if progress:
        progress(total, total)
    return {
        "decisions": read,
        "replayed": replayed,
        "not_replayable": unreplayable,
        "people": len(tallies[APPROVED_TO_REFUSED].wallets | tallies[REFUSED_TO_APPROVED].wallets),
        "flips": {
            kind: {
                **tallies[kind].as_dict(),
                "by": {
                    name: sorted(
                        ([*key, *tally.as_dict().values()] for key, tally in groups.items()),
                        key=lambda line: (-line[-3], str(line[0])),
                    )
                    for name, groups in breakdowns[kind].items()
                },
                "samples": _with_file_numbers(program, samples[kind]),
            }
            for kind in KINDS
        },
    }


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
