"""Benchmark: authorize() in-process against PostgreSQL.

Builds realistic wallets (3 pockets each, 5 rules per pocket: validity, days and hours,
categories, zone, per-period caps) in a database of its own, then runs N authorizations at
random wallets and merchants and prints throughput and latency percentiles.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench \
        .venv/bin/python bench/authorize.py [--authorizations 10000] [--wallets 1000]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
"""

import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an unusual database name: {name!r}")
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authorizations", type=int, default=10_000)
    parser.add_argument("--wallets", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database this script may recreate")
    recreate_database(url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from engine.request import AuthorizationRequest
    from funders.models import Funder
    from funders.services import allocation_create, program_create, program_fund
    from merchants.payments import merchant_place
    from merchants.services import merchant_approve, merchant_create
    from tests.factories import siret
    from wallet.authorize import authorize
    from wallet.models import Beneficiary, Wallet

    call_command("migrate", verbosity=0)
    rng = random.Random(args.seed)
    now = timezone.now()
    every_day = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "hours": [["00:00", "23:59"]]}
    programs = []
    funder = Funder.objects.create(name="Bench", siret=siret(1), kind="departement")
    for name, rules in [
        (
            "food",
            {
                "categories": {"allow_groups": ["food"]},
                "zone": {"departements": ["38", "73"]},
                "schedule": every_day,
                "limits": {"day": 20_000, "month": 200_000},
            },
        ),
        (
            "mobility",
            {
                "categories": {"allow_groups": ["transport"]},
                "zone": {"countries": ["FR"]},
                "schedule": every_day,
                "limits": {"week": 30_000, "per_payment": 10_000},
            },
        ),
        (
            "health",
            {
                "categories": {"allow_groups": ["health"]},
                "zone": {"postcode_prefixes": ["38", "69"]},
                "schedule": every_day,
                "limits": {"year": 500_000, "day": 50_000},
            },
        ),
    ]:
        program = program_create(funder=funder, name=name, rules=rules)
        program_fund(program=program, amount=10**11, idempotency_key=f"fund-{name}")
        programs.append(program)

    merchants = []
    for i, (mcc, postcode, commune) in enumerate(
        [
            ("5411", "38000", "38185"),
            ("5462", "38130", "38151"),
            ("4111", "38100", "38185"),
            ("5912", "69004", "69384"),
            ("5411", "73000", "73065"),
            ("5921", "38000", "38185"),
            ("4112", "75010", "75110"),
            ("5812", "38000", "38185"),
        ]
    ):
        merchant = merchant_create(
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
        merchants.append(merchant_approve(merchant=merchant))

    started = time.perf_counter()
    wallets = []
    for w in range(args.wallets):
        beneficiary = Beneficiary.objects.create(first_name="B", last_name=str(w))
        wallets.append(Wallet.objects.create(beneficiary=beneficiary))
        for program in programs:
            allocation_create(
                program=program,
                beneficiary=beneficiary,
                amount=rng.randrange(20_000, 80_000),
                valid_from=now - timedelta(days=rng.randrange(1, 30)),
                valid_until=now + timedelta(days=rng.randrange(30, 120)),
                idempotency_key=f"a-{w}-{program.pk}",
            )
    print(f"set-up: {args.wallets} wallets x 3 pockets in {time.perf_counter() - started:.1f} s")
    # Fresh tables have no statistics yet; autovacuum would gather them in production.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    places = {merchant.pk: merchant_place(merchant) for merchant in merchants}
    latencies = []
    outcomes = Counter()
    for i in range(args.authorizations):
        merchant = rng.choice(merchants)
        wallet = rng.choice(wallets)
        request = AuthorizationRequest(
            amount=rng.randrange(100, 6_000),
            currency="EUR",
            merchant=places[merchant.pk],
            at=timezone.now(),
            channel="api",
            partial_allowed=rng.random() < 0.2,
        )
        t0 = time.perf_counter()
        decision = authorize(
            request=request,
            wallet=wallet,
            credit_account=merchant.payable_account,
            merchant_id=merchant.pk,
            idempotency_key=f"bench-{i}",
        )
        latencies.append(time.perf_counter() - t0)
        outcomes[decision.reason or decision.status] += 1

    total = sum(latencies)
    cuts = statistics.quantiles(latencies, n=100)
    print(f"authorizations: {len(latencies)} in {total:.2f} s -> {len(latencies) / total:.0f}/s")
    print(
        f"latency: p50 {cuts[49] * 1000:.2f} ms, p99 {cuts[98] * 1000:.2f} ms, "
        f"max {max(latencies) * 1000:.2f} ms"
    )
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))


if __name__ == "__main__":
    main()
