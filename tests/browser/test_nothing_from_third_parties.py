"""The landing page and the API docs, in a real browser, ask nothing of any server but ours: no
web fonts, logo or script from a CDN, so a reader is announced to no third party and the pages
work where only the platform is reachable."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/", "Portefeuille d\u2019aides"),
        ("/api/merchant/v1/docs", "Aid wallet API"),
        ("/api/app/v1/docs", "Aid wallet app API"),
    ],
)
def test_the_page_makes_no_request_outside_the_server(live_server, page, path, heading):
    ours = _origin(live_server.url)
    sent: list[str] = []

    # Every request is counted where it leaves the browser (a load that the page's own
    # Content-Security-Policy refuses is never sent), and one elsewhere is refused, so that the
    # test never reaches the internet whatever the network allows.
    def leave(route):
        sent.append(route.request.url)
        if _origin(route.request.url) == ours:
            route.continue_()
        else:
            route.abort("blockedbyclient")

    page.context.route("**/*", leave)

    page.goto(f"{live_server.url}{path}", wait_until="networkidle")

    # The page was drawn (the docs by Redoc, from the schema it fetched)...
    expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
    # ...and everything it asked for came from the server itself.
    assert sent
    assert [url for url in sent if _origin(url) != ours] == []
