"""What a person does and sees in the browser tests: clicks, checks and screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Locator, Page, Response

ROOT = Path(__file__).parent.parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = Path(__file__).parent.parent / "assets" / "axe.min.js"
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")
WAIT_MS = 10_000
SIGNED_IN = "Signed in as"


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sign_in_button(page: Page) -> Locator:
    """The sign-in page's one button (also labelled "Try again" after a Bitbucket failure)."""
    return page.get_by_role("button", name="Sign in with Bitbucket")


def press_sign_in(page: Page, emulator_url: str) -> None:
    """Press "Sign in with Bitbucket" and wait for the emulator's authorize page."""
    sign_in_button(page).click()
    page.wait_for_url(f"{emulator_url}/site/oauth2/authorize?**", timeout=WAIT_MS)


def grant_as(page: Page, display_name: str) -> Response | None:
    """On the emulator's authorize page, press the account's "Grant access as …" button."""
    with page.expect_navigation(timeout=WAIT_MS) as navigation:
        page.get_by_role("button", name=f"Grant access as {display_name}").click()
    return navigation.value


def sign_in(
    page: Page, app_url: str, emulator_url: str, display_name: str, path: str = "/"
) -> Response | None:
    """Open ``path`` signed out, go through the sign-in page and Bitbucket, grant as someone."""
    page.goto(f"{app_url}{path}")
    press_sign_in(page, emulator_url)
    return grant_as(page, display_name)


def sign_out(page: Page) -> None:
    """Press "Sign out" on a signed-in page and wait for the sign-in page."""
    with page.expect_navigation(timeout=WAIT_MS):
        page.get_by_role("button", name="Sign out").click()


def heading(page: Page) -> str:
    """The text of the page's one ``h1``."""
    return page.locator("h1").inner_text(timeout=WAIT_MS)


def alert_text(page: Page) -> str:
    """What the page announces with ``role="alert"``."""
    return page.get_by_role("alert").inner_text(timeout=WAIT_MS)


def image_loaded(image: Locator) -> bool:
    """Whether an ``img`` was fetched and decoded (not a broken-image placeholder)."""
    width: int = image.evaluate("img => img.complete ? img.naturalWidth : 0", timeout=WAIT_MS)
    return width > 0


def screenshot(page: Page, name: str, *, docs: bool = False) -> Path:
    """A full-page PNG in ``test-artifacts/screenshots``; with ``docs`` and
    ``DOCS_SCREENSHOTS=1`` in the environment, also into ``docs/screenshots``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True, animations="disabled", timeout=WAIT_MS)
    if docs and os.environ.get("DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SCREENSHOTS / path.name)
    return path


def axe_violations(page: Page) -> list[str]:
    """axe-core's findings on the page (WCAG 2.x A/AA and best practice), one line each.

    ``page.evaluate`` runs outside the page's CSP, so the strict policy can stay on.
    """
    page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(
        """async tags => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations;
        }""",
        list(AXE_TAGS),
    )
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"])
        for violation in violations
    ]


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
    overflow: int = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def check_security_headers(headers: Mapping[str, str]) -> None:
    """The headers every page of the app carries (lower-case names, as Playwright gives them)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    policy = lowered.get("content-security-policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert "frame-ancestors" in directives, policy
    assert directives["frame-ancestors"] == ["'none'"], policy
    script = directives.get("script-src", directives.get("default-src", []))
    assert script, policy
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(script), policy
    assert lowered.get("x-content-type-options") == "nosniff"
    assert lowered.get("referrer-policy") in {"same-origin", "no-referrer", "strict-origin"}
