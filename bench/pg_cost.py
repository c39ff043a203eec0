"""Benchmark: what PostgreSQL's server process spends on one payment by code, statement by
statement (issue 19).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_pgcost \\
        .venv/bin/python -m bench.pg_cost [--authorizations 2000] [--wallets 100] \\
        [--holds 10,100,500,2000]

Runs the merchant API's PostgreSQL path for a payment by code (wallet/hot_path.py's lock and
read, core/one_statement.py's write with its COMMIT in one message) on wallets built as
bench/authorize.py builds them, and prints for each round trip the server process's CPU (its
/proc schedstat, in nanoseconds: /proc/<pid>/stat counts 10 ms ticks, too coarse for one
statement) and the wall time. Every other block of payments runs with `session_replication_role
= replica`, which skips the triggers that check the inserted rows' foreign keys at COMMIT (this
schema has no other trigger): the difference between the two halves is what those checks cost
(needs a superuser, as the benchmark's `postgres`; left out otherwise). Then the read under the
lock on one wallet at a growing number of holds per pocket (added in a transaction rolled back
afterwards), then the limit.

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if the ledger does not verify afterwards.
"""

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from bench import harness
from bench.authorize import merchants_build, random_request, wallets_build

# Payments with the foreign keys' checks, then as many without, and so on; the first of each
# block are not counted (see run()).
BLOCK, SETTLING = 100, 10
STEPS = ("lock and read under it", "write and its COMMIT", "COMMIT (Django's)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authorizations", type=int, default=2_000)
    parser.add_argument("--wallets", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--holds",
        default="10,100,500,2000",
        help="holds per pocket at which the read under the lock is timed (default: %(default)s)",
    )
    harness.add_redis_arguments(parser)
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    with harness.Bench("pg_cost", redis=redis, limit_seconds=args.limit_seconds) as bench:
        return run(bench, args)


def server_cpu() -> Callable[[], int]:
    """A reader of the CPU nanoseconds used so far by this process's PostgreSQL server process
    (the default connection's, on this machine)."""
    from django.db import connection

    connection.ensure_connection()
    path = f"/proc/{connection.connection.info.backend_pid}/schedstat"

    def read() -> int:
        with open(path) as schedstat:
            return int(schedstat.read().split()[0])

    return read


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup()
    from django.db import connection, transaction

    from core.one_statement import OneStatement
    from merchants.payments import merchant_place
    from wallet.authorize import authorize_by_code
    from wallet.payment_codes import payment_code_create

    rng = random.Random(args.seed)
    merchants = merchants_build()
    wallets = wallets_build(args.wallets, rng)
    places = {merchant.pk: merchant_place(merchant) for merchant in merchants}
    cpu = server_cpu()
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        superuser = cursor.fetchone()[0]

    def step(sql: str) -> str:
        # The hot path's statements run by name (core/prepared.py): `EXECUTE name(<values>)`,
        # after their PREPARE the first time; the lock and the read go in one message (with
        # the transaction's BEGIN), and the write with its COMMIT.
        if sql.endswith("; COMMIT"):
            return STEPS[1]
        if "EXECUTE " in sql:
            return STEPS[0]
        return sql.split(None, 1)[0]

    spent: dict[str, list[int]] = defaultdict(list)
    waited: dict[str, list[float]] = defaultdict(list)

    def timed(execute, sql, params, many, context):
        before, started = cpu(), time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            name = step(sql)
            spent[name].append(cpu() - before)
            waited[name].append(time.perf_counter() - started)

    def untimed(execute, sql, params, many, context):
        return execute(sql, params, many, context)

    by_checks: dict[bool, list[int]] = {True: [], False: []}
    latencies = []
    for i in range(args.authorizations):
        merchant = rng.choice(merchants)
        request = random_request(rng, places[merchant.pk])
        code = payment_code_create(wallet=rng.choice(wallets))[1]
        checked = not superuser or (i // BLOCK) % 2 == 0
        if superuser and i % BLOCK == 0:
            with connection.cursor() as cursor:
                role = "DEFAULT" if checked else "replica"
                cursor.execute(f"SET session_replication_role = {role}")
        # A change of session_replication_role drops the server's cached plans: the first
        # payments of a block plan the prepared statements again, and are left out.
        counted = i % BLOCK >= SETTLING
        before, started = cpu(), time.perf_counter()
        with transaction.atomic():
            with connection.execute_wrapper(timed if counted else untimed):
                writes = OneStatement()
                authorize_by_code(
                    writes,
                    request=request,
                    code=code,
                    idempotency_key=f"bench-{i}",
                    credit_account=merchant.payable_account,
                    merchant_id=merchant.pk,
                )
                writes.run(commit=True)  # the write and its COMMIT in one message
            committing = cpu(), time.perf_counter()
        latencies.append(time.perf_counter() - started)
        if counted:
            spent[STEPS[2]].append(cpu() - committing[0])
            waited[STEPS[2]].append(time.perf_counter() - committing[1])
            by_checks[checked].append(cpu() - before)
    if superuser:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")

    total = sum(latencies)
    print(f"payments by code: {len(latencies)} in {total:.2f} s -> {len(latencies) / total:.0f}/s")
    print(
        "server CPU per round trip (mean, median) and wall time (median), "
        f"the first {SETTLING} payments of each {BLOCK} left out:"
    )
    for name in [*STEPS, *sorted(set(spent) - set(STEPS))]:
        values = spent[name]
        if not values:
            continue
        print(
            f"  {name:<24} {len(values) / len(latencies):5.2f} per payment  "
            f"{statistics.mean(values) / 1e3:6.0f} µs, {statistics.median(values) / 1e3:6.0f} µs"
            f"  wall {statistics.median(waited[name]) * 1000:6.2f} ms"
        )
    checked_cpu = statistics.mean(by_checks[True]) / 1e3
    print(f"  whole payment            {checked_cpu:6.0f} µs (foreign keys checked)")
    if by_checks[False]:
        unchecked = statistics.mean(by_checks[False]) / 1e3
        print(
            f"  without the foreign keys' checks (every other {BLOCK}) {unchecked:.0f} µs: "
            f"the checks cost {checked_cpu - unchecked:.0f} µs"
        )
    counts = [int(count) for count in args.holds.split(",")]
    holds_read(wallets[0], counts, merchants[0].payable_account_id, cpu)
    verified = bench.verify_ledger()
    limit = bench.measure_limit(clients=1)
    if limit is not None:
        print()
        cuts = statistics.quantiles(latencies, n=100)
        harness.print_against_limit(
            "payments by code", rate=len(latencies) / total, p50=cuts[49], limit=limit
        )
    return 0 if verified else 1


def holds_read(wallet, counts: list[int], credit_account_id: int, cpu: Callable[[], int]) -> None:
    """The read under the lock (a new code of `wallet`) timed at `counts` pending holds per
    pocket (to `credit_account_id`), the holds added in a transaction rolled back at the end."""
    from django.db import connection, transaction
    from django.utils import timezone

    from ledger.services import spending_rebuild
    from wallet import hot_path
    from wallet.payment_codes import payment_code_create

    slot = payment_code_create(wallet=wallet)[0].slot
    print()
    print("the read under the lock against the holds on each of the wallet's pockets:")
    with transaction.atomic():
        for count in counts:
            with connection.cursor() as cursor:
                # Copies of a hold, 1 cent each, made a minute ago: each one the read must sum.
                cursor.execute(
                    """INSERT INTO wallet_transfer (kind, currency, amount, fingerprint,
                        is_pending, debit_account_id, credit_account_id, expires_at, created_at,
                        metadata)
                    SELECT 'hold', 'EUR', 1, '', true, p.account_id, %s,
                        now() + interval '7 days', now() - interval '1 minute', '{}'
                    FROM wallet_pocket p,
                        generate_series(1, %s - (SELECT count(*) FROM wallet_transfer h
                            WHERE h.is_pending AND h.debit_account_id = p.account_id))
                    WHERE p.wallet_id = %s""",
                    [credit_account_id, count, wallet.pk],
                )
            # The pockets' spending per period, as the ledger's services keep it when they place
            # holds (written here by SQL, around them).
            spending_rebuild()
            readings = []
            for _ in range(50):
                before, now = cpu(), timezone.now()
                locked = hot_path.lock_and_read_by_slot(
                    slot=slot,
                    merchant_id=None,
                    at=now,
                    since=now - timedelta(minutes=15),
                    tries=5,
                )
                readings.append(cpu() - before)
            assert locked is not None and locked[1].code is not None and locked[1].states
            print(
                f"  {count:>6} holds per pocket: {statistics.median(readings) / 1e3:6.0f} µs of "
                "server CPU (median of 50)"
            )
        transaction.set_rollback(True)


if __name__ == "__main__":
    sys.exit(main())
