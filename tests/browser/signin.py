"""Signing in to the back office from a browser test: one place, so that a change to the
sign-in steps changes every test that signs in."""

from playwright.sync_api import expect


def admin_sign_in(page, admin: str, username: str, password: str = "password") -> None:
    """`admin` is the admin's base URL (live_server.url + "/admin")."""
    page.goto(f"{admin}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
