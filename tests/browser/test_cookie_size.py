"""The worst case for the session cookie, in Chromium: it keeps the cookie and the sign-in works."""

from __future__ import annotations

import random
import string
from urllib.parse import unquote, urlencode

from playwright.sync_api import Page

from bitbucket_signin.views import MAX_KEPT_NEXT_LENGTH

from .pages import SIGNED_IN, WAIT_MS, grant_as, heading, sign_in

BROWSER_LIMIT = 4096  # Chromium drops a cookie whose name and value exceed this many bytes
# Characters Chromium leaves as they are in a query, so the page lands on exactly this URL.
QUERY_CHARACTERS = string.ascii_letters + string.digits + "-._~!$()*+,;=:@/?"


def padded_home(rng: random.Random, length: int) -> str:
    """``/?pad=…``: the home page, with a query of random text making ``length`` characters."""
    prefix = "/?pad="
    return prefix + "".join(rng.choice(QUERY_CHARACTERS) for _ in range(length - len(prefix)))


def start_sign_ins(page: Page, app_url: str, emulator_url: str, next_paths: list[str]) -> None:
    """Open ``/start?next=…`` for each, as a person would in new tabs; Chromium must keep
    every cookie they set (it would silently drop one of more than 4 KB)."""
    for next_path in next_paths:
        page.goto(f"{app_url}/api/auth/bitbucket/start?{urlencode({'next': next_path})}")
        page.wait_for_url(f"{emulator_url}/site/oauth2/authorize?**", timeout=WAIT_MS)
        [session] = [c for c in page.context.cookies(app_url) if c["name"] == "session"]
        assert len(session["name"]) + len(session["value"]) < BROWSER_LIMIT


def test_longest_next_values_keep_the_cookie_and_the_sign_in_works(
    page: Page, app_url: str, emulator_url: str
) -> None:
    """Signed in (a profile and a CSRF token in the cookie), six sign-ins started with
    2,040-character ``next`` values: granting the newest signs in (landing on ``/``, the
    ``next`` was too long to keep); then, after two more such starts, one with the longest
    ``next`` kept lands on exactly that page."""
    rng = random.Random(4096)
    sign_in(page, app_url, emulator_url, "Jane Doe")
    assert heading(page) == f"{SIGNED_IN} Jane Doe"

    start_sign_ins(page, app_url, emulator_url, [padded_home(rng, 2040) for _ in range(6)])
    response = grant_as(page, "Jane Doe")
    assert response is not None
    assert response.status == 200
    assert page.url == f"{app_url}/"
    assert heading(page) == f"{SIGNED_IN} Jane Doe"

    wanted = padded_home(rng, MAX_KEPT_NEXT_LENGTH)
    start_sign_ins(page, app_url, emulator_url, [padded_home(rng, 2040) for _ in range(2)])
    start_sign_ins(page, app_url, emulator_url, [wanted])
    response = grant_as(page, "Jane Doe")
    assert response is not None
    assert response.status == 200
    assert unquote(page.url) == f"{app_url}{wanted}"
    assert heading(page) == f"{SIGNED_IN} Jane Doe"
