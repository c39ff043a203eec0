"""Benchmark: a campaign over N beneficiaries (100,000 by default) on PostgreSQL.

Builds a funder who helps N people with eligibility profiles (seeded, so every run builds the
same population), a program with five criteria of different kinds, and a campaign. Then times:

- a first full run, which evaluates everyone and writes the proposals (median of --repeat runs,
  the proposals deleted between two);
- the same run again, which must propose nobody new;
- a re-evaluation of 1,000 people whose data changed, as the profile service queues it;
- an agent accepting 500 proposals in bulk (grants through the allocation service).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_campaign \
        .venv/bin/python -m bench.campaign [--people 100000] [--repeat 3]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
The exit status is 1 if the ledger does not verify afterwards.
"""

import argparse
import random
import statistics
import sys
import time
from datetime import date, timedelta

from bench import harness, scenario

BATCH = 5_000


def build_population(funder, people: int, seed: int = 10) -> list[int]:
    """N beneficiaries with wallets, enrolments and profiles, by bulk inserts."""
    from funders.models import BeneficiaryProfile, Enrolment
    from tests.factories import BeneficiaryFactory
    from wallet.models import Beneficiary, Wallet

    rng = random.Random(seed)
    departements = ["38000", "38100", "73000", "69001", "26000", "05000"]
    ids = []
    for start in range(0, people, BATCH):
        count = min(BATCH, people - start)
        persons = Beneficiary.objects.bulk_create(
            BeneficiaryFactory.build(
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with harness.Bench("campaign") as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup(eager_tasks=True)
    from django.db.models import Count
    from django.utils import timezone

    from funders.campaigns import (
        campaign_create,
        campaign_run,
        campaigns_reevaluate,
        proposal_accept_many,
    )
    from funders.models import Allocation, CampaignRun, EligibilityCriterion, Proposal
    from tests.factories import FunderFactory, make_allocation, make_program, siret
    from wallet.models import Beneficiary

    funder = FunderFactory(name="Bench", siret=siret(1))
    program = make_program(funder=funder, name="Chèque énergie seniors", funded=10**10)
    other = make_program(funder=funder, name="Aide alimentaire", funded=10**10)

    _, build_s = timed(lambda: build_population(funder, args.people))
    ids = list(funder.enrolments.values_list("beneficiary_id", flat=True).order_by("pk"))
    # Some already hold the aid, some hold another aid the criteria exclude.
    now = timezone.now()
    for n, person in enumerate(Beneficiary.objects.filter(pk__in=ids[:200])):
        make_allocation(
            program=program if n % 2 else other,
            beneficiary=person,
            amount=1_000,
            valid_from=now,
            days=None,
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
    scenario.analyze()

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
        .annotate(n=Count("pk"))
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
    return 0 if bench.verify_ledger() else 1


if __name__ == "__main__":
    sys.exit(main())
