"""Benchmark: a campaign over N beneficiaries (100,000 by default) on PostgreSQL.

Builds a funder who helps N people with eligibility profiles (seeded, so every run builds the
same population), a program with five criteria of different kinds, and a campaign. Then times:

- a first full run, which evaluates everyone and writes the proposals (median of --repeat runs,
  the proposals deleted between two);
- the same run again, which must propose nobody new;
- a re-evaluation of 1,000 people whose data changed, as the profile service queues it;
- an agent accepting 500 proposals in bulk (grants through the allocation service).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_campaign \
        .venv/bin/python bench/campaign.py [--people 100000] [--repeat 3]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
os.environ.setdefault("SMS_BACKEND", "notifications.channels.OutboxSMSBackend")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.authorize import recreate_database

BATCH = 5_000


def build_population(funder, people: int, seed: int = 10) -> list[int]:
    """N beneficiaries with wallets, enrolments and profiles, by bulk inserts."""
    from funders.models import BeneficiaryProfile, Enrolment
    from wallet.models import Beneficiary, Wallet

    rng = random.Random(seed)
    departements = ["38000", "38100", "73000", "69001", "26000", "05000"]
    ids = []
    for start in range(0, people, BATCH):
        count = min(BATCH, people - start)
        persons = Beneficiary.objects.bulk_create(
            Beneficiary(
                first_name="Camille",
                last_name=f"Martin{start + n}",
                email=f"camille.martin{start + n}@example.org",
                postcode=rng.choice(departements),
            )
            for n in range(count)
        )
        Wallet.objects.bulk_create(Wallet(beneficiary=person) for person in persons)
        enrolments = Enrolment.objects.bulk_create(
            Enrolment(funder=funder, beneficiary=person, reference=f"D{person.pk:07d}")
            for person in persons
        )
        profiles = []
        for enrolment in enrolments:
            size = rng.randint(1, 6)
            profiles.append(
                BeneficiaryProfile(
                    enrolment=enrolment,
                    birth_date=date(1930, 1, 1) + timedelta(days=rng.randint(0, 33_000)),
                    household_size=size,
                    dependent_children=rng.randint(0, size - 1),
                    income_bracket=rng.randint(1, 10),
                    attributes={"statut": rng.choice(["rsa", "aah", "salarie", "retraite"])},
                    legal_basis="public_task",
                )
            )
        BeneficiaryProfile.objects.bulk_create(profiles)
        ids += [person.pk for person in persons]
    return ids


def timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database this script may recreate")
    recreate_database(url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from funders.campaigns import (
        campaign_create,
        campaign_run,
        campaigns_reevaluate,
        proposal_accept_many,
    )
    from funders.models import Allocation, CampaignRun, EligibilityCriterion, Funder, Proposal
    from funders.services import allocation_create, program_create, program_fund
    from tests.factories import siret
    from wallet.models import Beneficiary

    call_command("migrate", verbosity=0)
    funder = Funder.objects.create(name="Bench", siret=siret(1), kind="departement")
    program = program_create(funder=funder, name="Chèque énergie seniors")
    program_fund(program=program, amount=10**10, idempotency_key="fund")
    other = program_create(funder=funder, name="Aide alimentaire")
    program_fund(program=other, amount=10**10, idempotency_key="fund-other")

    _, build_s = timed(lambda: build_population(funder, args.people))
    ids = list(funder.enrolments.values_list("beneficiary_id", flat=True).order_by("pk"))
    # Some already hold the aid, some hold another aid the criteria exclude.
    now = django.utils.timezone.now()
    for n, person in enumerate(Beneficiary.objects.filter(pk__in=ids[:200])):
        allocation_create(
            program=program if n % 2 else other,
            beneficiary=person,
            amount=1_000,
            valid_from=now,
            valid_until=None,
            idempotency_key=f"seed:{person.pk}",
        )
    for kind, fields in [
        ("departement", {"values": ["38", "73", "26"]}),
        ("age", {"minimum": 60}),
        ("household_size", {"maximum": 4}),
        ("income_bracket", {"maximum": 6}),
        ("other_aid", {"other_program": other, "aid_condition": "does_not_hold"}),
    ]:
        criterion = EligibilityCriterion(program=program, kind=kind, **fields)
        criterion.full_clean()
        criterion.save()
    campaign = campaign_create(program=program, name="Hiver", amount=5_000, amount_per_child=1_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    def full_run():
        return campaign_run(campaign=campaign, trigger=CampaignRun.Trigger.ON_DEMAND)

    first_times = []
    for attempt in range(args.repeat):
        if attempt:
            Proposal.history.model.objects.all().delete()
            Proposal.objects.all().delete()
        run, seconds = timed(full_run)
        first_times.append(seconds)
    again, again_s = timed(full_run)

    changed = ids[-1_000:]
    Proposal.objects.filter(beneficiary_id__in=changed[:500]).update(status="withdrawn")
    _, change_s = timed(lambda: campaigns_reevaluate(funder_id=funder.pk, beneficiary_ids=changed))
    partial = CampaignRun.objects.filter(trigger="data_change").latest("pk")

    to_accept = list(Proposal.objects.filter(campaign=campaign, status="pending")[:500])
    result, accept_s = timed(lambda: proposal_accept_many(proposals=to_accept, by=None))

    duplicates = (
        Proposal.objects.filter(status="pending")
        .values("beneficiary")
        .annotate(n=django.db.models.Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    print(f"population: {args.people} people built in {build_s:.1f} s")
    print(
        f"first run: median {statistics.median(first_times):.2f} s over {args.repeat} "
        f"({', '.join(f'{t:.2f}' for t in first_times)}); "
        f"{args.people / statistics.median(first_times):,.0f} people/s"
    )
    print(
        f"  evaluated {run.evaluated}, eligible {run.eligible}, already holding "
        f"{run.already_holding}, proposed {run.proposed}"
    )
    print(f"same run again: {again_s:.2f} s, proposed {again.proposed} (must be 0)")
    print(
        f"data change of 1,000 people: {change_s:.2f} s, proposed {partial.proposed}, "
        f"withdrawn {partial.withdrawn}"
    )
    print(
        f"bulk acceptance of {len(to_accept)}: {accept_s:.2f} s "
        f"({len(result.accepted) / accept_s:.0f} grants/s), accepted {len(result.accepted)}"
    )
    print(f"people with two pending proposals: {duplicates} (must be 0)")
    print(f"allocations: {Allocation.objects.count()}")


if __name__ == "__main__":
    main()
