"""Benchmark: the platform at a million beneficiaries, on PostgreSQL.

Builds, with bulk SQL run by the server itself (INSERT ... SELECT over generate_series: nothing
goes through Python or the wire row by row), `--scale` x 1,000,000 beneficiaries with a wallet,
a card, an enrolment and an eligibility profile each, three pockets each (3,000,000 allocations
with their ledger accounts and ALLOCATE transfers) and ten past payments each (10,000,000
decisions, each with its hold, its decision hold and, for nine in ten, its capture or void with
the capture's entries); the running balances and the pockets' spending per period are made
from the same work table of payments, so `ledger verify` holds. The funder, its three programs
(funded through the services) and the merchants are made through the services first.

Then it times, each figure beside its target, every SQL statement of the measured work captured
and its plan checked with EXPLAIN (a sequential scan on a hot table is named; it fails the run
where the work is meant to read few rows, it is expected where the work reads every row):

- authorizations in-process on 10,000 wallets and on every wallet (p99 ratio, target <= 1.2x);
- a funder's dashboard, a program's dashboard and each export of a program (< 2 s each);
- a campaign over every person (< 3 min at a million);
- `ledger verify` and the reconciliation (< 10 min each at a million);
- the allocation expiry sweep over the third program's pockets, all due (< 15 min at a million);

and ends with `manage.py ledger verify` and, measured in the same run, the machine's limit for
one authorization (pgbench, bench/limit/) beside the authorization figure.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_scale \\
        .venv/bin/python -m bench.scale [--scale 1.0]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if the ledger does not verify or does not reconcile; a plan that scans a
hot table where it should not, and a target missed, are printed in the summary.
"""

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench import harness
from bench.authorize import PROGRAMS, merchants_build

MILLION = 1_000_000
POCKETS_PER_PERSON = len(PROGRAMS)  # 3
DECISIONS_PER_PERSON = 10
ALLOCATION_AMOUNT = 10_000  # cents, each pocket
PAYMENT_MIN, PAYMENT_SPREAD = 100, 400  # cents: a past payment is 1.00 to 4.99
# The tables a request or a report reads by key: a sequential scan of one of them grows with
# the number of people.
HOT_TABLES = {
    "wallet_account",
    "wallet_transfer",
    "wallet_entry",
    "wallet_decision",
    "wallet_decisionhold",
    "wallet_pocket",
    "wallet_wallet",
    "wallet_beneficiary",
    "wallet_card",
    "funders_allocation",
    "funders_enrolment",
    "funders_beneficiaryprofile",
    "funders_proposal",
}
# What --only can choose, in the order they are measured.
FIGURE_GROUPS = ("authorizations", "dashboards", "sweep", "ledger", "campaign", "exports")
# At most this many distinct statements of one measurement are explained.
EXPLAINED_PER_FIGURE = 40


# --- the build ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offsets:
    """The largest id of each table before the bulk rows: row n of a kind gets offset + n, so
    every row can name the others by arithmetic, without a lookup."""

    beneficiary: int
    wallet: int
    card: int
    enrolment: int
    profile: int
    account: int
    allocation: int
    pocket: int
    transfer: int
    entry: int
    decision: int
    decision_hold: int


BULK_TABLES = {
    "beneficiary": "wallet_beneficiary",
    "wallet": "wallet_wallet",
    "card": "wallet_card",
    "enrolment": "funders_enrolment",
    "profile": "funders_beneficiaryprofile",
    "account": "wallet_account",
    "allocation": "funders_allocation",
    "pocket": "wallet_pocket",
    "transfer": "wallet_transfer",
    "entry": "wallet_entry",
    "decision": "wallet_decision",
    "decision_hold": "wallet_decisionhold",
}


# Every table the bulk steps write: those above, and the pockets' spending per period, made
# from the payments' work table.
FILLED_TABLES = [*BULK_TABLES.values(), "ledger_spending"]


Lane = list[tuple[str, str]]  # (label, statement), run one after the other


def _offsets(cursor) -> Offsets:
    values = {}
    for name, table in BULK_TABLES.items():
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
        values[name] = cursor.fetchone()[0]
    return Offsets(**values)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def bulk_sql(*, people: int, o: Offsets, funder: int, programs: list[int], floats: list[int],
             merchants: list[tuple[int, int, str, str]]) -> list[list[Lane]]:  # fmt: skip
    """The steps of the build, in order, each as lanes of (label, statement) that run at the
    same time on connections of their own (no lane reads what another of its step writes; the
    foreign keys' triggers are off). Person i (1..people) has wallet, card, enrolment and
    profile offset + i; pocket n = 3(i-1) + p (p = 1..3, program p) has its account, allocation,
    pocket and ALLOCATE transfer at offset + n, the transfer's entries at 2n-1 and 2n; decision
    j = 10(i-1) + k (k = 1..10) takes pocket p = (k-1) mod 3 + 1 and has its hold transfer at
    transfer offset + 3·people + j and its resolution at transfer offset + 13·people + j: k <= 8
    captured in full (entries at entry offset + 6·people + 2j-1, 2j), k = 9 voided, k = 10 still
    held (decided in the last three days). The third program's allocations are all due to
    expire."""
    from ledger.spending import SPENDING, spending_from

    s = people
    pockets = POCKETS_PER_PERSON * s
    decisions = DECISIONS_PER_PERSON * s
    amount = ALLOCATION_AMOUNT
    program_case = "CASE p " + " ".join(
        f"WHEN {n} THEN {pk}" for n, pk in enumerate(programs, 1)
    ) + " END"  # fmt: skip
    float_case = "CASE p " + " ".join(
        f"WHEN {n} THEN {pk}" for n, pk in enumerate(floats, 1)
    ) + " END"  # fmt: skip
    merchant_rows = ", ".join(
        f"({n}, {pk}, {account}, {_literal(name)}, {_literal(mcc)})"
        for n, (pk, account, name, mcc) in enumerate(merchants)
    )
    # Each payment's hold as the ledger's scan of the holds sees it (ledger/spending.py).
    nets = f"""
        SELECT {o.account} + n AS account_id, at AS created_at,
            CASE WHEN k = 9 THEN 0 ELSE amount END AS net
        FROM scale_payment"""
    statements = dict([
        (
            "payments (work table)",
            f"""
            CREATE UNLOGGED TABLE scale_payment AS
            SELECT j, i, k, 3 * (i - 1) + (k - 1) % 3 + 1 AS n,
                {PAYMENT_MIN} + (j::bigint * 7919) % {PAYMENT_SPREAD} AS amount,
                CASE WHEN k = 10 THEN now() - (i % 72) * interval '1 hour'
                     ELSE now() - ((j * 37) % 365) * interval '1 day'
                          - (j % 86400) * interval '1 second' - interval '3 days' END AS at,
                j % {len(merchants)} AS m
            FROM generate_series(1, {s}) i, generate_series(1, {DECISIONS_PER_PERSON}) k,
                LATERAL (SELECT 10 * (i - 1) + k AS j) x""",
        ),
        (
            "pocket accounts",
            f"""
            INSERT INTO wallet_account (id, code, name, kind, currency, guarded, balance,
                pending, created_at)
            SELECT {o.account} + n, 'pocket:scale' || n, 'Pocket ' || n, 'pocket', 'EUR', true,
                {amount} - coalesce(spent.captured, 0), coalesce(spent.held, 0), now()
            FROM generate_series(1, {pockets}) n LEFT JOIN (
                SELECT n, sum(amount) FILTER (WHERE k <= 8) AS captured,
                       sum(amount) FILTER (WHERE k = 10) AS held
                FROM scale_payment GROUP BY n) spent USING (n)""",
        ),
        (
            "beneficiaries",
            f"""
            INSERT INTO wallet_beneficiary (id, first_name, last_name, email, phone, postcode,
                preferred_language, created_at, erasure_reason)
            SELECT {o.beneficiary} + i, 'Camille', 'Scale' || i, '', '',
                (ARRAY['38000','38100','73000','69001','26000','05000'])[i % 6 + 1], 'fr',
                now(), ''
            FROM generate_series(1, {s}) i""",
        ),
        (
            "wallets",
            f"""
            INSERT INTO wallet_wallet (id, is_frozen, frozen_reason, created_at, beneficiary_id)
            SELECT {o.wallet} + i, false, '', now(), {o.beneficiary} + i
            FROM generate_series(1, {s}) i""",
        ),
        (
            "cards",
            f"""
            INSERT INTO wallet_card (id, reference, kind, status, last4, stripe_cardholder_id,
                created_at, wallet_id)
            SELECT {o.card} + i, 'card_scale_' || i, 'virtual', 'active',
                lpad((i % 10000)::text, 4, '0'), '', now(), {o.wallet} + i
            FROM generate_series(1, {s}) i""",
        ),
        (
            "enrolments",
            f"""
            INSERT INTO funders_enrolment (id, reference, created_at, beneficiary_id, funder_id)
            SELECT {o.enrolment} + i, 'S' || i, now(), {o.beneficiary} + i, {funder}
            FROM generate_series(1, {s}) i""",
        ),
        (
            "profiles",
            f"""
            INSERT INTO funders_beneficiaryprofile (id, postcode, commune, birth_date,
                household_size, dependent_children, income_bracket, attributes, legal_basis,
                updated_at, enrolment_id)
            SELECT {o.profile} + i, '', '', date '1930-01-01' + ((i::bigint * 7919) % 33000)::int,
                i % 6 + 1, (i / 7) % (i % 6 + 1), i % 10 + 1, '{{}}', 'public_task', now(),
                {o.enrolment} + i
            FROM generate_series(1, {s}) i""",
        ),
        (
            "allocations",
            f"""
            INSERT INTO funders_allocation (id, amount, currency, valid_from, valid_until, rules,
                status, idempotency_key, fingerprint, created_at, end_reason, beneficiary_id,
                program_id)
            SELECT {o.allocation} + n, {amount}, 'EUR', now() - interval '400 days',
                CASE WHEN p = 3 THEN now() - interval '1 hour' ELSE now() + interval '90 days'
                END, '{{}}', 'active', 'scale:' || n, '', now() - interval '400 days', '',
                {o.beneficiary} + (n - 1) / 3 + 1, {program_case}
            FROM generate_series(1, {pockets}) n, LATERAL (SELECT (n - 1) % 3 + 1 AS p) x""",
        ),
        (
            "pockets",
            f"""
            INSERT INTO wallet_pocket (id, created_at, account_id, allocation_id, wallet_id)
            SELECT {o.pocket} + n, now(), {o.account} + n, {o.allocation} + n,
                {o.wallet} + (n - 1) / 3 + 1
            FROM generate_series(1, {pockets}) n""",
        ),
        (
            "allocate transfers",
            f"""
            INSERT INTO wallet_transfer (id, kind, currency, amount, idempotency_key,
                fingerprint, is_pending, metadata, created_at)
            SELECT {o.transfer} + n, 'allocate', 'EUR', {amount}, 'allocate:scale:' || n, '',
                false, jsonb_build_object('allocation', {o.allocation} + n),
                now() - interval '400 days'
            FROM generate_series(1, {pockets}) n""",
        ),
        (
            "allocate entries",
            f"""
            INSERT INTO wallet_entry (id, amount, account_id, transfer_id)
            SELECT {o.entry} + 2 * n - 1 + side, CASE side WHEN 0 THEN -{amount} ELSE {amount}
                END, CASE side WHEN 0 THEN {float_case} ELSE {o.account} + n END,
                {o.transfer} + n
            FROM generate_series(1, {pockets}) n, LATERAL (SELECT (n - 1) % 3 + 1 AS p) x,
                generate_series(0, 1) side""",
        ),
        (
            "floats",
            f"""
            UPDATE wallet_account SET balance = balance - {amount * s}
            WHERE id IN ({", ".join(map(str, floats))})""",
        ),
        (
            "decisions",
            f"""
            WITH merchant (m, id, account, name, mcc) AS (VALUES {merchant_rows}),
            -- JSON built per row was most of the decisions' time (22 µs a row): a payment's
            -- request is one of a few thousand (merchant, amount), built once each, and its
            -- trace is read from text, a third cheaper than built (same jsonb values).
            request AS (
                SELECT m, amount, jsonb_build_object('amount', amount, 'currency', 'EUR',
                    'merchant', jsonb_build_object('id', id, 'name', name, 'mcc', mcc)) AS json
                FROM merchant,
                    generate_series({PAYMENT_MIN}, {PAYMENT_MIN + PAYMENT_SPREAD - 1}) amount)
            INSERT INTO wallet_decision (id, reference, idempotency_key, fingerprint, channel,
                amount, currency, status, approved_amount, reason, reason_pocket, details,
                request, trace, decided_at, duration_us, merchant_id, wallet_id,
                merchant_reference, metadata, livemode)
            SELECT {o.decision} + j, 'auth_scale_' || j, 'scale:' || j, '', 'api', amount, 'EUR',
                'approved', amount, '', '', '{{}}', request.json,
                ('{{"split": [{{"amount": ' || amount || ', "pocket_id": ' || {o.pocket} + n
                 || '}}], "verdicts": [{{"reason": "", "eligible": true, "pocket_id": '
                 || {o.pocket} + n || '}}]}}')::jsonb,
                at, 1000, merchant.id, {o.wallet} + i, '', '{{}}', true
            FROM scale_payment JOIN merchant USING (m) JOIN request USING (m, amount)""",
        ),
        (
            "holds",
            f"""
            WITH merchant (m, id, account, name, mcc) AS (VALUES {merchant_rows})
            INSERT INTO wallet_transfer (id, kind, currency, amount, fingerprint, is_pending,
                debit_account_id, credit_account_id, expires_at, metadata, created_at)
            SELECT {o.transfer} + {pockets} + j, 'hold', 'EUR', amount, '', true,
                {o.account} + n, merchant.account, at + interval '7 days', '{{}}', at
            FROM scale_payment JOIN merchant USING (m)""",
        ),
        (
            "decision holds",
            f"""
            INSERT INTO wallet_decisionhold (id, amount, decision_id, hold_id, pocket_id)
            SELECT {o.decision_hold} + j, amount, {o.decision} + j,
                {o.transfer} + {pockets} + j, {o.pocket} + n
            FROM scale_payment""",
        ),
        (
            "captures and voids",
            f"""
            INSERT INTO wallet_transfer (id, kind, currency, amount, fingerprint, is_pending,
                pending_transfer_id, metadata, created_at)
            SELECT {o.transfer} + {pockets + decisions} + j,
                CASE WHEN k = 9 THEN 'void' ELSE 'capture' END, 'EUR', amount, '', false,
                {o.transfer} + {pockets} + j, '{{}}', at + interval '1 hour'
            FROM scale_payment WHERE k <= 9""",
        ),
        (
            "capture entries",
            f"""
            WITH merchant (m, id, account, name, mcc) AS (VALUES {merchant_rows})
            INSERT INTO wallet_entry (id, amount, account_id, transfer_id)
            SELECT {o.entry} + {2 * pockets} + 2 * j - 1 + side,
                CASE side WHEN 0 THEN -amount ELSE amount END,
                CASE side WHEN 0 THEN {o.account} + n ELSE merchant.account END,
                {o.transfer} + {pockets + decisions} + j
            FROM scale_payment JOIN merchant USING (m), generate_series(0, 1) side
            WHERE k <= 8""",
        ),
        (
            "spending",
            # The pockets' spending per Paris day, month and year, which the ledger's services
            # keep as they write holds: each payment's hold nets its amount unless voided (no
            # refunds here), grouped by the ledger's own text. Straight from the work table, not
            # read back from the 20 million transfers afterwards (317 s at a million).
            f"INSERT INTO {SPENDING} (account_id, grain, start, net) {spending_from(nets)}",
        ),
        ("work table dropped", "DROP TABLE scale_payment"),
        *[
            (
                f"{table} sequence",
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))",
            )
            for table in FILLED_TABLES
        ],
    ])  # fmt: skip

    def lane(*labels: str) -> Lane:
        return [(label, statements[label]) for label in labels]

    # Two lanes for the two cores, balanced by what each took at a million: the decisions'
    # JSON beside the holds and their resolutions. The pockets' balances are summed from the
    # payments as their accounts are written, rather than updated afterwards (which rewrote
    # 3,000,000 rows: 309 s at a million).
    return [
        [
            lane(
                "beneficiaries",
                "wallets",
                "cards",
                "enrolments",
                "profiles",
                "allocations",
                "pockets",
            ),
            lane(
                "payments (work table)",
                "pocket accounts",
                "allocate transfers",
                "allocate entries",
                "floats",
            ),
        ],
        [
            lane("decisions", "decision holds"),
            lane("holds", "captures and voids", "capture entries", "spending"),
        ],
        [lane("work table dropped", *(f"{table} sequence" for table in FILLED_TABLES))],
    ]


def _secondary_indexes_dropped(cursor, tables: list[str]) -> list[tuple[str, str, str]]:
    """Drops the indexes of `tables` but their primary keys and those a foreign key relies
    on, and returns how to make each again, as (table, name, statement): one sorted build per
    index after the rows are in costs a fraction of maintaining it row by row (the build spent
    two thirds of its time in index upkeep at a hundredth of the size)."""
    cursor.execute(
        """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c
        WHERE c.contype = 'u' AND c.conrelid::regclass::text = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint f
                          WHERE f.contype = 'f' AND f.conindid = c.conindid)""",
        [tables],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text,
            pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid::regclass::text = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        [tables],
    )
    indexes = cursor.fetchall()
    restore = []
    for table, name, definition in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        restore.append((table, name, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    for table, name, definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
        restore.append((table, name, definition))
    return restore


def _balanced(work: list[tuple[str, str]], weight: dict[str, int], lanes: int = 2) -> list[Lane]:
    """(label, statement) pairs shared among `lanes` lanes, the heaviest first, each to the
    lane with the least weight so far; a statement weighs `weight[label]` (the bytes of the
    table it reads)."""
    shared: list[Lane] = [[] for _ in range(lanes)]
    loads = [0] * lanes
    for label, sql in sorted(work, key=lambda item: -weight[item[0]]):
        lightest = loads.index(min(loads))
        shared[lightest].append((label, sql))
        loads[lightest] += weight[label]
    return [lane for lane in shared if lane]


def _lanes_run(lanes: list[Lane], settings: list[str]) -> None:
    """Each lane on a connection of its own (Django gives each thread one), with `settings`,
    its statements one after the other; the lanes at the same time."""

    def run_lane(lane: Lane) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                for setting in settings:
                    cursor.execute(setting)
                for label, sql in lane:
                    t0 = time.perf_counter()
                    cursor.execute(sql)
                    if label.endswith("sequence"):
                        continue
                    rows = f" {cursor.rowcount:,} rows" if cursor.rowcount >= 0 else ""
                    print(f"  {label}:{rows} in {time.perf_counter() - t0:.1f} s")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        for done in [pool.submit(run_lane, lane) for lane in lanes]:
            done.result()


def _table_bytes(cursor) -> dict[str, int]:
    cursor.execute(
        """
        SELECT c.oid::regclass::text, pg_relation_size(c.oid) FROM pg_class c
        WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"""
    )
    return dict(cursor.fetchall())


def build(people: int, seed: int) -> dict:
    """The funder, its programs and the merchants through the services; everything else in
    bulk. Returns what the measurements need."""
    from django.db import connection

    from bench import scenario

    started = time.perf_counter()
    programs = scenario.funder_with_programs(rules_by_name=PROGRAMS)
    funder = programs[0].funder
    merchants = merchants_build()
    print(f"set-up through the services: {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        steps = bulk_sql(
            people=people,
            o=_offsets(cursor),
            funder=funder.pk,
            programs=[program.pk for program in programs],
            floats=[program.float_account_id for program in programs],
            merchants=[(m.pk, m.payable_account_id, m.trade_name, m.mcc) for m in merchants],
        )
        bulk_started = time.perf_counter()
        dropped = _secondary_indexes_dropped(cursor, FILLED_TABLES)
    # What every lane's connection runs first: the foreign keys' triggers skipped
    # (PostgreSQL's bulk-load mode, for a superuser: every reference is made by arithmetic on
    # ids written in the same run, and `ledger verify` checks the money afterwards), and a sort
    # in memory per index (the server's default, 64 MB, spills every one to disk). Not more
    # work_mem for the spending's grouping: at 512 MB it took more processor than spilled at
    # the default 4 MB (75.4 s against 58.3 s at a million).
    bulk_mode = [
        "SET synchronous_commit = off",
        "SET session_replication_role = replica",
        "SET maintenance_work_mem = '1GB'",
    ]
    for number, step in enumerate(steps, 1):
        t0 = time.perf_counter()
        _lanes_run(step, bulk_mode)
        print(f"  step {number} ({len(step)} lanes): {time.perf_counter() - t0:.1f} s")
    with connection.cursor() as cursor:
        sizes = _table_bytes(cursor)
    t0 = time.perf_counter()
    _lanes_run(
        _balanced(
            [(name, sql) for _table, name, sql in dropped],
            {name: sizes[table] for table, name, _sql in dropped},
        ),
        bulk_mode,
    )
    print(f"  {len(dropped)} indexes built again: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    # VACUUM sets the visibility map the index-only scans need, ANALYZE the planner's
    # statistics; table by table, so that both lanes work.
    _lanes_run(_balanced([(t, f"VACUUM (ANALYZE) {t}") for t in sizes], sizes), [])
    print(f"  VACUUM ANALYZE: {time.perf_counter() - t0:.1f} s")
    built = time.perf_counter() - bulk_started
    print(
        f"built {people:,} people, {POCKETS_PER_PERSON * people:,} pockets, "
        f"{DECISIONS_PER_PERSON * people:,} decisions in {built:.1f} s of bulk SQL "
        f"(target at a million: < 1,200 s)"
    )
    return {"funder": funder, "programs": programs, "merchants": merchants, "seed": seed}


def already_built(seed: int) -> dict:
    """What `build` returned, read back from the database a `--phase build` run left."""
    from funders.models import Funder, Program
    from merchants.models import Merchant
    from wallet.models import Beneficiary

    funder = Funder.objects.get()
    programs = list(Program.objects.filter(funder=funder).order_by("pk")[:POCKETS_PER_PERSON])
    merchants = list(Merchant.objects.order_by("pk"))
    people = Beneficiary.objects.filter(last_name__startswith="Scale").count()
    return {"funder": funder, "programs": programs, "merchants": merchants, "seed": seed,
            "people": people}  # fmt: skip


# --- the plans ------------------------------------------------------------------------------------


@dataclass
class Plans:
    """The SELECT statements run while a figure was measured (the first of each text)."""

    statements: dict[str, tuple] = field(default_factory=dict)

    def __call__(self, execute, sql, params, many, context):
        if not many and sql.lstrip().upper().startswith("SELECT"):
            self.statements.setdefault(sql, params)
        return execute(sql, params, many, context)

    def seq_scans(self) -> tuple[int, set[str]]:
        """(statements explained, hot tables some plan scans sequentially)."""
        from django.db import connection, transaction

        found: set[str] = set()
        explained = 0
        with transaction.atomic(), connection.cursor() as cursor:
            # With sequential scans priced out, a plan keeps one only where no index serves
            # the query: whatever the size the run was built at, a small table included.
            cursor.execute("SET LOCAL enable_seqscan = off")
            for sql, params in list(self.statements.items())[:EXPLAINED_PER_FIGURE]:
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                found |= {t for t in _scanned(plan[0]["Plan"]) if t in HOT_TABLES}
                explained += 1
        return explained, found


def _scanned(node: dict):
    if node.get("Node Type") == "Seq Scan":
        yield node.get("Relation Name", "")
    for child in node.get("Plans", []):
        yield from _scanned(child)


@dataclass
class Figure:
    label: str
    seconds: float
    target: float | None  # seconds, at the size measured
    reads_everything: bool  # a sequential scan is the right plan
    explained: int = 0
    scans: set[str] = field(default_factory=set)
    # Processor seconds of this process and of its PostgreSQL server process: on a shared
    # machine the figures to compare two runs by (wall time is the share the work got).
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def plan_ok(self) -> bool:
        return self.reads_everything or not self.scans

    def __str__(self) -> str:
        target = "" if self.target is None else f" (target < {self.target:g} s)"
        if self.scans:
            plan = f"sequential scan of {', '.join(sorted(self.scans))}"
            plan += " (expected: reads every row)" if self.reads_everything else " (FAILS)"
        else:
            plan = "no sequential scan of a hot table"
        return (
            f"{self.label}: {self.seconds:.2f} s{target}; processor {self.client_cpu:.2f} s "
            f"here + {self.server_cpu:.2f} s in PostgreSQL; plan: {self.explained} queries, {plan}"
        )


def measure(label: str, work: Callable, *, target: float | None, reads_everything: bool = False):
    from django.db import connection

    plans = Plans()
    server0, client0 = harness.backend_cpu_seconds(), time.process_time()
    pid = connection.connection.info.backend_pid
    with connection.execute_wrapper(plans):
        t0 = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - t0
    figure = Figure(label, seconds, target, reads_everything)
    figure.client_cpu = time.process_time() - client0
    same = connection.connection is not None and connection.connection.info.backend_pid == pid
    # A work that opened another connection ran on another server process: not counted.
    figure.server_cpu = harness.backend_cpu_seconds() - server0 if same else float("nan")
    figure.explained, figure.scans = plans.seq_scans()
    print(figure)
    return figure, result


# --- the measurements -----------------------------------------------------------------------------


def authorization_latencies(wallet_ids: list[int], merchants, count: int, rng) -> list[float]:
    from django.utils import timezone

    from engine.request import AuthorizationRequest
    from merchants.payments import merchant_place
    from wallet.authorize import authorize
    from wallet.models import Wallet

    places = {merchant.pk: merchant_place(merchant) for merchant in merchants}
    latencies = []
    for n in range(count):
        merchant = rng.choice(merchants)
        wallet = Wallet.objects.get(pk=rng.choice(wallet_ids))
        request = AuthorizationRequest(
            amount=rng.randrange(100, 3_000),
            currency="EUR",
            merchant=places[merchant.pk],
            at=timezone.now(),
            channel="api",
            partial_allowed=False,
        )
        t0 = time.perf_counter()
        authorize(
            request=request,
            wallet=wallet,
            credit_account=merchant.payable_account,
            merchant_id=merchant.pk,
            idempotency_key=f"scale-bench-{rng.random()}-{n}",
        )
        latencies.append(time.perf_counter() - t0)
    return latencies


def authorizations(built: dict, people: int, count: int) -> tuple[list[Figure], float, float]:
    from wallet.models import Wallet

    rng = random.Random(built["seed"])
    first = Wallet.objects.order_by("pk").values_list("pk", flat=True)[:1][0]
    last = Wallet.objects.order_by("-pk").values_list("pk", flat=True)[:1][0]
    everyone = list(range(first, last + 1))
    few = everyone[: min(10_000, len(everyone))]
    figures = []
    p99s = []
    p50s = []
    for label, ids in (("10,000 wallets", few), (f"all {len(everyone):,} wallets", everyone)):
        figure, latencies = measure(
            f"authorization, {count} on {label}",
            lambda ids=ids: authorization_latencies(ids, built["merchants"], count, rng),
            target=None,
        )
        p50, p99, worst = harness.percentiles(latencies)
        print(f"  p50 {harness.ms(p50)}, p99 {harness.ms(p99)}, max {harness.ms(worst)}")
        figures.append(figure)
        p99s.append(p99)
        p50s.append(p50)
    print(
        f"authorization p99 on all wallets / on 10,000: {p99s[1] / p99s[0]:.2f}x (target <= 1.2x)"
    )
    return figures, p99s[1] / p99s[0], statistics.median(p50s)


def rollup(label: str, *, settle: bool) -> Figure:
    """The dashboards' rollup task (funders/rollups.py); `settle` False folds everything,
    the payments of the last minutes included."""
    from datetime import timedelta

    from funders import rollups

    kwargs = {} if settle else {"settle": timedelta(0)}
    figure, folded = measure(label, lambda: rollups.rollup_fold(**kwargs), target=None)
    print(
        f"  folded {folded.transfers:,} transfer ids and {folded.decisions:,} decision ids "
        f"(watermarks {folded.transfer_watermark:,}, {folded.decision_watermark:,})"
    )
    return figure


def dashboards(built: dict, when: str) -> list[Figure]:
    from funders import reports

    programs = built["programs"]
    program = programs[0]
    period = reports.Period.default(today=time_today())

    def funder_dashboard():
        figures = reports.program_figures(programs=programs)
        return reports.figures_by_currency(figures.values())

    def program_dashboard():
        reports.program_figures(programs=[program])
        reports.spending_over_time(program=program, period=period)
        reports.spending_by_category(program=program, period=period)
        reports.spending_by_merchant(program=program, period=period)
        reports.spending_by_departement(program=program, period=period)
        reports.declines_by_reason(program=program, period=period)

    return [
        measure(f"funder dashboard ({when})", funder_dashboard, target=2.0)[0],
        measure(f"program dashboard, default period ({when})", program_dashboard, target=2.0)[0],
    ]


def exports_built(built: dict, kinds: list[str]) -> list[Figure]:
    """Each export as its task builds it into the file storage (the page only asks for it);
    the payments of one day besides those of the default period, which grow with it."""
    from datetime import timedelta

    from backoffice import exports
    from funders import reports
    from funders.models import ProgramExport

    program = built["programs"][0]
    today = time_today()
    periods = {
        "default period": reports.Period.default(today=today),
        "one day": reports.Period(start=today - timedelta(days=5), end=today - timedelta(days=5)),
    }
    figures = []
    for asked in kinds:
        # "payments-day": the payments of one day only (those of 90 days grow with the size).
        kind = asked.removesuffix("-day")
        for name, period in periods.items():
            if name == "one day" and kind not in ("payments", "statement"):
                continue
            if asked.endswith("-day") and name != "one day":
                continue
            export = ProgramExport.objects.create(
                program=program,
                kind=kind,
                file_format="csv",
                period_start=period.start,
                period_end=period.end,
            )
            figure, done = measure(
                f"export {kind} (csv, {name}), built by its task",
                lambda export=export: exports.export_build(export=export),
                target=2.0,
            )
            copied = exports.copy_query(program=program, kind=kind, period=period)
            if copied is not None:
                # Written by COPY, which the statements' wrapper does not see: its query's plan.
                sql, params, _header = copied
                explained, scans = Plans({sql: params}).seq_scans()
                figure.explained += explained
                figure.scans |= scans
                found = ", ".join(sorted(scans)) or "no sequential scan of a hot table"
                print(f"  the COPY's query explained: {found}")
            print(f"  {done.size:,} bytes in the file storage: {done.file.name}")
            figures.append(figure)
            if kind in BARE_ROWS:
                figures.append(copy_floor(kind, program.pk, period))
    return figures


# The floor of an export written by COPY: the same rows' own columns, nothing joined, rendered
# or sorted, through the same COPY and the same loop into a temporary file.
BARE_ROWS = {
    "allocations": "SELECT a.beneficiary_id, a.amount, a.currency, a.valid_from, a.valid_until, "
    "a.status, a.ended_at, a.end_reason, a.created_by_id FROM funders_allocation a "
    "WHERE a.program_id = %(program)s",
    # Every decision of the period: the export's rows and those of wallets without the
    # program (none in the bench's data, where every wallet has a pocket of each program).
    "payments": "SELECT d.reference, d.decided_at, d.merchant_id, d.currency, d.amount, "
    "d.approved_amount, d.status, d.reason FROM wallet_decision d "
    "WHERE d.decided_at >= %(since)s AND d.decided_at < %(until)s",
}


def copy_floor(kind: str, program: int, period) -> Figure:
    """The bare rows of an export through COPY, measured beside it: below this, no file of
    those rows is written on this machine."""
    import tempfile

    from backoffice import exports

    params = {"program": program, "since": period.since, "until": period.until}
    with tempfile.TemporaryFile() as out:
        figure, _ = measure(
            f"  floor: the bare rows of {kind} through COPY",
            lambda: exports.copy_csv(BARE_ROWS[kind], params, out),
            target=None,
        )
        print(f"  {out.tell():,} bytes")
    return figure


def time_today():
    from django.utils import timezone

    return timezone.localdate()


def campaign(built: dict, people: int) -> Figure:
    from funders.campaigns import campaign_create, campaign_run
    from funders.models import CampaignRun, EligibilityCriterion
    from tests.factories import make_program

    # A program nobody holds yet: every eligible person gets a proposal.
    program = make_program(funder=built["funder"], name="Chèque énergie", funded=10**11)
    for kind, fields in [
        ("departement", {"values": ["38", "73", "26"]}),
        ("age", {"minimum": 60}),
        ("household_size", {"maximum": 4}),
        ("income_bracket", {"maximum": 6}),
    ]:
        criterion = EligibilityCriterion(program=program, kind=kind, **fields)
        criterion.full_clean()
        criterion.save()
    chosen = campaign_create(program=program, name="Hiver", amount=5_000)
    figure, run = measure(
        f"campaign over {people:,} people",
        lambda: campaign_run(campaign=chosen, trigger=CampaignRun.Trigger.ON_DEMAND),
        target=180 * people / MILLION,
        reads_everything=True,
    )
    print(f"  evaluated {run.evaluated:,}, eligible {run.eligible:,}, proposed {run.proposed:,}")
    return figure


def ledger_checks(people: int) -> tuple[list[Figure], bool]:
    from ledger.verify import verify
    from reconciliation.report import reconciliation_build

    verified, problems = measure(
        "ledger verify", verify, target=600 * people / MILLION, reads_everything=True
    )
    reconciled, report = measure(
        "reconciliation",
        reconciliation_build,
        target=600 * people / MILLION,
        reads_everything=True,
    )
    print(f"  ledger problems: {len(problems)}; reconciliation failures: {len(report.failures)}")
    for problem in problems[:5]:
        print(f"    {problem}")
    for failure in report.failures[:5]:
        print(f"    {failure}")
    return [verified, reconciled], not problems and not report.failures


def expiry_sweep(people: int) -> Figure:
    """The beat task's service: every due allocation ended, batch after batch."""
    from funders.services import allocations_expire_due

    figure, ended = measure(
        f"allocation expiry sweep ({people:,} due)",
        allocations_expire_due,
        target=900 * people / MILLION,
    )
    print(f"  ended {ended:,} of {people:,} ({ended / figure.seconds:,.0f}/s)")
    # The sweep folds what it returned into the dashboards' rollup once the rollup exists.
    from funders.models import RollupWatermark
    from ledger.models import Transfer

    mark = RollupWatermark.objects.filter(pk=1).first()
    last = Transfer.objects.order_by("-pk").values_list("pk", flat=True)[:1]
    print(
        f"  rollup's transfer watermark {mark.transfer if mark else 0:,}, "
        f"last transfer {last[0] if last else 0:,}"
    )
    return figure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="fraction of a million people (default: 1)"
    )
    parser.add_argument("--authorizations", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--exports",
        nargs="*",
        default=["allocations", "payments", "statement", "refusals"],
        help="the exports to build (default: all); payments-day for one day's payments only",
    )
    parser.add_argument(
        "--no-final-verify",
        dest="final_verify",
        action="store_false",
        help="leave out `manage.py ledger verify` at the end (the in-process verify is a figure)",
    )
    parser.add_argument(
        "--phase",
        choices=("all", "build", "measure"),
        default="all",
        help="build the database and stop, or measure on the one a build left (the sweep and "
        "the campaign change it: measure once per build); default: both",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=FIGURE_GROUPS,
        help="measure only these figures (default: all); at a million the whole measure phase "
        "takes hours, the dashboards' first fold alone about one",
    )
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    with harness.Bench("scale", limit_seconds=args.limit_seconds) as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    people = max(1, round(args.scale * MILLION))
    migrate_s = bench.setup(recreate=args.phase != "measure", eager_tasks=True)
    print(f"migrate: {migrate_s:.1f} s")
    started = time.perf_counter()
    if args.phase == "measure":
        built = already_built(args.seed)
        people = built["people"]
    else:
        built = build(people, args.seed)
    if args.phase == "build":
        print(f"wall time: {time.perf_counter() - started:.1f} s")
        return 0
    wanted = set(args.only or FIGURE_GROUPS)
    figures: list[Figure] = []
    p50: float | None = None
    if "authorizations" in wanted:
        figures, _ratio, p50 = authorizations(built, people, args.authorizations)
    if "dashboards" in wanted:
        figures.append(rollup("dashboard rollup, first fold (the whole history)", settle=True))
        figures += dashboards(built, "payments of the last minutes read after the watermark")
        figures.append(rollup("dashboard rollup, next fold (the last minutes)", settle=False))
        figures += dashboards(built, "just folded")
    if "sweep" in wanted:
        figures.append(expiry_sweep(people))
        if "dashboards" in wanted:
            figures += dashboards(built, "after the sweep, which folded what it returned")
    balanced = True
    if "ledger" in wanted:
        # What matters most first: at a million each of these takes minutes.
        checks, balanced = ledger_checks(people)
        figures += checks
    if "campaign" in wanted:
        figures.append(campaign(built, people))
    if "exports" in wanted:
        figures += exports_built(built, args.exports)
    print(f"wall time: {time.perf_counter() - started:.1f} s")
    print()
    print("summary:")
    for figure in figures:
        missed = figure.target is not None and figure.seconds >= figure.target
        print(
            f"  {figure.label}: {figure.seconds:.2f} s (processor {figure.client_cpu:.2f} s "
            f"+ {figure.server_cpu:.2f} s in PostgreSQL)"
            + ("" if figure.target is None else f", target {figure.target:g} s")
            + (" MISSED" if missed else "")
            + ("" if figure.plan_ok else "; PLAN SCANS " + ", ".join(sorted(figure.scans)))
        )
    # The command runs the same check as the figure above, in a process of its own: at a
    # million, ten minutes more, which --no-final-verify spares.
    verified = bench.verify_ledger() if args.final_verify else balanced
    limit = bench.measure_limit(clients=1)
    if limit is not None:
        print()
        if p50 is None:
            print(limit)  # the machine's state beside the figures, no authorization measured
        else:
            # One client in-process: its rate is one authorization per median latency.
            harness.print_against_limit(
                "authorizations (1 / p50)", rate=1 / p50 if p50 else 0.0, p50=p50, limit=limit
            )
    ok = verified and balanced
    print("RESULT: ok" if ok else "RESULT: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
