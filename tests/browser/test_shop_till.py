"""A shop's till on phones, in a real browser (Debian's Chromium at 390 by 844, touch): the owner
registers the shop from its SIRET against a fake company register, an operator approves it in
the admin, the owner signs in with a second factor and invites a cashier; the cashier joins,
takes a payment by scanning the customer's QR code with the camera (Chromium's fake camera,
fed a video made here from the QR code of a real payment code), refunds part of it and reads
the day's takings. Every screen is photographed, audited with axe-core, and checked for
sideways scrolling at 200 % zoom."""

import base64
import re
from pathlib import Path

import pytest
import segno
from django.core import mail
from django_otp.oath import totp
from playwright.sync_api import expect

from merchants.models import Merchant
from shop.models import TillSettings
from shop.services import totp_device
from tests.browser.axe import audit
from tests.browser.signin import admin_sign_in
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_payment_code,
    make_program,
    siret,
)
from tests.shop.conftest import PASSWORD as SHOP_PASSWORD
from tests.shop.conftest import FakeSirene, make_cashier, make_shop, sirene_establishment
from wallet.models.decisions import Decision

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "locale": "fr-FR",
}
# 200 % zoom on a 360-pixel-wide phone.
ZOOMED = {"width": 180, "height": 422}
PASSWORD = "Fournil-de-Grenoble-26"


def qr_video(text: str, path: Path, *, width: int = 640, height: int = 480) -> Path:
    """A still video of the QR code of `text` for Chromium's fake camera, in the YUV4MPEG2
    format it reads (--use-file-for-fake-video-capture): a grey plane where each module of the
    code is a square of 8 by 8 black pixels, on white with its quiet zone, and neutral colour."""
    matrix = segno.make_qr(text, error="m").matrix
    scale, border = 8, 4
    size = (len(matrix) + 2 * border) * scale
    left, top = (width - size) // 2, (height - size) // 2
    luma = bytearray([255]) * (width * height)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if not dark:
                continue
            for dy in range(scale):
                start = (top + (y + border) * scale + dy) * width + left + (x + border) * scale
                luma[start : start + scale] = bytes(scale)
    chroma = bytes([128]) * (width // 2 * height // 2)
    frame = b"FRAME\n" + bytes(luma) + chroma + chroma
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * 5)
    return path


@pytest.fixture
def register(settings):
    fake = FakeSirene()
    settings.SIRENE_API_BASE = fake.url
    settings.SIRENE_API_KEY = "test-insee-key"
    yield fake
    fake.close()


@pytest.fixture
def customer(db):
    """A beneficiary with food aid from two funders, and a payment code of theirs."""
    person = BeneficiaryFactory(first_name="Marie")
    for funder_name, aid, amount, days in (
        ("Département de l'Isère", "Aide alimentaire", 3_000, 30),
        ("Ville de Grenoble", "Chèque pain", 2_000, 60),
    ):
        program = make_program(
            funder=FunderFactory(name=funder_name),
            name=aid,
            rules={"categories": {"allow_groups": ["food"]}},
        )
        make_allocation(program=program, beneficiary=person, amount=amount, days=days)
    return person.wallet


@pytest.fixture
def camera_browser(browser_type, browser_type_launch_args, tmp_path, customer):
    """Chromium whose camera films the customer's payment code."""
    code = make_payment_code(customer)
    video = qr_video(code, tmp_path / "payment-code.y4m")
    args = [
        *browser_type_launch_args["args"],
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    browser = browser_type.launch(**{**browser_type_launch_args, "args": args})
    yield browser
    browser.close()


def _new_page(browser, live_server, refused: list, **options):
    context = browser.new_context(base_url=live_server.url, **options)
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            refused.append(f"{message.location['url']}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return page


def small_targets(page) -> list:
    """What axe-core's target-size rule (WCAG 2.2 AA, 2.5.8: 24 by 24 CSS pixels, or spaced
    enough, inline links excepted) finds on the page; audit() runs the 2.1 rules, without it."""
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'rule', values: ['target-size']}})"
    )
    return [node["target"] for violation in result["violations"] for node in violation["nodes"]]


def check(page, screenshot, name: str) -> None:
    """One screen of the till: photographed, no serious accessibility violation, every control
    big enough for a finger, and nothing wider than a phone at 200 % zoom."""
    screenshot(page, f"till-{name}")
    assert audit(page, f"till {name}") == []
    assert small_targets(page) == [], name
    page.set_viewport_size(ZOOMED)
    sideways = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    page.set_viewport_size(PHONE["viewport"])
    assert sideways <= 1, f"{name}: {sideways}px of sideways scroll at 200 % zoom"


def test_a_shop_registers_invites_a_cashier_who_takes_a_payment_by_scanning_and_refunds_part(
    live_server, camera_browser, register, operator, customer, screenshot, settings
):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    refused: list[str] = []
    number = siret(91_001)
    register.known[number] = sirene_establishment(number)

    # The owner registers the shop from its SIRET.
    owner = _new_page(camera_browser, live_server, refused, **PHONE)
    owner.goto("/shop/register/")
    check(owner, screenshot, "1-register")
    owner.get_by_label("SIRET").fill(number)
    owner.get_by_role("button", name="Continuer").tap()
    expect(owner.get_by_label("Raison sociale")).to_have_value("LA FOURNEE DU VIEUX TEMPLE")
    expect(owner.get_by_label("Code catégorie commerçant (MCC)")).to_have_value("5462")
    check(owner, screenshot, "2-register-details")
    owner.get_by_label("IBAN du compte").fill("FR76 3000 6000 0112 3456 7890 189")
    owner.get_by_label("Votre adresse e-mail").fill("fournil@example.org")
    owner.get_by_label("Choisissez un mot de passe").fill(PASSWORD)
    owner.get_by_label("Le même mot de passe").fill(PASSWORD)
    owner.get_by_role("button", name="Envoyer ma demande").tap()
    expect(owner.get_by_role("heading", name="Demande envoyée")).to_be_visible()
    check(owner, screenshot, "3-registered")
    merchant = Merchant.objects.get(siret=number)
    assert merchant.status == Merchant.Status.PENDING

    # An operator approves it in the admin; the owner is told by e-mail.
    desk = _new_page(camera_browser, live_server, refused)
    admin_sign_in(desk, f"{live_server.url}/admin", "operator")
    desk.goto(f"{live_server.url}/admin/merchants/merchant/")
    desk.locator(f"input[name=_selected_action][value='{merchant.pk}']").check()
    desk.select_option("select[name=action]", "approve")
    desk.locator("button[name=index]").click()
    expect(desk.locator(".messagelist")).to_contain_text("1")
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.APPROVED
    assert [m.to for m in mail.outbox] == [["fournil@example.org"]]

    # The owner signs in: password, then the authenticator set up on the spot.
    owner.goto("/shop/sign-in/")
    check(owner, screenshot, "4-sign-in")
    owner.get_by_label("Adresse e-mail").fill("fournil@example.org")
    owner.get_by_label("Mot de passe").fill(PASSWORD)
    owner.get_by_role("button", name="Se connecter").tap()
    key = owner.locator("#otp-key").inner_text()
    check(owner, screenshot, "5-second-factor")
    owner.get_by_label("Le code à 6 chiffres").fill(f"{totp(base64.b32decode(key)):06d}")
    owner.get_by_role("button", name="Confirmer").tap()
    expect(owner.get_by_role("heading", name="Encaisser")).to_be_visible()

    # ... and invites a cashier.
    owner.get_by_role("link", name="Équipe").tap()
    owner.get_by_label("Adresse e-mail du caissier").fill("paul@example.org")
    owner.get_by_role("button", name="Envoyer l\u2019invitation").tap()
    expect(owner.locator(".messages")).to_contain_text("paul@example.org")
    check(owner, screenshot, "6-team")
    link = re.search(r"http://\S+/shop/join/\S+/", mail.outbox[-1].body).group(0)
    for path, name in (
        ("/shop/shop/", "7-my-shop"),
        ("/shop/settlements/", "8-settlements"),
        ("/shop/integrations/?mode=test", "9-integrations"),
    ):
        owner.goto(path)
        check(owner, screenshot, name)

    # The cashier joins from the link and signs in on their phone, camera allowed.
    cashier = _new_page(camera_browser, live_server, refused, permissions=["camera"], **PHONE)
    cashier.goto(link)
    check(cashier, screenshot, "10-join")
    cashier.get_by_label("Choisissez un mot de passe").fill(PASSWORD)
    cashier.get_by_label("Le même mot de passe").fill(PASSWORD)
    cashier.get_by_role("button", name="Créer mon compte").tap()
    cashier.get_by_label("Adresse e-mail").fill("paul@example.org")
    cashier.get_by_label("Mot de passe").fill(PASSWORD)
    cashier.get_by_role("button", name="Se connecter").tap()

    # A payment: the amount typed, the code scanned with the camera.
    expect(cashier.get_by_role("heading", name="Encaisser")).to_be_visible()
    check(cashier, screenshot, "11-pay")
    cashier.get_by_label("Montant (€)").fill("42,50")
    cashier.get_by_role("button", name="Scanner le code du client").tap()
    code_field = cashier.get_by_label("Code de paiement du client (10 chiffres)")
    expect(code_field).to_have_value(re.compile(r"^\d{10}$"), timeout=15_000)
    check(cashier, screenshot, "12-code-scanned")
    cashier.get_by_role("button", name="Encaisser le paiement").tap()
    expect(cashier.get_by_role("heading", name="Accepté", exact=True)).to_be_visible()
    answer = cashier.locator(".answer")
    expect(answer).to_contain_text("42,50 €")
    expect(answer).to_contain_text("Aide alimentaire (Département de l'Isère) 30,00 €")
    expect(answer).to_contain_text("Chèque pain (Ville de Grenoble) 12,50 €")
    check(cashier, screenshot, "13-approved")

    # Part of it refunded, after confirmation.
    cashier.get_by_role("link", name="Rembourser").tap()
    check(cashier, screenshot, "14-refund-confirm")
    cashier.get_by_label("Montant (€)").fill("10")
    cashier.get_by_role("button", name="Confirmer").tap()
    expect(cashier.locator(".messages")).to_contain_text("Remboursé : 10,00 €")
    cashier.get_by_role("link", name="Reçu").tap()
    expect(cashier.locator("#receipt")).to_contain_text("Remboursé : 10,00 €")
    check(cashier, screenshot, "15-receipt")

    # The day's takings, by aid and by funder.
    cashier.get_by_role("link", name="Aujourd\u2019hui").tap()
    takings = cashier.locator(".card")
    expect(takings.locator("dl div", has_text="Montant net")).to_contain_text("32,50 €")
    expect(takings).to_contain_text("Aide alimentaire (Département de l'Isère) 30,00 €")
    expect(takings).to_contain_text("Ville de Grenoble 2,50 €")
    check(cashier, screenshot, "16-today")
    assert not refused, "\n".join(refused)


def test_the_other_till_screens_are_accessible_on_a_phone(
    live_server, browser, customer, screenshot, settings
):
    """The screens the journey above does not pass through: a partial approval, a refusal, a
    two-step payment's capture, an API key's secret shown once, a dead invitation link."""

    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    refused: list[str] = []
    grocery = make_shop(mcc="5411")
    TillSettings.objects.create(merchant=grocery.merchant, capture_later=True)
    pharmacy = make_shop(mcc="5912")
    device = totp_device(grocery)
    device.confirmed = True  # set up earlier: the sign-in asks for a code at once
    device.save()

    def sign_in(member, code: bool):
        page = _new_page(browser, live_server, refused, **PHONE)
        page.goto("/shop/sign-in/")
        page.get_by_label("Adresse e-mail").fill(member.email)
        page.get_by_label("Mot de passe").fill(SHOP_PASSWORD)
        page.get_by_role("button", name="Se connecter").tap()
        if code:
            page.get_by_label("Le code à 6 chiffres").fill(f"{totp(device.bin_key):06d}")
            page.get_by_role("button", name="Confirmer").tap()
        expect(page.get_by_role("heading", name="Encaisser")).to_be_visible()
        return page

    def take(page, amount: str, lines=()):
        page.goto("/shop/pay/")
        page.get_by_label("Montant (€)").fill(amount)
        page.get_by_label("Code de paiement du client (10 chiffres)").fill(
            make_payment_code(customer)
        )
        if lines:
            page.get_by_text("Séparer le panier par produit").tap()
        for number, (products, part) in enumerate(lines, start=1):
            page.get_by_label(re.compile(rf"^Produits {number}\b")).select_option(label=products)
            page.get_by_label(f"Montant des produits {number} (€)").fill(part)
        if lines:
            check(page, screenshot, "19-basket")
        page.get_by_role("button", name="Encaisser le paiement").tap()

    owner = sign_in(grocery, code=True)
    # A slip of the finger: refused in the form, before any decision is asked for.
    take(owner, "99 999 999")
    expect(owner.locator("#pay-form")).to_contain_text(
        "Un paiement à la caisse ne dépasse pas 100\u202f000,00\u00a0€."
    )
    assert not Decision.objects.exists()
    check(owner, screenshot, "19a-amount-too-large")
    take(owner, "60", [("Alimentation", "45"), ("Tabac", "15")])  # 50 € of aid
    expect(owner.get_by_role("heading", name="Accepté en partie")).to_be_visible()
    expect(owner.locator(".answer")).to_contain_text("Encaissez les 10,00 € restants autrement.")
    expect(owner.locator(".basket-lines")).to_contain_text("Tabac")
    check(owner, screenshot, "20-partly-approved")
    owner.get_by_role("link", name="Capturer").tap()
    check(owner, screenshot, "21-capture-confirm")
    owner.get_by_label("Montant (€)").fill("40")  # less than the 50 € approved
    owner.get_by_role("button", name="Confirmer").tap()
    expect(owner.locator(".messages")).to_contain_text("Paiement capturé : 40,00 €")
    expect(owner.locator("body")).to_contain_text(
        "Encaissé : 40,00 €. Les 10,00 € restants sont revenus sur l\u2019aide."
    )
    check(owner, screenshot, "21b-captured-less")

    owner.goto("/shop/integrations/?mode=test")
    owner.get_by_label("Nom de la clé").fill("Site web")
    owner.get_by_role("button", name="Créer une clé").tap()
    expect(owner.locator("#secret")).to_contain_text("sk_test_")
    check(owner, screenshot, "22-secret-once")

    chemist = sign_in(make_cashier(pharmacy), code=False)
    take(chemist, "12")  # food aid only
    expect(chemist.get_by_role("heading", name="Refusé")).to_be_visible()
    expect(chemist.locator(".answer")).to_contain_text("Que faire ?")
    check(chemist, screenshot, "24-refused")
    chemist.goto("/shop/join/not-a-token/")
    expect(chemist.get_by_role("heading", name="Ce lien ne fonctionne pas")).to_be_visible()
    check(chemist, screenshot, "23-invitation-dead")
    assert not refused, "\n".join(refused)
