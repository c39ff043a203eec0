"""Benchmark: the drains beat runs every second (notifications/services.py notices_drain): the
payments' messages (decision_notices_drain) and the captures' low-balance checks
(capture_notices_drain), per notice: the statements, the drain's processor and its wall time.

Builds the data of bench/http_load.py (bench/scenario.py) with W wallets, then pays P times at
the first merchant with a fresh payment code and captures at once (payment_authorize with
`capture`), as a till's one-step purchase does. Each trial then makes a notice again for each
of the N latest decisions (or captures), as the payments made them, and runs the drain over
them in a transaction rolled back afterwards, so every trial finds the same work; the median of
the trials is printed. The benchmarks' people have no email, mobile number or app: their
payments' messages are the skipped rows of the unreachable (the batch path), as in every other
benchmark of this directory.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_drains \\
        .venv/bin/python -m bench.drains [--wallets 300] [--payments 1200] [--notices 1000] \\
        [--trials 5] [--reuse]

The database named in DATABASE_URL is dropped and created again (kept with --reuse): never point
it at real data. With --limit-seconds, the bare-SQL limit of one authorization is measured in
the same run: a notice has no pgbench counterpart, so it says how loaded the machine was; the
figures to compare are before and after a change, runs back to back.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from random import Random

from bench import harness, scenario


@dataclass(frozen=True)
class Trial:
    told: int
    statements: int
    processor: float
    wall: float


class Statements:
    """Counts the statements run on Django's connection (an execute wrapper)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def pay(fixture: scenario.Fixture, payments: int, rng: Random) -> int:
    """`payments` one-step purchases at the first merchant, each with a fresh code of a random
    wallet. Returns how many were approved (and so captured)."""
    from django.db import transaction

    from merchants.models import Merchant
    from merchants.payments import payment_authorize

    merchant = Merchant.objects.get(siret=scenario.merchant_siret(0))
    approved = 0
    for n in range(payments):
        with transaction.atomic():
            decision = payment_authorize(
                merchant=merchant,
                amount=rng.randrange(100, 2_000),
                currency="EUR",
                payment_code=scenario.payment_code(rng.choice(fixture.wallets)),
                capture=True,
                idempotency_key=f"drains-{time.time_ns()}-{n}",
            )
        approved += decision.approved_amount > 0
    return approved


def trial(remake: Callable[[], object], drain: Callable[[], int]) -> Trial:
    """The notices made again by `remake`, then drained, in a transaction rolled back."""
    from django.db import connection, transaction

    with transaction.atomic():
        remake()
        statements = Statements()
        processor, wall = time.process_time(), time.perf_counter()
        with connection.execute_wrapper(statements):
            told = drain()
        processor, wall = time.process_time() - processor, time.perf_counter() - wall
        transaction.set_rollback(True)
    return Trial(told, statements.count, processor, wall)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup(recreate=not args.reuse)
    fixture = (
        scenario.reuse(wallets=args.wallets)
        if args.reuse
        else scenario.build(wallets=args.wallets, seed=1)
    )
    from ledger.models import Transfer
    from notifications import services
    from wallet.models.decisions import Decision
    from wallet.models.notifications import CaptureNotice, DecisionNotice

    started = time.perf_counter()
    approved = pay(fixture, args.payments, Random(2))
    print(
        f"{args.payments} one-step purchases, {approved} approved and captured, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    scenario.analyze()
    decisions = list(
        Decision.objects.filter(livemode=True)
        .order_by("-pk")
        .values_list("pk", flat=True)[: args.notices]
    )
    captures = list(
        Transfer.objects.filter(kind=Transfer.Kind.CAPTURE)
        .order_by("-pk")
        .values_list("pk", flat=True)[: args.notices]
    )

    def decision_notices():
        DecisionNotice.objects.all().delete()
        DecisionNotice.objects.bulk_create([DecisionNotice(decision_id=pk) for pk in decisions])

    def capture_notices():
        CaptureNotice.objects.all().delete()
        CaptureNotice.objects.bulk_create([CaptureNotice(capture_id=pk) for pk in captures])

    print(f"{args.trials} trials each, the median; per notice:")
    for name, remake, drain, notices in (
        ("payments' messages", decision_notices, services.decision_notices_drain, decisions),
        ("captures' checks", capture_notices, services.capture_notices_drain, captures),
    ):
        trials = [trial(remake, drain) for _ in range(args.trials)]
        told = trials[0].told
        if told != len(notices):
            print(f"  {name}: {told} of {len(notices)} notices told")
            return 1
        processor = statistics.median(t.processor for t in trials) / told
        wall = statistics.median(t.wall for t in trials) / told
        print(
            f"  {name:<20} {told} notices: {trials[0].statements / told:.2f} statements, "
            f"processor {processor * 1000:.3f} ms, wall {wall * 1000:.3f} ms"
        )
    if bench.limit_seconds > 0:
        print(f"limit of this run: {bench.measure_limit(clients=1)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wallets", type=int, default=300)
    parser.add_argument("--payments", type=int, default=1_200)
    parser.add_argument("--notices", type=int, default=1_000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep an earlier run's database")
    harness.add_redis_arguments(parser)
    harness.add_limit_arguments(parser, seconds=0.0)
    args = parser.parse_args()
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)
    with harness.Bench("drains", redis=redis, limit_seconds=args.limit_seconds) as bench:
        return run(bench, args)


if __name__ == "__main__":
    raise SystemExit(main())
