"""An agent answers a call, in a real browser: finds the person by the phone number they give,
reads on their file why a payment was refused (the words the person read in the app), and
freezes the card they lost. Every page the agent goes through is audited with axe-core."""

from datetime import date

import pytest
from playwright.sync_api import expect

from core.time import end_of_day
from funders.models import Membership
from funders.services import beneficiary_enrol
from merchants.payments import payment_authorize
from tests.browser.axe import audit
from tests.browser.signin import admin_sign_in
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
    make_staff,
)
from wallet.models import Card

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def call():
    funder = FunderFactory(name="Département de l'Isère")
    make_staff(funder=funder, role=Membership.Role.AGENT, username="sofiane", first_name="Sofiane")
    person = BeneficiaryFactory(first_name="Awa", last_name="Diallo", phone="+33670000022")
    beneficiary_enrol(funder=funder, beneficiary=person, reference="DOS-2026-0042")
    program = make_program(
        funder=funder,
        name="Aide alimentaire",
        rules={"categories": {"allow_groups": ["food"]}},
    )
    make_allocation(
        program=program,
        beneficiary=person,
        amount=15_000,
        valid_until=end_of_day(date.today().replace(year=date.today().year + 1)),
    )
    card = Card.objects.create(wallet=person.wallet, kind="virtual", status="active", last4="4242")
    grocery = make_merchant(trade_name="Épicerie du Cours Berriat")
    bar = make_merchant(trade_name="Bar du Centre", mcc="5813")
    for shop, amount in ((grocery, 1_250), (bar, 1_800)):
        payment_authorize(
            merchant=shop,
            amount=amount,
            currency="EUR",
            payment_code=make_payment_code(person.wallet),
        )
    return person, card


def test_an_agent_answers_a_call_from_the_person_s_file(live_server, page, call, screenshot):
    _person, card = call
    admin = f"{live_server.url}/admin"
    admin_sign_in(page, admin, "sofiane")
    assert audit(page, "back office: home (agent)") == []

    # the person gives their phone number, as they say it
    page.goto(f"{admin}/wallet/beneficiary/")
    page.fill("#searchbar", "06 70 00 00 22")
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    assert audit(page, "back office: people found") == []
    page.click("#result_list tbody tr a")

    # the file: the aid, its balance and validity, and why the payment at the bar was refused
    file = page.locator(".person-file")
    expect(file).to_contain_text("Aide alimentaire")
    expect(file).to_contain_text("150,00")
    expect(file).to_contain_text("inclus")
    refusal = file.locator("tr.refused")
    expect(refusal).to_contain_text("Bar du Centre")
    expect(refusal).to_contain_text("cette aide ne peut pas être utilisée dans ce type de commerce")
    # the raw code only behind "technical details"
    expect(refusal.locator("pre")).not_to_be_visible()
    refusal.get_by_text("Détails techniques").click()
    expect(refusal.locator("pre")).to_contain_text("merchant_category_not_allowed")
    assert audit(page, "back office: the person's file") == []
    screenshot(page, "back-office-person-file")

    # the card is lost: the agent freezes it while the person is on the phone
    page.get_by_role("button", name="Geler la carte").click()
    expect(page.locator(".messagelist")).to_contain_text("gelée")
    expect(page.get_by_role("button", name="Dégeler la carte")).to_be_visible()
    card.refresh_from_db()
    assert card.status == Card.Status.FROZEN
    assert audit(page, "back office: the file after freezing the card") == []
    screenshot(page, "back-office-person-file-card-frozen")


# The lists an agent reads, each audited and each fitting a 1366 px wide screen.
AGENT_LISTS = [
    ("wallet/beneficiary/", "people"),
    ("wallet/decision/", "payments"),
    ("funders/allocation/", "grants"),
    ("wallet/notification/", "messages"),
    ("wallet/card/", "cards"),
    ("wallet/contactchangerequest/", "contact changes"),
    ("funders/proposal/", "proposals"),
]


def test_the_lists_an_agent_reads_fit_1366_px_and_pass_the_audit(live_server, page, call):
    page.set_viewport_size({"width": 1366, "height": 768})
    admin = f"{live_server.url}/admin"
    admin_sign_in(page, admin, "sofiane")
    for path, name in AGENT_LISTS:
        page.goto(f"{admin}/{path}")
        expect(page.locator("#changelist")).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 1366, f"the list of {name} is {width} px wide"
        assert audit(page, f"back office: the list of {name}") == []
