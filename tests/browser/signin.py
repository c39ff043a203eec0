"""Signing in to the back office from a browser test: one place, so that a change to the
sign-in steps changes every test that signs in.

The steps are a person's: the password, then the second factor. Staff made by
tests.factories.make_staff (and the conftest's operator) have an authenticator app with the known
key STAFF_TOTP_KEY, whose code of the moment is typed; anyone else signs in for the first time,
sets up the app from the key the page shows and goes on past the recovery codes page."""

import base64
import re

from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect


def _code(key: bytes) -> str:
    return f"{TOTP(key).token():06d}"


def admin_sign_in(page, admin: str, username: str, password: str = "password") -> None:
    """`admin` is the admin's base URL (live_server.url + "/admin")."""
    page.goto(f"{admin}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/second-factor/(verify|setup)/"))
    # An app's code is accepted once (django-otp keeps the last time step used): a test that
    # signs the same person in twice within 30 seconds would be refused the second time.
    TOTPDevice.objects.filter(user__username=username).update(
        last_t=-1, throttling_failure_count=0, throttling_failure_timestamp=None
    )
    if "/setup/" in page.url:
        key = page.locator("#totp-key").inner_text().replace(" ", "")
        page.fill("#id_code", _code(base64.b32decode(key + "=" * (-len(key) % 8))))
        page.click("input[type=submit]")
        page.click("#continue")
    else:
        device = TOTPDevice.objects.get(user__username=username, confirmed=True)
        page.fill("#id_code", _code(device.bin_key))
        page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    page.wait_for_url(re.compile(r"^(?!.*/second-factor/).*$"))
