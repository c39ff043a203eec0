"""Benchmark: authorize() in-process against PostgreSQL.

Builds realistic wallets (3 pockets each, 5 rules per pocket: validity, days and hours,
categories, zone, per-period caps) in a database of its own, then runs N authorizations at
random wallets and merchants and prints throughput and latency percentiles, what the slowest
1 % of the calls spent beside the middle ones (processor here and in the server, collections of
Python's cyclic GC, outcomes: where the tail comes from), then the machine's
limit for one authorization from one connection (bench/harness.py) and the ratio.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench \
        .venv/bin/python -m bench.authorize [--authorizations 10000] [--wallets 1000] \
        [--path authorize|code|one-statement]

--path: `authorize` times authorize() alone on a wallet (the default, as measured before);
`code` and `one-statement` time what the merchant API runs for a payment by one-time code,
in its transaction: `code` the portable path (payment_code_redeem, then authorize()), and
`one-statement` PostgreSQL's (wallet/hot_path.py's two reads, then core/one_statement.py's
one write). The codes are created before each timed call.

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if the ledger does not verify afterwards.
"""

import argparse
import gc
import random
import statistics
import sys
import time
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from bench import harness, scenario

if TYPE_CHECKING:
    from engine.request import AuthorizationRequest

# A schedule rule that every payment passes (it is checked all the same). Hours end exclusive:
# "23:59" would refuse the last minute of the Paris day, which skewed a run at 23:59.
EVERY_DAY = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "hours": [["00:00", "24:00"]]}
PROGRAMS = [
    (
        "food",
        {
            "categories": {"allow_groups": ["food"]},
            "zone": {"departements": ["38", "73"]},
            "schedule": EVERY_DAY,
            "limits": {"day": 20_000, "month": 200_000},
        },
    ),
    (
        "mobility",
        {
            "categories": {"allow_groups": ["transport"]},
            "zone": {"countries": ["FR"]},
            "schedule": EVERY_DAY,
            "limits": {"week": 30_000, "per_payment": 10_000},
        },
    ),
    (
        "health",
        {
            "categories": {"allow_groups": ["health"]},
            "zone": {"postcode_prefixes": ["38", "69"]},
            "schedule": EVERY_DAY,
            "limits": {"year": 500_000, "day": 50_000},
        },
    ),
]
# (MCC, postcode, INSEE commune).
MERCHANTS = [
    ("5411", "38000", "38185"),
    ("5462", "38130", "38151"),
    ("4111", "38100", "38185"),
    ("5912", "69004", "69384"),
    ("5411", "73000", "73065"),
    ("5921", "38000", "38185"),
    ("4112", "75010", "75110"),
    ("5812", "38000", "38185"),
]


def merchants_build() -> list:
    """One shop for each of MERCHANTS (Django set up), with its place."""
    from tests.factories import make_merchant, siret

    return [
        make_merchant(
            siret=siret(1000 + i),
            legal_name=f"M{i}",
            trade_name=f"M{i}",
            mcc=mcc,
            address="1 rue",
            postcode=postcode,
            city="X",
            commune_code=commune,
            latitude="45.18",
            longitude="5.72",
        )
        for i, (mcc, postcode, commune) in enumerate(MERCHANTS)
    ]


def wallets_build(count: int, rng: random.Random) -> list:
    """`count` wallets (Django set up) with a pocket of each of PROGRAMS, statistics analyzed."""
    from django.utils import timezone

    from tests.factories import BeneficiaryFactory, make_allocation

    now = timezone.now()
    programs = scenario.funder_with_programs(rules_by_name=PROGRAMS)
    started = time.perf_counter()
    wallets = []
    for w in range(count):
        beneficiary = BeneficiaryFactory(first_name="B", last_name=str(w), email="", postcode="")
        wallets.append(beneficiary.wallet)
        for program in programs:
            make_allocation(
                program=program,
                beneficiary=beneficiary,
                amount=rng.randrange(20_000, 80_000),
                valid_from=now - timedelta(days=rng.randrange(1, 30)),
                valid_until=now + timedelta(days=rng.randrange(30, 120)),
            )
    print(f"set-up: {count} wallets x 3 pockets in {time.perf_counter() - started:.1f} s")
    scenario.analyze()
    return wallets


def random_request(rng: random.Random, place) -> "AuthorizationRequest":
    """A payment at `place` of a random amount, partial approval allowed one time in five: the
    same draws from `rng`, in the same order, wherever a benchmark pays (bench.pg_cost too)."""
    from django.utils import timezone

    from engine.request import AuthorizationRequest

    return AuthorizationRequest(
        amount=rng.randrange(100, 6_000),
        currency="EUR",
        merchant=place,
        at=timezone.now(),
        channel="api",
        partial_allowed=rng.random() < 0.2,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authorizations", type=int, default=10_000)
    parser.add_argument("--wallets", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--path", choices=["authorize", "code", "one-statement"], default="authorize"
    )
    harness.add_redis_arguments(parser)
    harness.add_limit_arguments(parser)
    args = parser.parse_args()
    # Production's broker: without one, Celery's embedded default (a SQLite file) took a commit
    # to disk per decision for the message queued after it, about 10 ms, half the figure.
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    with harness.Bench("authorize", redis=redis, limit_seconds=args.limit_seconds) as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup()
    from django.db import transaction

    from core.one_statement import OneStatement
    from merchants.payments import merchant_place
    from wallet.authorize import authorize, authorize_by_code
    from wallet.payment_codes import payment_code_create, payment_code_redeem

    def by_code(request, code, merchant, key):
        with transaction.atomic():
            if args.path == "one-statement":
                writes = OneStatement()
                decision = authorize_by_code(
                    writes,
                    request=request,
                    code=code,
                    idempotency_key=key,
                    credit_account=merchant.payable_account,
                    merchant_id=merchant.pk,
                )
                writes.run(commit=True)
                return decision
            used = payment_code_redeem(
                code=code,
                amount=request.amount,
                currency=request.currency,
                idempotency_key=key,
                merchant=merchant,
            )
            return authorize(
                request=request,
                wallet=used.wallet,
                credit_account=merchant.payable_account,
                merchant_id=merchant.pk,
                idempotency_key=key,
                wallet_locked=True,
            )

    rng = random.Random(args.seed)
    merchants = merchants_build()
    wallets = wallets_build(args.wallets, rng)

    places = {merchant.pk: merchant_place(merchant) for merchant in merchants}
    latencies = []
    calls = []  # (latency, client CPU, server CPU, outcome, collections of the cyclic GC)
    collections: list[int] = []
    gc.callbacks.append(
        lambda phase, info: phase == "stop" and collections.append(info["generation"])
    )
    client_cpu = backend_cpu = 0.0
    outcomes = Counter()
    queued = run_queue_readers()
    for i in range(args.authorizations):
        merchant = rng.choice(merchants)
        wallet = rng.choice(wallets)
        request = random_request(rng, places[merchant.pk])
        code = None if args.path == "authorize" else payment_code_create(wallet=wallet)[1]
        # The server's processor read outside the timed call: reading /proc is the
        # benchmark's work, not the payment's.
        b0 = harness.backend_cpu_seconds()
        q0 = [read() for read in queued]
        t0, c0 = time.perf_counter(), time.process_time()
        if code is None:
            decision = authorize(
                request=request,
                wallet=wallet,
                credit_account=merchant.payable_account,
                merchant_id=merchant.pk,
                idempotency_key=f"bench-{i}",
            )
        else:
            decision = by_code(request, code, merchant, f"bench-{i}")
        latency, client = time.perf_counter() - t0, time.process_time() - c0
        runnable = tuple(read() - q for read, q in zip(queued, q0, strict=True))
        backend = harness.backend_cpu_seconds() - b0
        latencies.append(latency)
        client_cpu += client
        backend_cpu += backend
        outcomes[decision.reason or decision.status] += 1
        calls.append(
            (latency, client, backend, decision.reason or decision.status, collections, runnable)
        )
        collections = []

    total = sum(latencies)
    cuts = statistics.quantiles(latencies, n=100)
    print(f"path: {args.path}")
    print(f"authorizations: {len(latencies)} in {total:.2f} s -> {len(latencies) / total:.0f}/s")
    print(
        f"latency: p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms, "
        f"max {max(latencies) * 1000:.2f} ms"
    )
    print(
        f"CPU per authorization: this process {client_cpu / len(latencies) * 1000:.2f} ms, "
        f"its PostgreSQL server process {backend_cpu / len(latencies) * 1000:.2f} ms "
        "(steadier than wall-clock time on a shared machine)"
    )
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    tail_report(calls)
    verified = bench.verify_ledger()
    limit = bench.measure_limit(clients=1)
    if limit is not None:
        print()
        harness.print_against_limit(
            "authorizations", rate=len(latencies) / total, p50=cuts[49], limit=limit
        )
    return 0 if verified else 1


def run_queue_readers() -> list:
    """Readers of the seconds this process and its PostgreSQL server process have spent so far
    runnable but waiting for a core (the second figure of /proc/<pid>/schedstat; both run on
    this machine): what of a call's wait was the machine's other work, not the disk or a lock."""
    from django.db import connection

    connection.ensure_connection()
    paths = ["/proc/self/schedstat", f"/proc/{connection.connection.info.backend_pid}/schedstat"]

    def reader(path: str):
        def read() -> float:
            with open(path) as schedstat:
                return int(schedstat.read().split()[1]) / 1e9

        return read

    return [reader(path) for path in paths]


def tail_report(calls: list[tuple]) -> None:
    """What the slowest 1 % of the calls spent, beside the middle ones: whether the tail is
    this process' processor (a collection of the cyclic GC, a larger decision), the server's,
    or time waiting for neither (`waited`: a core given to another process, a lock, the disk's
    flush of the WAL at COMMIT), and of that wait how much either process was runnable but
    waiting for a core (the rest: the disk, a lock, the network)."""
    calls = sorted(calls)
    middle = calls[len(calls) * 45 // 100 : len(calls) * 55 // 100]
    tail = calls[len(calls) * 99 // 100 :]
    for name, part in (("p45-p55", middle), ("slowest 1 %", tail)):
        n = len(part)
        gcs = Counter(generation for call in part for generation in call[4])
        print(
            f"{name}: {n} calls, mean {sum(c[0] for c in part) / n * 1000:.2f} ms, "
            f"this process' CPU {sum(c[1] for c in part) / n * 1000:.2f} ms, "
            f"its server's {sum(c[2] for c in part) / n * 1000:.2f} ms, "
            f"waited {sum(c[0] - c[1] - c[2] for c in part) / n * 1000:.2f} ms, of which "
            f"for a core {sum(c[5][0] for c in part) / n * 1000:.2f} ms here and "
            f"{sum(c[5][1] for c in part) / n * 1000:.2f} ms in its server; "
            f"GC collections (generation: count) {dict(sorted(gcs.items())) or 'none'}; "
            + ", ".join(f"{k} {v}" for k, v in Counter(c[3] for c in part).most_common())
        )


if __name__ == "__main__":
    sys.exit(main())
