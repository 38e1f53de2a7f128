"""The popup flow in Chromium, as a Backstage frontend and as another site would use it: only
the allowed app origin receives the identity; the page that opened the popup from elsewhere
learns nothing but the allowed origin; hostile text cannot run a script of its own."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page

from ..support import serve
from .conftest import Contexts, themed_gunicorn
from .pages import WAIT_MS

PREFIX = "/api/auth/bitbucket"
# An app page that opens the popup the way Backstage does and records every message it gets.
OPENER = b"""<!DOCTYPE html><html lang="en"><head><title>App</title></head><body><script>
window.received = [];
window.addEventListener('message', function (event) {
  window.received.push({origin: event.origin, data: event.data});
});
</script></body></html>"""


def _opener_page(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [OPENER]


@pytest.fixture(scope="module")
def app_origin() -> Iterator[str]:
    """The Backstage app: allowed to sign in."""
    with serve(_opener_page) as url:
        yield url


@pytest.fixture(scope="module")
def evil_origin() -> Iterator[str]:
    """Another site (another port: another origin)."""
    with serve(_opener_page) as url:
        yield url


@pytest.fixture(scope="module")
def frontend_url(emulator_url: str, app_origin: str) -> Iterator[str]:
    """The app under gunicorn, allowing ``app_origin`` only."""
    yield from themed_gunicorn(emulator_url, ALLOWED_ORIGINS=json.dumps([app_origin]))


@pytest.fixture
def popup_contexts(
    browser: Browser, frontend_url: str, emulator_url: str, app_origin: str, evil_origin: str
) -> Iterator[Contexts]:
    made = Contexts(browser, frontend_url, emulator_url, app_origin, evil_origin)
    yield made
    foreign = made.close()
    assert not foreign, f"requests to other origins: {foreign}"


def popup_sign_in(
    page: Page, frontend_url: str, opener: str, origin: str, scope: str = "account"
) -> tuple[list[dict[str, Any]], list[str]]:
    """Open ``opener``, open the popup from it for ``origin`` as Backstage does, grant as Jane
    and wait for the popup to close: the messages the opener received, and the popup's
    console errors (a script the CSP blocked shows there)."""
    page.goto(opener)
    query = urlencode({"scope": scope, "origin": origin, "flow": "popup", "env": "development"})
    with page.context.expect_page() as opened:
        page.evaluate(
            "url => window.open(url, 'Bitbucket Login', 'width=450,height=730')",
            f"{frontend_url}{PREFIX}/start?{query}",
        )
    popup = opened.value
    errors: list[str] = []
    popup.on("console", lambda message: errors.append(message.text))
    # Listen before the click: the popup may answer and close before click() returns.
    with popup.expect_event("close", timeout=WAIT_MS):
        popup.get_by_role("button", name="Grant access as Jane Doe").click()
    page.wait_for_function("window.received.length > 0", timeout=WAIT_MS)
    page.wait_for_timeout(200)  # a second message, if any, is posted right after the first
    return page.evaluate("window.received"), errors


def test_only_the_allowed_origin_receives_the_identity(
    popup_contexts: Contexts, frontend_url: str, app_origin: str, evil_origin: str
) -> None:
    """Another site opening the popup for the allowed origin gets the ``config_info`` message
    alone (what Backstage sends to ``*``: the allowed origin, public anyway); the app gets the
    identity. Both from the auth backend's origin."""
    stolen, _ = popup_sign_in(popup_contexts.page(), frontend_url, evil_origin, app_origin)
    assert [message["data"] for message in stolen] == [
        {"type": "config_info", "targetOrigin": app_origin}
    ]
    received, _ = popup_sign_in(popup_contexts.page(), frontend_url, app_origin, app_origin)
    assert [message["origin"] for message in received] == [frontend_url] * 2
    answer = received[1]["data"]
    assert answer["type"] == "authorization_response"
    identity = answer["response"]["backstageIdentity"]
    assert identity["identity"]["userEntityRef"] == "user:default/jdoe"
    assert identity["token"].count(".") == 2


def test_a_hostile_scope_runs_no_script_of_its_own(
    popup_contexts: Contexts, frontend_url: str, app_origin: str
) -> None:
    """A scope closing the script, the string or the page: the page's one script still runs
    (the message arrives, scope intact), nothing else does (the opener stays where it is),
    and the policy blocked nothing."""
    scope = "account </script><script>opener.location.assign('about:blank')</script>'\"`\\');x('"
    received, errors = popup_sign_in(
        popup_contexts.page(), frontend_url, app_origin, app_origin, scope=scope
    )
    assert [message["data"]["type"] for message in received] == [
        "config_info",
        "authorization_response",
    ]
    granted = received[1]["data"]["response"]["providerInfo"]["scope"]
    assert scope.split(" ", 1)[1] in granted
    assert not [error for error in errors if "Content Security Policy" in error], errors


def popup_failure(page: Page, popup_url: str, act: Callable[[Page], None]) -> list[Any]:
    """From the app ``page``, open the popup on ``popup_url``, do ``act`` in it, and wait for
    it to close by itself (a sign-in page would wait for a click): the messages the app got."""
    page.evaluate("window.received = []")
    with page.context.expect_page() as opened:
        page.evaluate("url => window.open(url, 'Bitbucket Login')", popup_url)
    with opened.value.expect_event("close", timeout=WAIT_MS):
        act(opened.value)
    page.wait_for_function("window.received.length > 1", timeout=WAIT_MS)
    return [message["data"] for message in page.evaluate("window.received")]


def deny(popup: Page) -> None:
    popup.get_by_role("button", name="Deny").click()


def test_a_refused_or_denied_popup_hands_the_error_to_the_app_and_closes(
    popup_contexts: Contexts, frontend_url: str, app_origin: str
) -> None:
    """Refused at ``/start`` (another ``env``) or denied at Bitbucket, the popup shows no
    sign-in page with its button: it hands Backstage's error to the app and closes."""
    page = popup_contexts.page()
    page.goto(app_origin)
    params = {"scope": "account", "origin": app_origin, "flow": "popup"}
    wrong_env = f"{frontend_url}{PREFIX}/start?{urlencode({**params, 'env': 'production'})}"
    refused = popup_failure(page, wrong_env, lambda popup: None)
    assert refused == [
        {"type": "config_info", "targetOrigin": app_origin},
        {
            "type": "authorization_response",
            "error": {
                "name": "InputError",
                "message": "The environment (env) 'production' is not this server's.",
            },
        },
    ]
    right_env = f"{frontend_url}{PREFIX}/start?{urlencode({**params, 'env': 'development'})}"
    denied = popup_failure(page, right_env, deny)
    assert denied[1]["error"]["name"] == "NotAllowedError"
    assert "chose not to let this site use your Bitbucket account" in denied[1]["error"]["message"]
