"""The dry run on an allocation's page: one person's rule overrides are tested on their past
payments before they are saved, as a program's rules are; who reaches which."""

from datetime import timedelta

import pytest
from django.utils import timezone

from engine.request import AuthorizationRequest
from funders.dry_runs import rule_dry_run_execute
from funders.models import Allocation, RuleDryRun
from merchants.payments import merchant_place
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from tests.funders.conftest import client_for, with_tested_rules
from wallet.authorize import authorize

pytestmark = pytest.mark.django_db

PROGRAM_RULES = {"limits": {"per_payment": 5_000}, "categories": {"allow_groups": ["food"]}}


def change_url(allocation) -> str:
    return f"/admin/funders/allocation/{allocation.pk}/change/"


def form_data(**fields) -> dict:
    return {"allow_groups": ["food"], "dry_run_days": "90", **fields}


@pytest.fixture
def allocation(funder):
    program = make_program(funder=funder, rules=PROGRAM_RULES)
    merchant = make_merchant(trade_name="Épicerie du Drac")
    people = [BeneficiaryFactory(), BeneficiaryFactory()]
    allocations = [
        make_allocation(
            program=program,
            beneficiary=person,
            amount=10_000,
            valid_from=timezone.now() - timedelta(days=10),
        )
        for person in people
    ]
    # Both people pay 40 € then 10 €: only the first person's are this allocation's.
    for n, (person, amount) in enumerate([(p, a) for p in people for a in (4_000, 1_000)]):
        authorize(
            request=AuthorizationRequest(
                amount=amount,
                currency="EUR",
                merchant=merchant_place(merchant),
                at=timezone.now(),
                channel="api",
            ),
            wallet=person.wallet,
            credit_account=merchant.payable_account,
            merchant_id=merchant.pk,
            idempotency_key=f"allocation-dry-run-{n}",
        )
    return allocations[0]


def test_a_manager_tests_an_override_reads_it_and_saves_it(manager, allocation):
    client = client_for(manager)
    page = client.get(change_url(allocation))
    # The form shows the person's rules whole: the program's, none overridden yet.
    assert page.context["adminform"].form.initial["limit_per_payment"] == 5_000
    data = form_data(limit_per_payment="30")
    started = client.post(change_url(allocation), {**data, "_dry_run": "1"})
    assert started.status_code == 302
    dry_run = RuleDryRun.objects.get()
    assert started.url == f"/admin/funders/allocation/{allocation.pk}/dry-run/{dry_run.pk}/"
    # What is tested and saved is the override: the section that differs from the program's.
    assert (dry_run.program, dry_run.allocation, dry_run.rules) == (
        allocation.program,
        allocation,
        {"limits": {"per_payment": 3_000}},
    )
    rule_dry_run_execute(dry_run=dry_run)
    result = client.get(started.url)
    # Only this person's payments are read, and their 40 € one would be refused.
    dry_run.refresh_from_db()
    assert dry_run.result["decisions"] == 2
    [lost, gained] = result.context["kinds"]
    assert (lost["count"], lost["people"], gained["count"]) == (1, 1, 0)
    form_page = client.get(result.context["confirm_url"])
    form = form_page.context["adminform"].form
    assert form.initial["limit_per_payment"] == 3_000
    assert form.initial["confirms_dry_run"] == dry_run.pk
    saved = client.post(change_url(allocation), {**data, "confirms_dry_run": str(dry_run.pk)})
    assert saved.status_code == 302
    allocation.refresh_from_db()
    assert allocation.rules == {"limits": {"per_payment": 3_000}}
    allocation.program.refresh_from_db()
    assert allocation.program.rules == PROGRAM_RULES


def test_lifting_a_program_rule_saves_null(manager, allocation):
    client = client_for(manager)
    data = with_tested_rules(client, change_url(allocation), form_data())
    assert client.post(change_url(allocation), data).status_code == 302
    allocation.refresh_from_db()
    assert allocation.rules == {"limits": None}


def test_an_override_change_without_its_own_dry_run_is_refused(manager, allocation):
    client = client_for(manager)
    untested = client.post(change_url(allocation), form_data(limit_per_payment="30"))
    assert untested.status_code == 200
    [error] = untested.context["adminform"].form.non_field_errors().as_data()
    assert error.code == "dry_run_required"
    # The program's dry run of the same rules does not confirm one person's override.
    program = allocation.program
    programs = with_tested_rules(
        client,
        f"/admin/funders/program/{program.pk}/change/",
        {
            "name": program.name,
            "purpose": program.purpose,
            "is_active": "on",
            "criteria-TOTAL_FORMS": "0",
            "criteria-INITIAL_FORMS": "0",
            **form_data(limit_per_payment="30"),
        },
    )
    response = client.post(
        change_url(allocation),
        form_data(limit_per_payment="30", confirms_dry_run=programs["confirms_dry_run"]),
    )
    assert response.status_code == 200
    allocation.refresh_from_db()
    assert allocation.rules == {}


def test_who_reaches_an_allocations_dry_run(manager, agent, other_manager, allocation):
    client = client_for(manager)
    with_tested_rules(client, change_url(allocation), form_data(limit_per_payment="30"))
    dry_run = RuleDryRun.objects.get()
    url = f"/admin/funders/allocation/{allocation.pk}/dry-run/{dry_run.pk}/"
    # Another funder's manager: neither the allocation nor its dry run exist for them.
    assert client_for(other_manager).get(change_url(allocation)).status_code == 404
    assert client_for(other_manager).get(url).status_code == 404
    # An agent reads the allocation, does not test nor change its rules.
    assert client_for(agent).get(url).status_code == 403
    agent_page = client_for(agent).get(change_url(allocation))
    assert agent_page.status_code == 200
    assert 'name="limit_per_payment"' not in agent_page.content.decode()
    started = client_for(agent).post(
        change_url(allocation), {**form_data(limit_per_payment="20"), "_dry_run": "1"}
    )
    assert started.status_code == 403
    assert RuleDryRun.objects.count() == 1
    # The dry run is not reachable through another allocation, even of the same program.
    other = Allocation.objects.exclude(pk=allocation.pk).get()
    assert client.get(
        f"/admin/funders/allocation/{other.pk}/dry-run/{dry_run.pk}/"
    ).status_code == (404)


def test_an_ended_allocations_rules_are_not_changed(manager, allocation):
    Allocation.objects.filter(pk=allocation.pk).update(status=Allocation.Status.REVOKED)
    client = client_for(manager)
    page = client.get(change_url(allocation))
    assert 'name="limit_per_payment"' not in page.content.decode()
    response = client.post(change_url(allocation), {**form_data(), "_dry_run": "1"})
    assert response.status_code == 403
