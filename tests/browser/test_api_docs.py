"""The API docs pages draw their schema in a real browser under the Content-Security-Policy
(the `page` fixture fails a test on anything the policy refused)."""

import pytest
from playwright.sync_api import expect


@pytest.mark.parametrize(
    ("path", "title", "operation"),
    [
        ("/api/merchant/v1/docs", "Aid wallet API", "/authorizations"),
        ("/api/app/v1/docs", "Aid wallet app API", "/pockets"),
    ],
)
def test_the_api_docs_page_draws_the_schema(live_server, page, path, title, operation):
    page.goto(f"{live_server.url}{path}")

    expect(page.locator("#redoc-container h1")).to_contain_text(title)
    expect(page.locator("#redoc-container").get_by_text(operation).first).to_be_attached()
