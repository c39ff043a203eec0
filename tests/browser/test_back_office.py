"""A funder's manager, in a real browser: signs in, creates a program with rules and a default
validity, sees that no shop accepts it and fixes the area, funds it, grants aid to several
beneficiaries at once (one already holds it: flagged, not granted twice), and reads it on the
program's dashboard."""

import pytest
import time_machine
from playwright.sync_api import expect

from funders.models import Allocation, Membership, Program
from funders.services import beneficiary_enrol
from merchants.models import Merchant
from merchants.payments import payment_authorize
from tests.browser.axe import audit
from tests.browser.charts import label_problems
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
def team(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the rule change's dry run, at once
    funder = FunderFactory(name="Département de l'Isère")
    manager = make_staff(
        funder=funder, role=Membership.Role.MANAGER, username="claire", first_name="Claire"
    )
    people = [BeneficiaryFactory(last_name=name) for name in ("Bernard", "Dupont", "Moreau")]
    for person in people:
        beneficiary_enrol(funder=funder, beneficiary=person)
    make_merchant(trade_name="Épicerie du Cours Berriat")  # in Grenoble (38)
    return funder, manager, people


def test_a_manager_creates_a_program_grants_aid_in_bulk_and_sees_the_dashboard(
    live_server, page, team, screenshot
):
    funder, _, people = team
    admin = f"{live_server.url}/admin"

    # signs in
    admin_sign_in(page, admin, "claire")

    # creates a program: food shops of Savoie (by mistake), 30 € per payment at most, valid
    # until 31 March 2027 by default; the funder is already chosen (the manager has one)
    page.goto(f"{admin}/funders/program/add/")
    expect(page.locator("#id_funder")).to_have_value(str(funder.pk))
    page.fill("#id_name", "Aide alimentaire hiver")
    page.check("input[name=allow_groups][value=food]")
    page.select_option("#id_departements_from", "73")
    page.click("#id_departements_add")
    page.fill("#id_limit_per_payment", "30")
    page.fill("#id_default_valid_until", "2027-03-31")
    # the live preview: the rules in plain words, and no shop in Savoie
    preview = page.locator("#rules-preview")
    expect(preview).to_contain_text("Savoie")
    expect(preview).to_contain_text("30,00")
    expect(preview).to_contain_text("Aucun commerce agréé n\u2019accepterait cette aide")
    assert audit(page, "back office: a new program") == []
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("Aide alimentaire hiver")
    program = Program.objects.get(name="Aide alimentaire hiver")
    assert program.rules["zone"] == {"departements": ["73"]}
    assert program.rules["limits"] == {"per_payment": 3000}
    assert str(program.default_valid_until) == "2027-03-31"

    # no shop accepts it: said on the program's page
    shops = page.locator("#accepting-shops")
    expect(shops).to_contain_text("Aucun commerce agréé n\u2019accepte cette aide")
    assert audit(page, "back office: a program no shop accepts") == []
    screenshot(page, "back-office-program-no-shop")

    # the manager fixes the area: Isère, where the grocery is
    page.select_option("#id_departements_to", "73")
    page.click("#id_departements_remove")
    page.select_option("#id_departements_from", "38")
    page.click("#id_departements_add")
    expect(preview).to_contain_text("1 commerce agréé accepterait cette aide")
    # a rule change is saved only after its dry run was seen: run, read, confirm, save
    page.click("input[name=_dry_run]")
    expect(page.locator("#dry-run-summary")).to_be_visible()
    page.click("#dry-run-confirm")
    page.click("input[name=_continue]")
    expect(shops).to_contain_text("1 commerce accepte cette aide")
    expect(shops).to_contain_text("Épicerie du Cours Berriat")
    # the rules read back in plain words
    expect(page.locator("body")).to_contain_text("Isère")

    # funds it by a recorded bank transfer
    page.click(f'a[href="/admin/funders/program/{program.pk}/fund/"]')
    page.fill("#id_amount", "1 000")
    page.fill("#id_reference", "VIR-2026-11-001")
    page.fill("#id_received_on", "2026-11-20")
    page.click("input[type=submit]")
    expect(page.locator(".messagelist")).to_be_visible()

    # grants 50 € to Bernard first, then to the three at once: the program's validity fills
    # the form, and Bernard, who already holds the aid, is flagged and not granted twice
    page.goto(f"{admin}/wallet/beneficiary/{people[0].pk}/grant/")
    expect(page.locator("#id_valid_until")).to_have_value("2027-03-31")
    page.fill("#id_amount", "50")
    page.fill("#id_valid_from", "2026-12-01")
    page.click("input[name=grant]")
    expect(page.locator(".messagelist")).to_contain_text("1")

    page.goto(f"{admin}/wallet/beneficiary/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "grant_aid")
    page.click("button[name=index]")
    page.select_option("#id_program", str(program.pk))
    expect(page.locator("#id_valid_until")).to_have_value("2027-03-31")
    page.fill("#id_amount", "50")
    page.fill("#id_valid_from", "2026-12-01")
    page.click("input[name=grant]")
    expect(page.locator(".holders")).to_contain_text("Bernard")
    expect(page.locator(".holders")).to_contain_text("31/03/2027")
    assert audit(page, "back office: grant, one person already holds the aid") == []
    screenshot(page, "back-office-grant-already-holds")
    assert Allocation.objects.filter(program=program).count() == 1
    page.click("input[name=grant]")
    expect(page.locator(".messagelist")).to_contain_text("2")
    granted = Allocation.objects.filter(program=program)
    assert granted.count() == 3
    assert {a.beneficiary for a in granted} == set(people)

    # the beneficiaries pay at the grocery in Grenoble (through the merchant API's services)
    shop = Merchant.objects.get(trade_name="Épicerie du Cours Berriat")
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
    assert audit(page, "back office: a program's dashboard") == []
    # key figures as tiles above the charts, and every chart label readable
    expect(page.locator(".tiles").first).to_contain_text("1 000,00")
    assert label_problems(page) == []
    expect(body).not_to_contain_text("Nothing to show")  # the refused payment is counted too
    path = screenshot(page, "back-office-program-dashboard")
    assert path.stat().st_size > 10_000
