"""Benchmark: a rule dry run replaying a program's past decisions (funders/dry_runs.py).

Builds wallets of 3 pockets (the programs of bench/authorize.py), makes a few thousand real
authorizations through authorize(), then copies their decision rows in SQL, spread over the last
80 days, until the program has N decisions; then times the dry run of a changed rule set (a day
cap lowered, a département removed, a category group added) over 90 days, as the Celery task
runs it, and prints decisions replayed per second and what would flip.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_dry_run \
        .venv/bin/python -m bench.dry_run [--decisions 1000000] [--wallets 1000]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
Copies of a decision share its holds' absence (the copies place none): the ledger is untouched
and verifies afterwards (exit status 1 if not).
"""

import argparse
import os
import random
import resource
import sys
import time
from datetime import timedelta

from bench import harness, scenario
from bench.authorize import PROGRAMS, merchants_build

PROPOSED = {
    "categories": {"allow_groups": ["food", "restaurants"]},
    "zone": {"departements": ["38"]},
    "schedule": PROGRAMS[0][1]["schedule"],
    "limits": {"day": 5_000, "month": 200_000},
}
# Decision rows copied per statement: each copy gets its own reference, key and time.
COPY_BATCH = 100_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--wallets", type=int, default=1_000)
    parser.add_argument("--authorizations", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="replay on the database a previous run built and kept (--keep), without building",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database for a later --reuse")
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    with harness.Bench("dry_run", limit_seconds=args.limit_seconds) as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup(recreate=not args.reuse)
    from django.utils import timezone

    from funders.dry_runs import APPROVED_TO_REFUSED, REFUSED_TO_APPROVED, replay
    from funders.models import Program

    if not args.reuse:
        build(args)
    food = Program.objects.get(name=PROGRAMS[0][0])
    progress_calls = []
    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    result = replay(
        program=food,
        rules=PROPOSED,
        since=timezone.now() - timedelta(days=90),
        until=timezone.now(),
        progress=lambda done, total: progress_calls.append(done),
    )
    elapsed = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    rate = result["replayed"] / elapsed
    print(
        f"dry run: {result['decisions']} decisions read, {result['replayed']} replayed in "
        f"{elapsed:.1f} s -> {rate:,.0f}/s ({len(progress_calls)} progress updates)"
    )
    # On a shared machine the wall clock says how busy the others were; the processor time of
    # this process and of the parts it forked says what the replay itself cost.
    print(
        f"  processor time of the replay (this process and its parts, PostgreSQL's not "
        f"counted): {cpu:.1f} s, {cpu / max(result['replayed'], 1) * 1e6:.0f} µs per decision; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for kind in (APPROVED_TO_REFUSED, REFUSED_TO_APPROVED):
        flips = result["flips"][kind]
        print(
            f"  {kind}: {flips['count']} payments, {flips['amount']} cents, "
            f"{flips['people']} people"
        )
    read = bare_read_seconds(food)
    print(
        f"bare SQL read of the same rows (COPY, read by nobody): {read:.1f} s -> "
        f"{result['decisions'] / read:,.0f}/s; the dry run takes {elapsed / read:.1f}x that"
    )
    limit = bench.measure_limit(clients=1)
    if limit is not None:
        print(limit)
        print(
            f"dry run against the limit: {rate:,.0f} decisions/s for {limit.rate:,.0f} "
            f"authorizations/s ({rate / limit.rate:.1f}x)"
        )
    print(f"RESULT: {'ok' if elapsed < 60 else 'slower than 60 s'}")
    verified = bench.verify_ledger()
    if not args.keep:
        from django.db import connections

        connections.close_all()  # this process's own session would hold the database
        harness.drop_database(bench.url)
    return 0 if verified else 1


def _cpu_seconds() -> float:
    """User and system time of this process and of its children that ended."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bare_read_seconds(program) -> float:
    """PostgreSQL sending the rows the dry run reads (its own query, through COPY, parsed by
    nobody): the floor of any replay done outside the database."""
    from django.db import connection
    from django.utils import timezone

    from funders.dry_runs import decisions_query

    sql, params = decisions_query(
        program=program, since=timezone.now() - timedelta(days=90), until=timezone.now()
    )
    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy,
    ):
        for _block in copy:
            pass
    return time.perf_counter() - started


def build(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.utils import timezone

    from engine.request import AuthorizationRequest
    from merchants.payments import merchant_place
    from tests.factories import BeneficiaryFactory, make_allocation
    from wallet.authorize import authorize
    from wallet.models import Decision

    rng = random.Random(args.seed)
    now = timezone.now()
    started = time.perf_counter()
    programs = scenario.funder_with_programs(rules_by_name=PROGRAMS)
    merchants = merchants_build()
    wallets = []
    for w in range(args.wallets):
        beneficiary = BeneficiaryFactory(first_name="B", last_name=str(w), email="", postcode="")
        wallets.append(beneficiary.wallet)
        for program in programs:
            make_allocation(
                program=program,
                beneficiary=beneficiary,
                amount=rng.randrange(20_000, 80_000),
                valid_from=now - timedelta(days=100),
                valid_until=now + timedelta(days=rng.randrange(30, 120)),
            )
    places = {merchant.pk: merchant_place(merchant) for merchant in merchants}
    for i in range(args.authorizations):
        merchant = rng.choice(merchants)
        authorize(
            request=AuthorizationRequest(
                amount=rng.randrange(100, 6_000),
                currency="EUR",
                merchant=places[merchant.pk],
                at=timezone.now(),
                channel="api",
                partial_allowed=rng.random() < 0.2,
            ),
            wallet=rng.choice(wallets),
            credit_account=merchant.payable_account,
            merchant_id=merchant.pk,
            idempotency_key=f"bench-{i}",
        )
    print(
        f"set-up: {args.wallets} wallets x 3 pockets, {args.authorizations} authorizations "
        f"in {time.perf_counter() - started:.1f} s"
    )

    started = time.perf_counter()
    table = Decision._meta.db_table
    columns = [
        field.column
        for field in Decision._meta.concrete_fields
        if field.column not in ("id", "reference", "idempotency_key", "decided_at")
    ]
    listed = ", ".join(columns)
    # Each copy is asked at its own time (the request's "at" is its decided_at): replayed, it
    # meets the schedule and the periods at another moment than the decision it copies.
    selected = ", ".join(
        "jsonb_set(d.request, '{at}', to_jsonb(g.at))" if column == "request" else f"d.{column}"
        for column in columns
    )
    copied = Decision.objects.count()
    with connection.cursor() as cursor:
        while copied < args.decisions:
            batch = min(COPY_BATCH, args.decisions - copied)
            cursor.execute(
                f"""
                INSERT INTO {table} (reference, idempotency_key, decided_at, {listed})
                SELECT 'copy_' || g.n, 'bench-copy-' || g.n, g.at, {selected}
                FROM (
                    SELECT n, now() - (random() * interval '80 days') AS at
                    FROM generate_series(%s, %s) AS n
                ) AS g
                JOIN {table} d ON d.id = 1 + (g.n %% %s)
                """,
                [copied, copied + batch - 1, args.authorizations],
            )
            copied += batch
        # Every table: the planner must know the program has all the wallets (a seq scan), not
        # the few of an empty database (an index walk per wallet, ten times slower).
        cursor.execute("ANALYZE")
    print(f"copies: {copied} decisions in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
