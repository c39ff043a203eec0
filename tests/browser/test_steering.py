"""Steering aid in a real browser, in French: a manager tests a rule change on the program's
past payments, reads what it would have done and saves it; an agent works the list of people
not using their aid. Every page is audited (WCAG 2.1 AA) and screenshotted."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from engine.request import AuthorizationRequest
from funders.models import Enrolment, Membership, NonUseEpisode
from funders.nonuse import nonuse_detect
from merchants.payments import merchant_place
from tests.browser.axe import audit
from tests.browser.signin import admin_sign_in
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_merchant,
    make_program,
    make_staff,
)
from wallet.authorize import authorize

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def isere(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    funder = FunderFactory(name="Département de l'Isère")
    make_staff(funder=funder, role=Membership.Role.MANAGER, username="claire")
    make_staff(funder=funder, role=Membership.Role.AGENT, username="karim")
    program = make_program(
        funder=funder, funded=100_000, rules={"limits": {"per_payment": 5_000}}, name="Aide repas"
    )
    shop = make_merchant(trade_name="Épicerie du Drac")
    person = BeneficiaryFactory(first_name="Jeanne", last_name="Bernard")
    make_allocation(
        program=program,
        beneficiary=person,
        amount=10_000,
        valid_from=timezone.now() - timedelta(days=30),
    )
    Enrolment.objects.filter(funder=funder, beneficiary=person).update(reference="DOS-42")
    for n, amount in enumerate([4_000, 1_500]):
        authorize(
            request=AuthorizationRequest(
                amount=amount,
                currency="EUR",
                merchant=merchant_place(shop),
                at=timezone.now() - timedelta(days=25 - n),
                channel="api",
            ),
            wallet=person.wallet,
            credit_account=shop.payable_account,
            merchant_id=shop.pk,
            idempotency_key=f"browser-dry-run-{n}",
        )
    return program


def test_a_manager_runs_a_dry_run_reads_it_and_saves_the_rules(
    page, live_server, isere, screenshot
):
    admin = f"{live_server.url}/admin"
    admin_sign_in(page, admin, "claire")
    page.goto(f"{admin}/funders/program/{isere.pk}/change/")
    assert audit(page, "program form") == []
    page.fill("#id_limit_per_payment", "30")
    page.click("input[name=_dry_run]")
    summary = page.locator("#dry-run-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("2 paiements décidés à nouveau")
    expect(page.locator("#content")).to_contain_text("Épicerie du Drac")
    expect(page.locator("#content")).to_contain_text("DOS-42")
    assert audit(page, "dry run result") == []
    screenshot(page, "steering-dry-run-result")
    page.click("#dry-run-confirm")
    expect(page.locator("#id_limit_per_payment")).to_have_value("30,00")
    screenshot(page, "steering-dry-run-confirm")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_be_visible()
    isere.refresh_from_db()
    assert isere.rules == {"limits": {"per_payment": 3_000}}


def test_a_manager_tests_one_persons_rules_before_saving_them(page, live_server, isere, screenshot):
    """An allocation's overrides go through their own dry run, on that person's payments."""
    allocation = isere.allocations.get()
    admin = f"{live_server.url}/admin"
    admin_sign_in(page, admin, "claire")
    page.goto(f"{admin}/funders/allocation/{allocation.pk}/change/")
    assert audit(page, "allocation form") == []
    expect(page.locator("#id_limit_per_payment")).to_have_value("50,00")
    page.fill("#id_limit_per_payment", "30")
    page.click("input[name=_dry_run]")
    expect(page.locator("#dry-run-summary")).to_contain_text("2 paiements décidés à nouveau")
    expect(page.locator("#content")).to_contain_text("DOS-42")
    assert audit(page, "allocation dry run result") == []
    screenshot(page, "steering-allocation-dry-run-result")
    page.click("#dry-run-confirm")
    expect(page.locator("#id_limit_per_payment")).to_have_value("30,00")
    assert audit(page, "allocation form, confirming its dry run") == []
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_be_visible()
    allocation.refresh_from_db()
    assert allocation.rules == {"limits": {"per_payment": 3_000}}
    isere.refresh_from_db()
    assert isere.rules == {"limits": {"per_payment": 5_000}}


def test_an_agent_works_the_non_use_list(page, live_server, isere, screenshot):
    isere.nonuse_idle_days = 14
    isere.save()
    # Jeanne paid (her decisions are recorded now); Paul never did in 30 days.
    paul = BeneficiaryFactory(first_name="Paul", last_name="Dupont", phone="+33612345678")
    make_allocation(
        program=isere,
        beneficiary=paul,
        amount=5_000,
        valid_from=timezone.now() - timedelta(days=30),
    )
    assert nonuse_detect() == 1
    admin = f"{live_server.url}/admin"
    admin_sign_in(page, admin, "karim")
    page.goto(f"{admin}/funders/nonuseepisode/")
    expect(page.locator("#result_list")).to_contain_text("06 12 34 56 78")
    assert audit(page, "non-use worklist") == []
    screenshot(page, "steering-nonuse-list")
    page.locator("#result_list tbody a").first.click()
    page.select_option("#id_calls-0-outcome", "reached")
    page.fill("#id_calls-0-note", "Ira au marché samedi")
    assert audit(page, "non-use episode form") == []
    screenshot(page, "steering-nonuse-episode")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_be_visible()
    episode = NonUseEpisode.objects.get()
    assert episode.status == NonUseEpisode.Status.DONE
    assert list(episode.calls.values_list("outcome", flat=True)) == ["reached"]
    page.goto(f"{admin}/funders/nonuseepisode/?status__exact=done")
    expect(page.locator("#result_list")).to_contain_text("Paul")
    assert audit(page, "non-use worklist, done") == []
