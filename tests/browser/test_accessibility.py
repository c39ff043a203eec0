"""axe-core audits of the public pages (WCAG 2.1 AA, serious and critical violations)."""

import pytest

from tests.browser.axe import audit

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_landing_page_has_no_serious_accessibility_violation(live_server, page):
    page.goto(f"{live_server.url}/")
    assert audit(page, "landing") == []


def test_the_audit_finds_a_violation_when_there_is_one(live_server, page):
    """The audit itself can fail: an image without a text alternative is a critical one."""
    page.goto(f"{live_server.url}/")
    page.evaluate(
        "() => { const img = document.createElement('img'); img.src = '/static/x.png';"
        " document.querySelector('main, body').appendChild(img); }"
    )
    assert [violation["id"] for violation in audit(page, "landing with a bad image")] == [
        "image-alt"
    ]
