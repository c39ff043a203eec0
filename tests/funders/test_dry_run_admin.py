"""The dry run on the program's page: "Test these rules", the result, and a rule change saved
only with the dry run its author read; who reaches which dry run."""

import html
from datetime import timedelta

import pytest
from django.utils import timezone

from engine.request import AuthorizationRequest
from funders.dry_runs import rule_dry_run_execute
from funders.models import RuleDryRun
from merchants.payments import merchant_place
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_program,
    make_staff,
)
from tests.funders.conftest import client_for, with_tested_rules
from wallet.authorize import authorize
from wallet.models import Decision

pytestmark = pytest.mark.django_db


def change_url(program) -> str:
    return f"/admin/funders/program/{program.pk}/change/"


def form_data(program, **fields) -> dict:
    return {
        "name": program.name,
        "purpose": program.purpose,
        "is_active": "on",
        "dry_run_days": "90",
        "criteria-TOTAL_FORMS": "0",
        "criteria-INITIAL_FORMS": "0",
        **fields,
    }


@pytest.fixture
def program(funder):
    program = make_program(funder=funder, rules={"limits": {"per_payment": 5_000}})
    merchant = make_merchant(trade_name="Épicerie du Drac")
    person = BeneficiaryFactory()
    make_allocation(
        program=program,
        beneficiary=person,
        amount=10_000,
        valid_from=timezone.now() - timedelta(days=10),
    )
    for n, amount in enumerate([4_000, 1_000]):
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
            idempotency_key=f"admin-dry-run-{n}",
        )
    assert Decision.objects.filter(status="approved").count() == 2
    return program


def test_a_manager_tests_new_rules_reads_the_result_and_saves_them(manager, program):
    client = client_for(manager)
    data = form_data(program, limit_per_payment="30")
    started = client.post(change_url(program), {**data, "_dry_run": "1"})
    assert started.status_code == 302
    dry_run = RuleDryRun.objects.get()
    assert dry_run.rules == {"limits": {"per_payment": 3_000}}
    assert dry_run.created_by == manager
    # Still queued: the page says it runs, and it cannot be confirmed yet.
    waiting = client.get(started.url)
    assert "refresh" in waiting.content.decode()
    assert waiting.context["confirm_url"] is None
    rule_dry_run_execute(dry_run=dry_run)
    page = client.get(started.url)
    text = html.unescape(page.content.decode())
    assert "Épicerie du Drac" in text
    assert "40,00" in text  # the 40 € payment would be refused
    [lost, gained] = page.context["kinds"]
    assert (lost["count"], lost["people"], gained["count"]) == (1, 1, 0)
    # The program's form with the tested rules and the dry run it confirms.
    form_page = client.get(page.context["confirm_url"])
    form = form_page.context["adminform"].form
    assert form.initial["limit_per_payment"] == 3_000
    assert form.initial["confirms_dry_run"] == dry_run.pk
    assert form_page.context["confirming_dry_run"] == dry_run
    assert f"n°{dry_run.pk}" in html.unescape(form_page.content.decode())  # French by default
    saved = client.post(change_url(program), {**data, "confirms_dry_run": str(dry_run.pk)})
    assert saved.status_code == 302
    program.refresh_from_db()
    assert program.rules == {"limits": {"per_payment": 3_000}}


def test_a_rule_change_without_its_dry_run_is_refused(manager, program):
    client = client_for(manager)
    untested = client.post(change_url(program), form_data(program, limit_per_payment="30"))
    assert untested.status_code == 200
    [error] = untested.context["adminform"].form.non_field_errors().as_data()
    assert error.code == "dry_run_required"
    # A dry run of other rules does not confirm these.
    other = with_tested_rules(
        client, change_url(program), form_data(program, limit_per_payment="20")
    )
    response = client.post(
        change_url(program),
        form_data(program, limit_per_payment="30", confirms_dry_run=other["confirms_dry_run"]),
    )
    assert response.status_code == 200
    program.refresh_from_db()
    assert program.rules == {"limits": {"per_payment": 5_000}}


def test_a_dry_run_not_yet_read_confirms_nothing(manager, program):
    client = client_for(manager)
    data = form_data(program, limit_per_payment="30")
    client.post(change_url(program), {**data, "_dry_run": "1"})
    dry_run = RuleDryRun.objects.get()
    rule_dry_run_execute(dry_run=dry_run)  # finished, but its page was never opened
    response = client.post(change_url(program), {**data, "confirms_dry_run": str(dry_run.pk)})
    assert response.status_code == 200
    program.refresh_from_db()
    assert program.rules == {"limits": {"per_payment": 5_000}}


def test_other_fields_change_without_a_dry_run(manager, program):
    client = client_for(manager)
    response = client.post(
        change_url(program), form_data(program, name="Nouveau nom", limit_per_payment="50")
    )
    assert response.status_code == 302
    program.refresh_from_db()
    assert program.name == "Nouveau nom"


def test_who_reaches_a_dry_run(manager, agent, other_manager, other_funder, program):
    client = client_for(manager)
    with_tested_rules(client, change_url(program), form_data(program, limit_per_payment="30"))
    dry_run = RuleDryRun.objects.get()
    url = f"/admin/funders/program/{program.pk}/dry-run/{dry_run.pk}/"
    assert client_for(other_manager).get(url).status_code == 404
    assert client_for(agent).get(url).status_code == 403
    # Another funder's program and its dry run are not reachable through ours, nor ours through it.
    theirs = make_program(funder=other_funder)
    assert client.get(f"/admin/funders/program/{theirs.pk}/dry-run/{dry_run.pk}/").status_code == (
        404
    )
    # An agent cannot start one.
    started = client_for(agent).post(
        change_url(program), {**form_data(program, limit_per_payment="30"), "_dry_run": "1"}
    )
    assert started.status_code == 403
    assert RuleDryRun.objects.count() == 1
    # Another manager of the same funder reads it, but saving from it is its author's.
    colleague = make_staff(funder=program.funder)
    assert client_for(colleague).get(url).status_code == 200
    response = client_for(colleague).post(
        change_url(program),
        form_data(program, limit_per_payment="30", confirms_dry_run=str(dry_run.pk)),
    )
    assert response.status_code == 200
