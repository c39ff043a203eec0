"""Browser tests: Debian's Chromium driven by Playwright, against Django's live test server.

Playwright never downloads a browser here: it is pointed at the system's Chromium. The sync
Playwright API keeps an event loop running in the test's thread, which Django takes for async
code; the test's own database calls are synchronous, hence DJANGO_ALLOW_ASYNC_UNSAFE."""

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", Path(__file__).parents[2] / "var/screenshots"))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        message = "browser tests need Debian's Chromium: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "fr-FR", "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def screenshot():
    """Save a full-page screenshot under var/screenshots (or SCREENSHOT_DIR), kept after the
    run for people to look at."""

    def take(page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# Redoc's sidebar shows Redocly's logo from their CDN: refused like any other origin, and Redoc
# hides the logo when it does not load.
REFUSED_ON_PURPOSE = ("https://cdn.redoc.ly/",)


@pytest.fixture
def page(page):
    """Playwright's page, which fails the test if the browser refused anything on a page for
    the Content-Security-Policy: a script or a style that did not run is a page that may look
    right in a screenshot and still be broken."""
    refused = []
    page.on(
        "console",
        lambda message: (
            refused.append(f"{message.location['url']}: {message.text}")
            if "Content Security Policy" in message.text
            and not any(origin in message.text for origin in REFUSED_ON_PURPOSE)
            else None
        ),
    )
    yield page
    assert not refused, "\n".join(refused)
