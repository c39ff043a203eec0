"""A beneficiary on a phone, in a real browser: signs in to the app with the code from the
outbox, reads the balances, opens a refused payment's explanation, freezes the card, shows a
payment code; then finds shops near them, switches to English, starts offline and signs out
everywhere. Each screen is also checked for the basics of accessibility."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone, translation
from playwright.sync_api import expect

from beneficiary_app.services import aidant_authorize, contact_parse
from beneficiary_app.throttles import SignInCodeContactThrottle
from beneficiary_app.web.views import STRINGS
from engine.codes import beneficiary_message
from funders.services import program_create, program_fund
from merchants.payments import payment_authorize
from tests.browser.axe import audit
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
)
from wallet.models import Card, Notification, PaymentCode
from wallet.models.access import AppToken
from wallet.models.notifications import NotificationPreference

pytestmark = pytest.mark.django_db(transaction=True)

GRENOBLE = {"latitude": 45.1885, "longitude": 5.7245}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "locale": "fr-FR",
    "geolocation": GRENOBLE,
    "permissions": ["geolocation"],
}


@pytest.fixture
def phone(browser, live_server, settings):
    # Asking for a sign-in code queues a task: it runs in the server's thread here.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    context = browser.new_context(base_url=live_server.url, **PHONE)
    yield context.new_page()
    context.close()


@pytest.fixture
def marie(db):
    """Two pockets (food aid in Isère, and a pharmacy aid ending in 5 days), a card, a paid
    grocery bill and a payment refused at a bar."""
    funder = FunderFactory(name="Département de l'Isère")
    person = BeneficiaryFactory(
        first_name="Marie", email="marie.dupont@example.org", phone="+33612345678"
    )
    aids = []
    for name, rules, amount, days in (
        ("Aide alimentaire", {"categories": {"allow_groups": ["food"]}}, 10_000, 90),
        ("Aide pharmacie", {"categories": {"allow_groups": ["health"]}}, 4_000, 6),
    ):
        program = program_create(funder=funder, name=name, rules=rules)
        program_fund(program=program, amount=100_000, idempotency_key=f"fund-{name}")
        aids.append(
            make_allocation(
                program=program,
                beneficiary=person,
                amount=amount,
                valid_from=timezone.now() - timedelta(days=1),
                days=days,
            )
        )
    card = Card.objects.create(wallet=person.wallet, kind="physical", status="active", last4="4242")
    grocery = make_merchant(trade_name="Épicerie du Vieux Temple")
    bar = make_merchant(trade_name="Bar du Centre", mcc="5813")
    paid = payment_authorize(
        merchant=grocery,
        amount=1_250,
        currency="EUR",
        payment_code=make_payment_code(card.wallet),
        capture=True,
    )
    assert paid.approved_amount == 1_250
    refused = payment_authorize(
        merchant=bar, amount=1_800, currency="EUR", payment_code=make_payment_code(card.wallet)
    )
    assert refused.status == "declined"
    return person, card, refused


def sign_in_code(contact: str) -> str:
    body = (
        Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE, recipient=contact)
        .latest("pk")
        .body
    )
    return re.search(r"\b(\d{6})\b", body)[1]


# Lists what breaks the checks of check_accessible on the page shown.
A11Y_PROBLEMS = """() => {
  const problems = [];
  const visible = (node) => node.getClientRects().length > 0;
  const base = parseFloat(getComputedStyle(document.body).fontSize);
  if (base < 18) problems.push(`base font ${base}px`);
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push(`img without alt: ${img.src.slice(0, 60)}`);
  }
  for (const svg of document.querySelectorAll("svg[role=img]")) {
    const named = svg.getAttribute("aria-label") || svg.querySelector("title");
    if (!named) problems.push("svg without name");
  }
  for (const input of document.querySelectorAll("input, select, textarea")) {
    const named = input.labels?.length || input.getAttribute("aria-label")
      || input.getAttribute("aria-labelledby");
    if (!named) problems.push(`input without label: ${input.outerHTML.slice(0, 80)}`);
  }
  let last = 0;
  for (const heading of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    if (!visible(heading)) continue;
    const level = Number(heading.tagName[1]);
    if (level > last + 1) problems.push(`${heading.tagName} after h${last}`);
    last = level;
  }
  if (document.querySelectorAll("main h1").length !== 1) problems.push("not one h1");
  for (const target of document.querySelectorAll(
    "button, .button, nav a, .link, input:not([type=checkbox]), .check label"
  )) {
    if (!visible(target)) continue;
    const box = target.getBoundingClientRect();
    if (box.height < 44) problems.push(`target ${box.height}px high: ${target.textContent}`);
  }
  const sideways = document.documentElement.scrollWidth > window.innerWidth + 1;
  if (sideways) problems.push("scrolls sideways");
  return problems;
}"""


def check_accessible(page, screen: str) -> None:
    """What a machine can check of WCAG on the screen shown: language, text size, text
    alternatives, labels, the order of headings, the size of targets, no sideways scrolling;
    then axe-core's audit at WCAG 2.1 AA (contrast and focus included), with no serious or
    critical violation."""
    assert page.locator("html").get_attribute("lang") in ("fr", "en")
    problems = page.evaluate(A11Y_PROBLEMS)
    assert problems == []
    assert audit(page, screen) == []


def test_a_beneficiary_signs_in_reads_the_balances_freezes_the_card_and_pays(
    phone, marie, screenshot
):
    person, card, refused = marie
    page = phone

    # signs in with the code sent by SMS
    page.goto("/app/")
    expect(page).to_have_url(re.compile(r"#/sign-in$"))
    contact = page.locator("input[autocomplete=username]")
    expect(contact).to_be_visible()
    check_accessible(page, "mobile-1-sign-in")
    screenshot(page, "mobile-1-sign-in")
    contact.fill("06 12 34 56 78")
    page.locator("form button[type=submit]").click()

    code = page.locator("input[autocomplete=one-time-code]")
    expect(code).to_be_visible()
    assert code.get_attribute("inputmode") == "numeric"
    check_accessible(page, "mobile-2-code")
    screenshot(page, "mobile-2-code")
    code.fill("000000" if sign_in_code("+33612345678") != "000000" else "111111")
    page.locator("form button[type=submit]").click()
    expect(page.locator(".field-error")).to_be_visible()  # a wrong code is said plainly
    assert code.get_attribute("aria-invalid") == "true"
    code.fill(sign_in_code("+33612345678"))
    page.locator("form button[type=submit]").click()

    # reads the balances of the two pockets: 100 € less a 12.50 € grocery bill, and 40 €
    expect(page.locator(".pocket")).to_have_count(2)
    assert page.evaluate("localStorage.getItem('aidwallet.session')").count("app_") == 1
    expect(page.locator("#holder")).to_have_text("Marie")
    food = page.locator(".pocket", has_text="Aide alimentaire")
    pharmacy = page.locator(".pocket", has_text="Aide pharmacie")
    expect(food.locator(".amount")).to_have_text(re.compile(r"^87,50\s€$"))
    expect(pharmacy.locator(".amount")).to_have_text(re.compile(r"^40,00\s€$"))
    expect(pharmacy.locator(".warning")).to_be_visible()  # it ends within days
    expect(food.locator(".warning")).to_have_count(0)
    expect(food.locator(".rules li").first).to_be_visible()
    check_accessible(page, "mobile-3-my-aid")
    screenshot(page, "mobile-3-my-aid")

    # opens the refused payment in the history and reads why, in plain words
    page.locator("nav a[href='#/history']").click()
    declined = page.locator(".event.declined")
    expect(declined).to_have_count(1)
    expect(declined).to_contain_text("Bar du Centre")
    check_accessible(page, "mobile-4-history")
    screenshot(page, "mobile-4-history")
    declined.locator("a").click()
    expect(page).to_have_url(re.compile(f"#/history/{refused.reference}$"))
    with translation.override("fr"):
        why = beneficiary_message(
            refused.reason, pocket_name=refused.reason_pocket or None, details=refused.details
        )
    expect(page.locator(".explanation")).to_contain_text(why)
    # and where the aid the refusal names (the pharmacy aid, which ends first) is accepted
    # near the bar: no shop of the test takes it, and that is said plainly
    expect(page.locator(".explanation .nearby")).to_have_text(
        "Aucun commerce n\u2019accepte cette aide pour le moment."
    )
    check_accessible(page, "mobile-5-declined-payment")
    screenshot(page, "mobile-5-declined-payment")

    # freezes the card in one tap, and the state is said in words
    page.locator("nav a[href='#/card']").click()
    expect(page.locator("main article h2")).to_contain_text("4242")
    page.locator("[data-action=freeze]").click()
    expect(page.locator("[data-action=unfreeze]")).to_be_focused()
    expect(page.locator(".status")).to_have_class(re.compile("status-frozen"))
    expect(page.locator("#messages")).not_to_be_empty()
    card.refresh_from_db()
    assert card.status == Card.Status.FROZEN
    check_accessible(page, "mobile-6-card-frozen")
    screenshot(page, "mobile-6-card-frozen")

    # reporting it lost asks first; going back changes nothing
    page.locator(".report-lost").click()
    expect(page.locator(".confirm")).to_be_visible()
    page.locator(".confirm .button.secondary").click()
    expect(page.locator(".confirm")).to_have_count(0)
    card.refresh_from_db()
    assert card.status == Card.Status.FROZEN

    # shows a payment code: big digits and the QR code
    page.locator("nav a[href='#/pay']").click()
    page.locator(".pay .button").click()
    digits = page.locator(".code .digits")
    expect(digits).to_have_text(re.compile(r"^\d{4}\s*\d{3}\s*\d{3}$"))
    qr = page.locator("img.qr")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert digits.inner_text().replace(" ", "").replace("\n", "") in qr.get_attribute(
        "alt"
    ).replace(" ", "")
    expect(page.locator(".time-left")).to_contain_text(re.compile(r"\d+\s*min\s*\d\d\s*s"))
    assert PaymentCode.objects.filter(wallet=person.wallet, status="active").count() == 1
    check_accessible(page, "mobile-7-payment-code")
    screenshot(page, "mobile-7-payment-code")


def test_shops_nearby_language_offline_start_and_sign_out_everywhere(
    phone, marie, screenshot, settings
):
    person, _, _ = marie
    settings.WEBPUSH_VAPID_PUBLIC_KEY = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A"
    settings.WEBPUSH_VAPID_PRIVATE_KEY = "private"
    settings.WEBPUSH_VAPID_SUBJECT = "mailto:ops@example.org"
    page = phone
    page.goto("/app/")
    page.locator("input[autocomplete=username]").fill("marie.dupont@example.org")
    page.locator("form button[type=submit]").click()
    expect(page.locator("input[autocomplete=one-time-code]")).to_be_visible()
    page.locator("input[autocomplete=one-time-code]").fill(sign_in_code("marie.dupont@example.org"))
    page.locator("form button[type=submit]").click()

    # where to spend the food aid, from the phone's position: nearest first, with the distance
    page.locator(".pocket", has_text="Aide alimentaire").locator("a.button").click()
    expect(page.locator(".place")).to_have_count(1)
    page.locator("main > #screen > .button").click()
    expect(page.locator(".place .distance")).to_contain_text("km")
    expect(page.locator(".place h3")).to_have_text("Épicerie du Vieux Temple")
    check_accessible(page, "mobile-8-where-to-spend")
    screenshot(page, "mobile-8-where-to-spend")

    # the app works at 200 % zoom on a 360-pixel-wide phone: no sideways scrolling
    page.set_viewport_size({"width": 180, "height": 422})
    page.locator("nav a[href='#/']").click()
    expect(page.locator(".pocket")).to_have_count(2)
    check_accessible(page, "mobile-my-aid-at-200-percent")
    page.set_viewport_size(PHONE["viewport"])

    # no longer wants an email for each refused payment
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.locator("nav a[href='#/settings']").click()
    refused_by_email = page.locator(
        "input[type=checkbox][data-kind=payment_declined][data-channel=email]"
    )
    expect(refused_by_email).to_be_checked()
    refused_by_email.uncheck()
    page.locator("form:has(fieldset) button[type=submit]").click()
    expect(page.locator(".message-success")).to_be_visible()
    assert (
        NotificationPreference.objects.get(
            beneficiary=person, kind="payment_declined", channel="email"
        ).enabled
        is False
    )
    expect(page.locator("input[data-kind=sign_in_code]")).to_have_count(0)  # always sent

    # app notifications on this phone: the phone refuses them, and she is told how to allow them
    push = page.locator("[data-push]")
    expect(push).to_be_visible()
    expect(page.locator("input[data-channel=push]").first).to_be_visible()
    push.click()
    with translation.override("fr"):
        expect(page.locator(".message-error")).to_contain_text(str(STRINGS["push_denied"]))

    # switches to English: the page and the messages sent to her
    page.locator("button[lang=en]").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("button[lang=en]")).to_have_attribute("aria-pressed", "true")
    person.refresh_from_db()
    assert person.preferred_language == "en"
    check_accessible(page, "mobile-9-settings")
    screenshot(page, "mobile-9-settings")

    # starts without a network: the page comes from the service worker, the balances do not
    assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.context.set_offline(True)
    page.goto("/app/#/")
    expect(page.locator("main h1")).to_be_visible()
    expect(page.locator("main .button")).to_be_visible()  # "try again"
    expect(page.locator(".pocket")).to_have_count(0)
    page.context.set_offline(False)
    page.locator("main .button").click()
    expect(page.locator(".pocket")).to_have_count(2)

    # signs out on all her devices
    page.locator("nav a[href='#/settings']").click()
    page.locator("section:last-child .button").last.click()
    expect(page).to_have_url(re.compile(r"#/sign-in$"))
    assert not AppToken.objects.filter(wallet=person.wallet, revoked_at__isnull=True).exists()
    assert page.evaluate("localStorage.getItem('aidwallet.session')") is None


def test_an_aidant_sees_the_wallet_without_any_button_that_writes(phone, marie, screenshot):
    person, card, _ = marie
    aidant_authorize(
        wallet=person.wallet,
        contact=contact_parse("c.martin@ccas-grenoble.fr"),
        name="Mme Martin, CCAS",
    )
    paul = BeneficiaryFactory(first_name="Paul")
    aidant_authorize(wallet=paul.wallet, contact=contact_parse("c.martin@ccas-grenoble.fr"))
    page = phone
    page.goto("/app/")
    page.locator("input[autocomplete=username]").fill("c.martin@ccas-grenoble.fr")
    page.locator("form button[type=submit]").click()
    expect(page.locator("input[autocomplete=one-time-code]")).to_be_visible()
    page.locator("input[autocomplete=one-time-code]").fill(
        sign_in_code("c.martin@ccas-grenoble.fr")
    )
    page.locator("form button[type=submit]").click()

    # two people allowed her: she chooses whose wallet to open
    choices = page.locator(".choices button")
    expect(choices).to_have_count(2)
    check_accessible(page, "mobile-aidant-chooses-a-wallet")
    choices.filter(has_text="Marie").click()
    expect(page.locator(".pocket")).to_have_count(2)
    expect(page.locator("#view-only")).to_be_visible()
    expect(page.locator("#view-only")).to_contain_text("Marie")
    expect(page.locator("nav a[href='#/pay']")).to_be_hidden()
    screenshot(page, "mobile-10-aidant")

    page.locator("nav a[href='#/card']").click()
    expect(page.locator("main article .status")).to_be_visible()
    expect(page.locator("main button")).to_have_count(0)
    page.goto("/app/#/pay")
    expect(page.locator("main h1")).to_be_visible()
    expect(page.locator("main button")).to_have_count(0)
    page.locator("nav a[href='#/settings']").click()
    expect(page.locator("button[lang=en]")).to_be_visible()
    expect(page.locator("main input")).to_have_count(0)  # no aidants to add
    check_accessible(page, "mobile-aidant-settings")
    card.refresh_from_db()
    assert card.status == Card.Status.ACTIVE


def test_too_many_codes_asked_says_how_long_to_wait(phone, marie, monkeypatch):
    monkeypatch.setattr(SignInCodeContactThrottle, "rate", "1/hour", raising=False)
    page = phone
    page.goto("/app/")
    page.locator("input[autocomplete=username]").fill("06 12 34 56 78")
    page.locator("form button[type=submit]").click()
    expect(page.locator("input[autocomplete=one-time-code]")).to_be_visible()
    page.locator(".actions .button").first.click()  # send me a new code
    expect(page.locator(".message-error")).to_contain_text(re.compile(r"\b60\b"))
    assert Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE).count() == 1
