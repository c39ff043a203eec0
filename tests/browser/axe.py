"""Accessibility audit of a page with axe-core, at WCAG 2.1 AA.

axe-core comes from npm, vendored under tests/browser/vendor (see its SOURCE.md), and is run
through the DevTools protocol (`page.evaluate`), which the page's Content-Security-Policy does not
govern: the page under test keeps its real policy."""

from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "vendor/axe-core/axe.min.js").read_text()
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")


def audit(page, screen: str) -> list[dict]:
    """The serious and critical WCAG 2.1 AA violations on the page as it is now; prints the
    count per screen so a run shows every screen's figure."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)
    # preload: false, because axe's preload of the style sheets (for one rule,
    # css-orientation-lock) resolves an @import against the page's address (the admin's forms.css
    # imports widgets.css) and writes what it fetched into an inline <style>, which the page's
    # Content-Security-Policy rightly refuses: the test would fail on the audit, not the page.
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, preload: false})",
        WCAG_21_AA,
    )
    blocking = [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "targets": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in result["violations"]
        if violation["impact"] in BLOCKING
    ]
    print(f"axe-core {screen}: {len(blocking)} serious or critical violation(s)")
    return blocking
