"""The two web apps that say they are installable, the shop's till at /shop/ and the
beneficiaries' app at /app/, as Chromium judges them: its DevTools protocol's
Page.getInstallabilityErrors finds nothing in the way, and every icon of the manifest loads as
an image of its declared size. The till, installed, says plainly without a network that a
payment needs one, and a payment sent while offline is not taken."""

import pytest
from playwright.sync_api import expect

from tests.browser.axe import audit
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code, make_program
from tests.shop.conftest import PASSWORD, make_cashier, make_shop
from wallet.models.decisions import Decision

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def phone(browser_type, browser_type_launch_args, live_server, tmp_path):
    """A phone's Chromium with a profile of its own: Playwright's usual contexts are incognito
    windows, where Chromium installs nothing."""
    context = browser_type.launch_persistent_context(
        tmp_path / "profile",
        **browser_type_launch_args,
        base_url=live_server.url,
        locale="fr-FR",
        **PHONE,
    )
    yield context
    context.close()


def installability_errors(page) -> list[dict]:
    cdp = page.context.new_cdp_session(page)
    return cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]


def manifest_icons(page) -> list[dict]:
    """Each icon of the page's manifest as the browser loads it: its URL, declared size and
    purpose, the HTTP status and the size of the image decoded."""
    return page.evaluate(
        """async () => {
          const link = document.querySelector("link[rel=manifest]");
          const manifest = await (await fetch(link.href)).json();
          return Promise.all(manifest.icons.map(async (icon) => {
            const url = new URL(icon.src, link.href).href;
            const response = await fetch(url);
            const image = new Image();
            image.src = url;
            await image.decode();
            return {src: icon.src, sizes: icon.sizes, purpose: icon.purpose,
                    status: response.status, width: image.naturalWidth,
                    height: image.naturalHeight};
          }));
        }"""
    )


def assert_installable(page) -> None:
    assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.state)") in (
        "activating",
        "activated",
    )
    assert installability_errors(page) == []
    icons = manifest_icons(page)
    for icon in icons:
        assert icon["status"] == 200, icon
        if icon["sizes"] != "any":
            assert icon["sizes"] == f"{icon['width']}x{icon['height']}", icon
    declared = {(icon["sizes"], icon["purpose"]) for icon in icons}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= declared


def test_the_till_is_installable_and_says_offline_that_a_payment_needs_a_connection(
    phone, screenshot
):
    person = BeneficiaryFactory()
    make_allocation(program=make_program(), beneficiary=person, amount=5_000)
    cashier = make_cashier(make_shop())
    page = phone.new_page()
    page.goto("/shop/sign-in/")
    assert_installable(page)

    page.get_by_label("Adresse e-mail").fill(cashier.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").tap()
    expect(page.get_by_role("heading", name="Encaisser")).to_be_visible()
    assert_installable(page)

    # The connection drops while a payment is typed: the till says so, and nothing is taken.
    page.get_by_label("Montant (€)").fill("12")
    page.get_by_label("Code de paiement du client (10 chiffres)").fill(
        make_payment_code(person.wallet)
    )
    phone.set_offline(True)
    page.get_by_role("button", name="Encaisser le paiement").tap()
    expect(page.get_by_role("heading", name="Pas de connexion")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(
        "La caisse a besoin d\u2019une connexion internet pour encaisser un paiement."
    )
    assert audit(page, "till offline") == []
    screenshot(page, "till-17-offline")
    assert not Decision.objects.exists()

    # Started again without a network, the till opens on the same page; back online, it works.
    page.goto("/shop/today/")
    expect(page.get_by_role("heading", name="Pas de connexion")).to_be_visible()
    phone.set_offline(False)
    page.get_by_role("link", name="Réessayer").tap()
    expect(page.get_by_role("heading", name="Encaisser")).to_be_visible()


def test_the_beneficiaries_app_is_installable(phone):
    page = phone.new_page()
    page.goto("/app/")
    assert_installable(page)
