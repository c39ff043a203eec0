"""The app as a daily tool, on a 390 x 844 phone (issue 21): the tab bar, the total and the
Pay button on the home screen, the frozen card said there, who gives each aid and whom to call,
a history that shows what was really paid, the payment code and its countdown in view, and
where to spend an aid by postcode with a map drawn on the phone. Every screen is audited by
axe-core at WCAG 2.1 AA; screenshots are kept."""

import re
from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from funders.services import program_create, program_fund
from merchants.payments import payment_authorize, payment_capture
from tests.browser.axe import audit
from tests.browser.test_mobile_app import PHONE, check_accessible, sign_in_code
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
)
from wallet.models import Card

pytestmark = pytest.mark.django_db(transaction=True)

PARIS = ZoneInfo("Europe/Paris")
# A 2 x 2 PNG in the Isère blue: the funder's logo.
LOGO = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73000000104944415478da63"
    "e0f2ee01220608050016a203857d7c70530000000049454e44ae426082"
)


@pytest.fixture
def phone(browser, live_server, settings, tmp_path):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    settings.MEDIA_ROOT = tmp_path
    context = browser.new_context(base_url=live_server.url, **PHONE)
    page = context.new_page()
    # Nothing leaves the server: no map tiles, no fonts, no logo from elsewhere.
    page.elsewhere = []
    origin = urlsplit(live_server.url).netloc
    page.on(
        "request",
        lambda request: (
            page.elsewhere.append(request.url)
            if request.url.startswith("http") and urlsplit(request.url).netloc != origin
            else None
        ),
    )
    yield page
    context.close()


@pytest.fixture
def camille(db, settings, tmp_path):
    """Food aid until 30 September 2027 included, partly spent (a bill of 12.50 € of which the
    shop took 7.90 €, a 5 € payment not yet taken, a refusal at a bar); a pharmacy aid no shop
    accepts; a frozen card."""
    settings.MEDIA_ROOT = tmp_path
    funder = FunderFactory(name="Département de l'Isère", contact_phone="+33476000022")
    funder.logo.save("isere.png", ContentFile(LOGO))
    person = BeneficiaryFactory(
        first_name="Camille", email="camille.martin@example.org", phone="+33670000022"
    )
    pockets = {}
    for name, groups, amount in (
        ("Aide alimentaire", ["food"], 15_000),
        ("Aide pharmacie", ["health"], 4_000),
    ):
        program = program_create(
            funder=funder, name=name, rules={"categories": {"allow_groups": groups}}
        )
        program_fund(program=program, amount=100_000, idempotency_key=f"fund-{name}")
        pockets[name] = make_allocation(
            program=program,
            beneficiary=person,
            amount=amount,
            valid_from=datetime(2026, 1, 1, tzinfo=PARIS),
            valid_until=datetime(2027, 10, 1, tzinfo=PARIS),
        ).pocket
    Card.objects.create(wallet=person.wallet, kind="physical", status="frozen", last4="4242")
    grocer = make_merchant(trade_name="Épicerie du Vieux Temple")
    make_merchant(
        trade_name="Boulangerie des Arcades",
        address="7 avenue des États-Généraux",
        postcode="38130",
        city="Échirolles",
        commune_code="38151",
        latitude="45.14523",
        longitude="5.71970",
    )
    bar = make_merchant(trade_name="Bar du Centre", mcc="5813")
    wallet = person.wallet
    bill = payment_authorize(
        merchant=grocer, amount=1_250, currency="EUR", payment_code=make_payment_code(wallet)
    )
    payment_capture(merchant=grocer, decision=bill, idempotency_key="bill", amount=790)
    payment_authorize(
        merchant=grocer, amount=500, currency="EUR", payment_code=make_payment_code(wallet)
    )
    refused = payment_authorize(
        merchant=bar, amount=1_800, currency="EUR", payment_code=make_payment_code(wallet)
    )
    return person, pockets, refused


def sign_in(page, contact: str, recorded: str) -> None:
    page.goto("/app/")
    page.locator("input[autocomplete=username]").fill(contact)
    page.locator("form button[type=submit]").click()
    expect(page.locator("input[autocomplete=one-time-code]")).to_be_visible()
    page.locator("input[autocomplete=one-time-code]").fill(sign_in_code(recorded))
    page.locator("form button[type=submit]").click()
    expect(page.locator(".pocket")).to_have_count(2)


def visible_area_bottom(page) -> float:
    """The bottom of what the screen shows above the tab bar, page scrolled to the top."""
    page.evaluate("window.scrollTo(0, 0)")
    return page.locator("#nav").bounding_box()["y"]


def assert_above_the_fold(page, *selectors: str) -> None:
    bottom = visible_area_bottom(page)
    for selector in selectors:
        box = page.locator(selector).first.bounding_box()
        assert box is not None, selector
        assert box["y"] >= 0 and box["y"] + box["height"] <= bottom, (selector, box, bottom)


def test_home_history_and_pay_at_390_by_844(phone, camille, screenshot):
    _, _, refused = camille
    page = phone
    sign_in(page, "06 70 00 00 22", "+33670000022")

    # the sign-in said one thing: no "we sent a code" beside "if this number is known"
    # (checked on the code screen by test_mobile_app; here the home screen)

    # the tab bar: five tabs with an icon and a word, at the bottom of the screen
    tabs = page.locator("#nav a")
    expect(tabs).to_have_count(5)
    expect(tabs).to_have_text(["Mes aides", "Payer", "Historique", "Carte", "Réglages"])
    assert page.locator("#nav a svg.icon").count() == 5
    nav = page.locator("#nav").bounding_box()
    assert nav["y"] + nav["height"] == pytest.approx(PHONE["viewport"]["height"], abs=1)
    for label in page.locator("#nav .tab-label").all():
        assert label.evaluate("node => node.getClientRects().length") == 1  # one line, uncut
    expect(page.locator("#nav a[href='#/']")).to_have_attribute("aria-current", "page")

    # home: the total, then "Payer", then the frozen card, all in view
    expect(page.locator(".total .amount")).to_have_text(re.compile(r"^177,10\s€$"))
    pay = page.locator("main a.button.primary-action")
    expect(pay).to_have_text("Payer")
    frozen = page.locator(".frozen")
    expect(frozen).to_contain_text("4242")
    expect(frozen).to_contain_text("bloquée")  # the word of the card screen
    assert_above_the_fold(page, "main h1", ".total", "main a.primary-action", ".frozen")

    # each aid: from whom, their logo, their phone in pairs, the whole last day
    food = page.locator(".pocket", has_text="Aide alimentaire")
    expect(food.locator(".giver .funder")).to_have_text("De la part du Département de l'Isère")
    logo = food.locator(".giver img")
    expect(logo).to_be_visible()
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")
    call = food.locator(".giver a.phone")
    expect(call).to_have_text("Une question\u00a0? Appelez le 04 76 00 00 22")
    expect(call).to_have_attribute("href", "tel:+33476000022")
    expect(food.locator(".validity")).to_have_text(
        "Valable jusqu\u2019au 30 septembre 2027 inclus."
    )
    # an aid no shop accepts says whom to call, in place of "where can I use it?"
    pharmacy = page.locator(".pocket", has_text="Aide pharmacie")
    expect(pharmacy.locator(".no-shop")).to_contain_text("Appelez le Département de l'Isère")
    expect(pharmacy.locator("a.button")).to_have_count(0)
    check_accessible(page, "daily-1-home")
    screenshot(page, "daily-1-home")

    # history: what was really paid, signed, lined up; whole rows open the details
    page.locator("#nav a[href='#/history']").click()
    expect(page.locator("main h1")).to_have_text("Historique")
    rows = page.locator(".event")
    expect(rows).to_have_count(5)  # 2 aids, 3 payments
    bill = rows.filter(has_text="7,90")
    expect(bill.locator(".signed")).to_have_text(re.compile(r"^\u22127,90\s€$"))
    expect(bill.locator(".note")).to_have_text(re.compile(r"^4,60\s€ vous ont été rendus$"))
    # the note wraps under the amount: the sentence keeps most of the row
    sentence = bill.locator(".row > div").bounding_box()["width"]
    assert sentence > 0.5 * bill.bounding_box()["width"]
    held = rows.filter(has_text="réservé")
    expect(held.locator(".signed")).to_have_text(re.compile(r"^\u22125,00\s€$"))
    granted = rows.filter(has_text="Aide reçue").first
    expect(granted.locator(".signed")).to_have_text(re.compile(r"^\+"))
    right_edges = {
        round(box["x"] + box["width"])
        for box in (signed.bounding_box() for signed in page.locator(".signed").all())
    }
    assert len(right_edges) == 1, right_edges  # the amounts line up on the right
    assert_above_the_fold(page, "main h1", ".event")
    check_accessible(page, "daily-2-history")
    screenshot(page, "daily-2-history")

    # the whole row of the refusal is the link: a tap on its date opens why, with whom to call
    refusal = rows.filter(has_text="Bar du Centre")
    refusal.locator(".date").click()
    expect(page).to_have_url(re.compile(f"#/history/{refused.reference}$"))
    contact = page.locator(".contact-box")
    expect(contact.locator(".funder")).to_have_text("Département de l'Isère")
    expect(contact.locator("a.phone")).to_contain_text("04 76 00 00 22")
    check_accessible(page, "daily-3-why-refused")
    screenshot(page, "daily-3-why-refused")

    # pay from the home screen's main button: the code, its countdown and its QR code in view
    page.locator("#nav a[href='#/']").click()
    page.locator("main a.primary-action").click()
    expect(page).to_have_url(re.compile(r"#/pay$"))
    page.locator(".pay .button").click()
    expect(page.locator("img.qr")).to_be_visible()
    expect(page.locator(".time-left")).to_contain_text(re.compile(r"\d+\s*min"))
    assert_above_the_fold(page, ".code .digits", ".time-left", "img.qr")
    check_accessible(page, "daily-4-pay")
    screenshot(page, "daily-4-pay")

    # the card screen, frozen
    page.locator("#nav a[href='#/card']").click()
    expect(page.locator("[data-action=unfreeze]")).to_be_visible()
    check_accessible(page, "daily-5-card")

    assert page.elsewhere == []


def test_where_to_spend_by_postcode_nearest_first_on_a_map_drawn_here(phone, camille, screenshot):
    page = phone
    sign_in(page, "camille.martin@example.org", "camille.martin@example.org")

    page.locator(".pocket", has_text="Aide alimentaire").locator("a.button").click()
    expect(page.locator("main h1")).to_have_text("Où utiliser l'Aide alimentaire\u00a0?")
    page.locator("input[autocomplete=postal-code]").fill("38130")
    page.locator("form.postcode button[type=submit]").click()
    expect(page.locator("main h2", has_text="38130")).to_be_visible()
    places = page.locator(".place")
    expect(places).to_have_count(2)
    expect(places.locator("h3")).to_have_text(
        ["Boulangerie des Arcades", "Épicerie du Vieux Temple"]
    )
    distances = places.locator(".distance").all_inner_texts()
    assert len(distances) == 2 and all("km" in text for text in distances)
    near, far = (float(re.search(r"[\d,]+", text)[0].replace(",", ".")) for text in distances)
    assert near < far

    # the map: an SVG drawn from the coordinates, named for screen readers, one mark a shop
    map_ = page.locator("svg.map")
    expect(map_).to_be_visible()
    assert map_.get_attribute("role") == "img"
    expect(map_.locator("title")).to_contain_text("2")
    expect(map_.locator("circle.shop")).to_have_count(2)
    expect(map_.locator("circle.you")).to_have_count(1)
    check_accessible(page, "daily-6-where-by-postcode")
    screenshot(page, "daily-6-where-by-postcode")

    assert page.elsewhere == []


def test_the_sign_in_screens_say_one_thing(phone, camille):
    """After asking for a code: one sentence, that does not claim a code was sent to a contact
    the app cannot know is recorded."""
    page = phone
    page.goto("/app/")
    page.locator("input[autocomplete=username]").fill("06 70 00 00 22")
    page.locator("form button[type=submit]").click()
    expect(page.locator("input[autocomplete=one-time-code]")).to_be_visible()
    sentences = page.locator("main form > p")
    expect(sentences).to_have_count(1)
    expect(sentences).to_have_text(re.compile(r"^Si 06 70 00 00 22 est bien .* minutes\.$"))
    assert audit(page, "daily-0-code-asked") == []
