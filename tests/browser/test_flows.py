"""Sign-in flows clicked through in Chromium, checked by what the person sees."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, Response

from ..support import VAL, clear_faults, set_fault
from .conftest import Contexts
from .pages import (
    SIGNED_IN,
    WAIT_MS,
    alert_text,
    check_security_headers,
    grant_as,
    heading,
    image_loaded,
    press_sign_in,
    screenshot,
    sign_in,
    sign_in_button,
    sign_out,
)


def record_responses(page: Page) -> list[Response]:
    """Every response the page gets from now on, redirects included."""
    responses: list[Response] = []
    page.on("response", lambda response: responses.append(response))
    return responses


def test_sign_in_returns_to_the_page_asked_for(page: Page, app_url: str, emulator_url: str) -> None:
    responses = record_responses(page)
    page.goto(f"{app_url}/?tab=groups")
    assert page.url.startswith(f"{app_url}/signin?next=")
    assert heading(page) == "Sign in to Acme Developer Portal"
    assert "Please sign in to see this page." in page.inner_text("main")
    screenshot(page, "flow-1-signin")

    press_sign_in(page, emulator_url)
    assert "Authorize" in heading(page)
    screenshot(page, "flow-1-authorize")
    grant_as(page, "Jane Doe")

    assert page.url == f"{app_url}/?tab=groups"
    assert heading(page) == f"{SIGNED_IN} Jane Doe"
    assert image_loaded(page.locator("img.avatar"))
    assert "group:default/platform" in page.get_by_role("list", name="Groups").inner_text()
    screenshot(page, "flow-1-home")

    callback = next(r for r in responses if "/handler/frame" in r.url)
    assert callback.status == 302
    home = next(r for r in reversed(responses) if r.url == page.url)
    assert home.status == 200
    for response in (callback, home):
        assert response.all_headers()["cache-control"] == "no-store"
        check_security_headers(response.all_headers())


def test_deny_leaves_the_person_signed_out(page: Page, app_url: str, emulator_url: str) -> None:
    page.goto(f"{app_url}/signin")
    press_sign_in(page, emulator_url)
    with page.expect_navigation(timeout=WAIT_MS) as navigation:
        page.get_by_role("button", name="Deny").click()
    assert navigation.value is not None
    assert navigation.value.status == 403
    assert "You chose not to let this site use your Bitbucket account" in alert_text(page)
    assert sign_in_button(page).is_visible()
    screenshot(page, "flow-2-denied")

    page.goto(f"{app_url}/")
    assert page.url.startswith(f"{app_url}/signin")


def test_account_missing_from_catalog_is_told_what_to_ask_for(
    page: Page, app_url: str, emulator_url: str
) -> None:
    response = sign_in(page, app_url, emulator_url, "Val Visitor")
    assert response is not None
    assert response.status == 403
    alert = alert_text(page)
    assert "Your Bitbucket account is not known here" in alert
    assert "Ask an administrator" in alert
    assert f'bitbucket.org/user-id: "{VAL}"' in alert
    assert "Val Visitor" in alert
    screenshot(page, "flow-3-not-in-catalog")


def test_sign_out_and_back_shows_no_signed_in_page(
    page: Page, app_url: str, emulator_url: str
) -> None:
    response = sign_in(page, app_url, emulator_url, "Jane Doe")
    assert response is not None
    assert response.all_headers()["cache-control"] == "no-store"
    assert heading(page) == f"{SIGNED_IN} Jane Doe"

    sign_out(page)
    assert page.url == f"{app_url}/signin"
    assert heading(page).startswith("Sign in")
    screenshot(page, "flow-4-signed-out")

    page.go_back(timeout=WAIT_MS)
    page.wait_for_load_state(timeout=WAIT_MS)
    assert SIGNED_IN not in page.inner_text("body")
    assert page.url.startswith(f"{app_url}/signin")


@pytest.mark.parametrize(
    ("fault", "status", "shown"),
    [
        ({"status": 503}, 503, "temporarily unavailable"),
        ({"hang": True}, 504, "did not answer"),
    ],
    ids=["failing", "hanging"],
)
def test_bitbucket_failing_then_try_again(
    contexts: Contexts,
    impatient_app_url: str,
    emulator_url: str,
    fault: dict[str, Any],
    status: int,
    shown: str,
) -> None:
    contexts.allowed.add(impatient_app_url)
    page = contexts.page()
    set_fault(emulator_url, "token", **fault)
    response = sign_in(page, impatient_app_url, emulator_url, "Jane Doe")
    assert response is not None
    assert response.status == status
    assert "Bitbucket is not answering properly" in alert_text(page)
    assert shown in alert_text(page)
    screenshot(page, f"flow-5-bitbucket-{'failing' if 'status' in fault else 'hanging'}")

    clear_faults(emulator_url)
    try_again = page.get_by_role("button", name="Try again")
    try_again.click()
    page.wait_for_url(f"{emulator_url}/**", timeout=WAIT_MS)
    grant_as(page, "Jane Doe")
    assert heading(page) == f"{SIGNED_IN} Jane Doe"


def test_two_people_at_once_each_see_themselves(
    contexts: Contexts, app_url: str, emulator_url: str
) -> None:
    people = {"Jane Doe": contexts.page(), "Li Chen": contexts.page()}
    for name, page in people.items():
        sign_in(page, app_url, emulator_url, name)
    for _ in range(3):  # several requests, so several gunicorn workers answer
        for name, page in people.items():
            page.reload(timeout=WAIT_MS)
            assert heading(page) == f"{SIGNED_IN} {name}"
            others = [other for other in people if other != name]
            assert not any(other in page.inner_text("body") for other in others)
    for name, page in people.items():
        screenshot(page, f"flow-6-{name.split()[0].lower()}")


def test_sign_in_works_without_javascript(
    contexts: Contexts, app_url: str, emulator_url: str
) -> None:
    page = contexts.page(java_script_enabled=False)
    sign_in(page, app_url, emulator_url, "Li Chen", path="/?tab=groups")
    assert page.url == f"{app_url}/?tab=groups"
    assert heading(page) == f"{SIGNED_IN} Li Chen"
