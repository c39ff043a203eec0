"""A funder's manager, in a real browser: signs in, creates a program with rules, funds it,
grants aid to several beneficiaries at once, and reads it on the program's dashboard."""

import pytest
import time_machine
from playwright.sync_api import expect

from funders.models import Allocation, Membership, Program
from funders.services import beneficiary_enrol
from merchants.payments import payment_authorize
from tests.browser.signin import admin_sign_in
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_merchant,
    make_payment_code,
    make_staff,
)
from wallet.models import Card

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team():
    funder = FunderFactory(name="Département de l'Isère")
    manager = make_staff(
        funder=funder, role=Membership.Role.MANAGER, username="claire", first_name="Claire"
    )
    people = [BeneficiaryFactory(last_name=name) for name in ("Bernard", "Dupont", "Moreau")]
    for person in people:
        beneficiary_enrol(funder=funder, beneficiary=person)
    return funder, manager, people


def test_a_manager_creates_a_program_grants_aid_in_bulk_and_sees_the_dashboard(
    live_server, page, team, screenshot
):
    funder, _, people = team
    admin = f"{live_server.url}/admin"

    # signs in
    admin_sign_in(page, admin, "claire")

    # creates a program: food shops of Isère, 30 € per payment at most
    page.goto(f"{admin}/funders/program/add/")
    page.select_option("#id_funder", str(funder.pk))
    page.fill("#id_name", "Aide alimentaire hiver")
    page.check("input[name=allow_groups][value=food]")
    page.select_option("#id_departements_from", "38")
    page.click("#id_departements_add")
    page.fill("#id_limit_per_payment", "30")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("Aide alimentaire hiver")
    program = Program.objects.get(name="Aide alimentaire hiver")
    assert program.rules["zone"] == {"departements": ["38"]}
    assert program.rules["limits"] == {"per_payment": 3000}

    # the rules read back in plain words
    page.goto(f"{admin}/funders/program/{program.pk}/change/")
    expect(page.locator("body")).to_contain_text("Isère")

    # funds it by a recorded bank transfer
    page.click(f'a[href="/admin/funders/program/{program.pk}/fund/"]')
    page.fill("#id_amount", "1 000")
    page.fill("#id_reference", "VIR-2026-11-001")
    page.fill("#id_received_on", "2026-11-20")
    page.click("input[type=submit]")
    expect(page.locator(".messagelist")).to_be_visible()

    # grants 50 € to the three beneficiaries at once
    page.goto(f"{admin}/wallet/beneficiary/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "grant_aid")
    page.click("button[name=index]")
    page.select_option("#id_program", str(program.pk))
    page.fill("#id_amount", "50")
    page.fill("#id_valid_from", "2026-12-01")
    page.fill("#id_valid_until", "2027-03-31")
    page.click("input[name=grant]")
    expect(page.locator(".messagelist")).to_contain_text("3")
    assert Allocation.objects.filter(program=program).count() == 3
    assert {a.beneficiary for a in Allocation.objects.filter(program=program)} == set(people)

    # the beneficiaries pay at a grocery in Grenoble (through the merchant API's services)
    shop = make_merchant(trade_name="Épicerie du Cours Berriat")
    for person, amount in zip(people, (1_250, 2_000, 990), strict=True):
        card = Card.objects.create(wallet=person.wallet, kind="virtual", status="active")
        with time_machine.travel("2026-12-02 10:00 +01:00"):
            decision = payment_authorize(
                merchant=shop,
                amount=amount,
                currency="EUR",
                payment_code=make_payment_code(card.wallet),
                capture=True,
            )
        assert decision.approved_amount == amount
    with time_machine.travel("2026-12-03 10:00 +01:00"):
        refused = payment_authorize(
            merchant=shop, amount=4_500, currency="EUR", payment_code=make_payment_code(card.wallet)
        )
    assert refused.status == "declined"

    # sees it all on the program's dashboard, as figures and as charts
    page.goto(
        f"{admin}/funders/programdashboard/{program.pk}/change/?from=2026-12-01&to=2026-12-31"
    )
    body = page.locator("body")
    expect(body).to_contain_text("1 000,00")  # funded
    expect(body).to_contain_text("850,00")  # still to allocate
    expect(body).to_contain_text("42,40")  # spent
    expect(body).to_contain_text("Épicerie du Cours Berriat")
    expect(page.locator("svg.pygal-chart").first).to_be_visible()
    expect(body).not_to_contain_text("Nothing to show")  # the refused payment is counted too
    path = screenshot(page, "back-office-program-dashboard")
    assert path.stat().st_size > 10_000
