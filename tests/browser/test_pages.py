"""Every screen in light and dark, at 360 px and 1280 px: axe-core finds nothing, nothing
scrolls sideways, the structure is right; a screenshot of each (``DOCS_SCREENSHOTS=1``
refreshes docs/screenshots)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from ..support import clear_faults, set_fault
from .conftest import Contexts
from .pages import (
    WAIT_MS,
    axe_violations,
    grant_as,
    horizontal_overflow,
    press_sign_in,
    screenshot,
    sign_in,
    sign_out,
)

SCHEMES = ("light", "dark")
WIDTHS = (360, 1280)


def check_screen(page: Page, name: str, *, ours: bool = True) -> list[str]:
    """Screenshot one screen and list what is wrong with it (empty: all good)."""
    screenshot(page, name, docs=True)
    problems = [f"{name}: {violation}" for violation in axe_violations(page)]
    overflow = horizontal_overflow(page)
    if overflow > 0:
        problems.append(f"{name}: scrolls sideways by {overflow} px")
    if ours:
        structure = page.evaluate(
            """() => ({
                h1: document.querySelectorAll("h1").length,
                lang: document.documentElement.lang,
                main: document.querySelectorAll("main").length,
                banner: document.querySelectorAll("body > header").length,
                footer: document.querySelectorAll("body > footer").length,
            })"""
        )
        expected = {"h1": 1, "lang": "en", "main": 1, "banner": 1, "footer": 1}
        if structure != expected:
            problems.append(f"{name}: structure {structure}, expected {expected}")
    return problems


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_screen_is_accessible_and_fits(
    contexts: Contexts, app_url: str, emulator_url: str, scheme: str, width: int
) -> None:
    page = contexts.page(width, color_scheme=scheme)
    suffix = f"{scheme}-{width}"
    problems: list[str] = []

    page.goto(f"{app_url}/signin")
    problems += check_screen(page, f"signin-{suffix}")
    press_sign_in(page, emulator_url)
    problems += check_screen(page, f"authorize-{suffix}", ours=False)
    grant_as(page, "Jane Doe")
    problems += check_screen(page, f"home-{suffix}")
    sign_out(page)

    sign_in(page, app_url, emulator_url, "Val Visitor", path="/signin")
    problems += check_screen(page, f"not-in-catalog-{suffix}")

    set_fault(emulator_url, "token", status=503)
    try:
        press_sign_in(page, emulator_url)
        grant_as(page, "Jane Doe")
        problems += check_screen(page, f"bitbucket-failing-{suffix}")
    finally:
        clear_faults(emulator_url)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_keyboard_focus_is_visible(contexts: Contexts, app_url: str, scheme: str) -> None:
    page = contexts.page(color_scheme=scheme)
    page.goto(f"{app_url}/signin")
    button = page.get_by_role("button", name="Sign in with Bitbucket")
    for _ in range(5):
        page.keyboard.press("Tab")
        if button.evaluate("element => element === document.activeElement", timeout=WAIT_MS):
            break
    else:
        pytest.fail("Tab never reached the sign-in button")
    ring = button.evaluate(
        """element => {
            const style = getComputedStyle(element);
            return [style.outlineStyle, parseFloat(style.outlineWidth)];
        }"""
    )
    assert ring[0] != "none"
    assert ring[1] >= 2
    screenshot(page, f"focus-{scheme}")


def test_axe_reports_what_is_wrong(page: Page) -> None:
    """The harness itself: axe-core runs under the page's rules and reports a bad page."""
    page.set_content('<html><body><img src="data:,"><p style="color:#eee">faint</p></body>')
    found = " ".join(axe_violations(page))
    for rule in ("html-has-lang", "image-alt", "color-contrast", "landmark-one-main"):
        assert rule in found
