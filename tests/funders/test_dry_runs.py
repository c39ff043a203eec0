"""Rule dry runs: a program's past payments decided again with proposed rules, on the balances
and spending recorded when each was decided (funders/dry_runs.py)."""

from datetime import datetime, timedelta

import pytest
import time_machine

from core.time import PARIS
from engine.request import AuthorizationRequest
from funders.dry_runs import (
    APPROVED_TO_REFUSED,
    REFUSED_TO_APPROVED,
    confirmable,
    replay,
    rule_dry_run_execute,
    rule_dry_run_seen,
    rule_dry_run_start,
)
from funders.models import Enrolment, RuleDryRun
from merchants.payments import merchant_place
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from wallet.authorize import authorize
from wallet.models import Decision

pytestmark = pytest.mark.django_db

GRENOBLE, SAINT_MARTIN = "38185", "38421"
RULES = {
    "categories": {"allow_groups": ["food"]},
    "zone": {"communes": [GRENOBLE, SAINT_MARTIN]},
    "schedule": {"weekdays": [0, 1, 2, 3, 4, 5]},
    "limits": {"per_payment": 5_000},
}
# A cap lowered, a commune removed, Sundays allowed.
PROPOSED = {
    "categories": {"allow_groups": ["food"]},
    "zone": {"communes": [GRENOBLE]},
    "limits": {"per_payment": 3_500},
}
MONDAY = datetime(2026, 11, 2, 10, tzinfo=PARIS)
TUESDAY = MONDAY + timedelta(days=1)
SUNDAY = MONDAY + timedelta(days=6)


def pay(merchant, beneficiary, amount, at):
    with time_machine.travel(at, tick=False):
        return authorize(
            request=AuthorizationRequest(
                amount=amount,
                currency="EUR",
                merchant=merchant_place(merchant),
                at=at,
                channel="api",
            ),
            wallet=beneficiary.wallet,
            credit_account=merchant.payable_account,
            merchant_id=merchant.pk,
            idempotency_key=f"dry-run-{Decision.objects.count()}",
        )


@pytest.fixture
def scenario(funder, other_funder):
    program = make_program(funder=funder, rules=RULES)
    grenoble = make_merchant(trade_name="Épicerie Grenoble", commune_code=GRENOBLE)
    saint_martin = make_merchant(
        trade_name="Épicerie Saint-Martin", commune_code=SAINT_MARTIN, postcode="38400"
    )
    people = [BeneficiaryFactory() for _ in range(3)]
    start = MONDAY - timedelta(days=7)
    for n, person in enumerate(people):
        make_allocation(program=program, beneficiary=person, amount=10_000, valid_from=start)
        Enrolment.objects.update_or_create(
            funder=funder, beneficiary=person, defaults={"reference": f"DOS-{n}"}
        )
    # Another funder's aid, held by someone our program does not help: never read.
    stranger = BeneficiaryFactory()
    other = make_program(funder=other_funder, rules={})
    make_allocation(program=other, beneficiary=stranger, amount=10_000, valid_from=start)
    decisions = {
        "monday_40": pay(grenoble, people[0], 4_000, MONDAY),
        "monday_saint_martin": pay(saint_martin, people[1], 3_000, MONDAY),
        "sunday_20": pay(grenoble, people[0], 2_000, SUNDAY),
        "tuesday_45": pay(grenoble, people[2], 4_500, TUESDAY),
        "tuesday_60": pay(grenoble, people[2], 6_000, TUESDAY),
        "stranger": pay(grenoble, stranger, 1_000, TUESDAY),
    }
    return program, people, decisions


def run(program, rules):
    return replay(
        program=program,
        rules=rules,
        since=MONDAY - timedelta(days=1),
        until=SUNDAY + timedelta(days=1),
    )


def test_the_recorded_decisions_are_what_was_decided(scenario):
    _program, _people, decisions = scenario
    statuses = {name: decision.status for name, decision in decisions.items()}
    assert statuses == {
        "monday_40": "approved",
        "monday_saint_martin": "approved",
        "sunday_20": "declined",
        "tuesday_45": "approved",
        "tuesday_60": "declined",
        "stranger": "approved",
    }
    assert set(decisions["monday_40"].trace["pockets"][0]["usage"]) == {
        "day",
        "week",
        "month",
        "year",
        "validity",
    }


def test_the_rules_in_force_flip_nothing(scenario):
    program, _people, _decisions = scenario
    result = run(program, RULES)
    assert (result["decisions"], result["replayed"], result["not_replayable"]) == (5, 5, 0)
    assert result["flips"][APPROVED_TO_REFUSED]["count"] == 0
    assert result["flips"][REFUSED_TO_APPROVED]["count"] == 0


def test_exact_flips_of_a_lower_cap_a_commune_removed_and_sundays_allowed(scenario):
    program, people, decisions = scenario
    result = run(program, PROPOSED)
    lost, gained = result["flips"][APPROVED_TO_REFUSED], result["flips"][REFUSED_TO_APPROVED]
    assert (lost["count"], lost["amount"], lost["people"]) == (3, 11_500, 3)
    assert (gained["count"], gained["amount"], gained["people"]) == (1, 2_000, 1)
    assert result["people"] == 3
    assert sorted(lost["by"]["reason"]) == [
        ["limit_exceeded", 2, 8_500, 2],
        ["outside_zone", 1, 3_000, 1],
    ]
    assert gained["by"]["reason"] == [["outside_allowed_hours", 1, 2_000, 1]]
    assert lost["by"]["commune"] == [[GRENOBLE, 2, 8_500, 2], [SAINT_MARTIN, 1, 3_000, 1]]
    assert [line[2:] for line in lost["by"]["shop"]] == [[2, 8_500, 2], [1, 3_000, 1]]
    assert lost["by"]["category"] == [["food", 3, 11_500, 3]]
    [sample] = gained["samples"]
    assert sample == {
        "decision": decisions["sunday_20"].pk,
        "beneficiary": people[0].pk,
        "file_number": "DOS-0",
        "amount": 2_000,
        "shop": "Épicerie Grenoble",
        "reason": "outside_allowed_hours",
    }
    assert {s["file_number"] for s in lost["samples"]} == {"DOS-0", "DOS-1", "DOS-2"}


def test_an_allocation_override_is_replayed_on_its_own_pocket_only(scenario):
    program, people, _decisions = scenario
    allocation = people[0].wallet.pockets.get().allocation
    result = replay(
        program=program,
        rules={"limits": {"per_payment": 1_000}},
        since=MONDAY - timedelta(days=1),
        until=SUNDAY + timedelta(days=1),
        allocation=allocation,
    )
    # Only the person's own Monday payment is read (their Sunday one was refused anyway).
    assert result["decisions"] == 2
    assert result["flips"][APPROVED_TO_REFUSED]["count"] == 1


def test_a_decision_recorded_without_its_snapshot_is_counted_not_replayed(scenario):
    program, _people, decisions = scenario
    trace = dict(decisions["monday_40"].trace)
    del trace["pockets"]
    Decision.objects.filter(pk=decisions["monday_40"].pk).update(trace=trace)
    result = run(program, PROPOSED)
    assert (result["replayed"], result["not_replayable"]) == (4, 1)
    assert result["flips"][APPROVED_TO_REFUSED]["count"] == 2


def test_a_dry_run_is_confirmable_once_done_and_seen_by_its_author(
    scenario, manager, other_manager, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    program, _people, _decisions = scenario
    with django_capture_on_commit_callbacks(execute=True):
        dry_run = rule_dry_run_start(
            program=program, rules=PROPOSED, by=manager, days=90, now=SUNDAY + timedelta(hours=5)
        )
    dry_run.refresh_from_db()
    assert dry_run.status == RuleDryRun.Status.DONE
    assert dry_run.result["flips"][APPROVED_TO_REFUSED]["count"] == 3
    assert (dry_run.processed, dry_run.total) == (5, 5)
    # Not yet seen: nothing to confirm.
    assert confirmable(program=program, dry_run_id=dry_run.pk, rules=PROPOSED, user=manager) is None
    rule_dry_run_seen(dry_run=dry_run)
    assert confirmable(program=program, dry_run_id=dry_run.pk, rules=PROPOSED, user=manager)
    # Other rules, another person, or nonsense: no.
    assert confirmable(program=program, dry_run_id=dry_run.pk, rules=RULES, user=manager) is None
    assert (
        confirmable(program=program, dry_run_id=dry_run.pk, rules=PROPOSED, user=other_manager)
        is None
    )
    assert confirmable(program=program, dry_run_id="x1", rules=PROPOSED, user=manager) is None
    # Run again, it changes nothing.
    assert rule_dry_run_execute(dry_run=dry_run).result == dry_run.result
