"""The admin's second factor in a real browser: a first sign-in sets up the authenticator app
(through tests/browser/signin.py, as every browser test signs in); a passkey is added and then
signs in, made by Chromium's virtual authenticator (the DevTools protocol's WebAuthn domain)."""

import pytest
from playwright.sync_api import expect

from backoffice.models import Passkey
from funders.models import Membership
from tests.browser.signin import admin_sign_in
from tests.factories import FunderFactory, make_staff

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff():
    return make_staff(funder=FunderFactory(), role=Membership.Role.MANAGER, username="claire")


def test_a_first_sign_in_sets_up_the_app(live_server, page):
    person = make_staff(username="nadia")
    person.totpdevice_set.all().delete()

    admin_sign_in(page, f"{live_server.url}/admin", "nadia")

    assert person.totpdevice_set.get().confirmed
    assert person.staticdevice_set.get().token_set.count() == 10


def test_a_passkey_is_added_then_signs_in(live_server, page, staff, screenshot):
    admin = f"{live_server.url}/admin"
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )

    # signed in with the app, the person adds a passkey
    admin_sign_in(page, admin, "claire")
    page.goto(f"{admin}/second-factor/")
    page.fill("#id_passkey_name", "Téléphone")
    page.click("#passkey-add")
    expect(page.locator("#passkeys")).to_contain_text("Téléphone")
    screenshot(page, "second-factor-passkey-added")
    assert Passkey.objects.get(user=staff).name == "Téléphone"

    # signs out, and back in with the password and the passkey
    page.context.clear_cookies()
    page.goto(f"{admin}/login/")
    page.fill("#id_username", "claire")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    page.click("#passkey-sign-in")
    expect(page.locator("#site-name")).to_be_visible()
    page.wait_for_url(f"{admin}/")
    assert Passkey.objects.get(user=staff).last_used_at is not None
