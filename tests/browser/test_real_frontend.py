"""A real Backstage frontend signs in through the app: ``BitbucketAuth`` from the published
``@backstage/core-app-api`` (pinned in ``backstage/package.json``), bundled into a page on a
second origin, in Chromium, against the emulator.

The page (``backstage/app.js``) signs in the way a Backstage app's sign-in page does: a click
on its button calls ``getBackstageIdentity({instantPopup: true})``, which opens the popup at
once instead of queueing a request for the OAuthRequestManager's "login required" dialog.
"""

from __future__ import annotations

import runpy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from joserfc.errors import JoseError
from playwright.sync_api import BrowserContext, Page, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from ..frontend_support import AUTH, published_keys, verify
from ..support import JANE_IDENTITY, block_after
from .conftest import Contexts
from .pages import WAIT_MS, origin

SIGN_IN = "Sign in with Bitbucket"
DOCS_SECTION = "## Use it as the Bitbucket auth backend of a Backstage app"


@pytest.fixture
def backstage_contexts(
    browser: Any,
    backstage_app_url: str,
    emulator_url: str,
    frontend_url: str,
    foreign_frontend_url: str,
    cross_site_frontend_url: str,
) -> Iterator[Contexts]:
    """Browser contexts whose requests may go to the app, the emulator and the frontends."""
    frontends = (frontend_url, foreign_frontend_url, cross_site_frontend_url)
    made = Contexts(browser, backstage_app_url, emulator_url, *frontends)
    yield made
    foreign = made.close()
    assert not foreign, f"requests to other origins: {foreign}"


@pytest.fixture
def context(backstage_contexts: Contexts) -> BrowserContext:
    return backstage_contexts.new(viewport={"width": 1280, "height": 800})


def record_responses(context: BrowserContext) -> list[Response]:
    """Every response any page of the context gets from now on, the popup's included."""
    responses: list[Response] = []
    context.on("response", lambda response: responses.append(response))
    return responses


def open_backstage(
    context: BrowserContext,
    frontend_url: str,
    app_url: str,
    *,
    redirect_flow: bool = False,
    environment: str = "development",
) -> Page:
    """The Backstage app served at ``frontend_url``, with ``app_url`` as its backend, in
    ``environment``; with ``redirect_flow``, ``enableExperimentalRedirectFlow: true``."""
    page = context.new_page()
    flow = "&redirect" if redirect_flow else ""
    page.goto(f"{frontend_url}/?backend={quote(app_url, safe='')}{flow}&env={environment}")
    page.wait_for_function("() => window.backstage !== undefined")
    return page


def reload(page: Page) -> None:
    """Reload the Backstage app: a fresh ``BitbucketAuth`` that knows no session yet."""
    page.reload()
    page.wait_for_function("() => window.backstage !== undefined")


def current_identity(page: Page) -> dict[str, Any]:
    """``getBackstageIdentity({optional: true})``, which must find someone signed in."""
    result = call(page, "identity")
    assert result.get("value"), result
    identity: dict[str, Any] = result["value"]
    return identity


def call(page: Page, method: str) -> dict[str, Any]:
    """``backstage.<method>()`` in the page: ``{"value": …}`` or ``{"error": {name, message}}``;
    fails when it has not settled within ``WAIT_MS``."""
    result: dict[str, Any] = page.evaluate(
        """([method, ms]) => Promise.race([
            window.backstage[method](),
            new Promise(resolve => setTimeout(() => resolve({pending: method}), ms)),
        ])""",
        [method, WAIT_MS],
    )
    assert "pending" not in result, f"backstage.{method}() still pending after {WAIT_MS} ms"
    return result


def open_popup(page: Page) -> Page:
    """Press the page's sign-in button; returns the popup it opens."""
    try:
        with page.expect_popup(timeout=WAIT_MS) as opening:
            page.get_by_role("button", name=SIGN_IN).click()
    except PlaywrightTimeoutError:
        pytest.fail(f"no sign-in popup opened; the sign-in gave {call(page, 'started')}")
    popup = opening.value
    popup.set_default_timeout(WAIT_MS)
    return popup


def sign_in(page: Page, emulator_url: str, display_name: str) -> dict[str, Any]:
    """Sign in through the popup, granting as ``display_name`` on the emulator's page; returns
    what ``getBackstageIdentity({instantPopup: true})`` gave the page."""
    popup = open_popup(page)
    popup.wait_for_url(f"{emulator_url}/site/oauth2/authorize?**")
    with popup.expect_event("close", timeout=WAIT_MS):  # the frame page closes itself
        popup.get_by_role("button", name=f"Grant access as {display_name}").click()
    return call(page, "started")


def verified_claims(token: str, app_url: str) -> dict[str, Any]:
    """The token's claims, once it verifies with the app's published JWKS alone."""
    jwks = published_keys(app_url)
    claims: dict[str, Any] = verify(token, jwks, issuer=f"{app_url}{AUTH}", now=time.time()).claims
    assert claims["sub"] == JANE_IDENTITY["userEntityRef"]
    assert claims["exp"] - claims["iat"] == 3600
    return claims


def check_identity(identity: dict[str, Any], app_url: str) -> None:
    """What the frontend holds is Jane's identity, with a token that says the same."""
    assert identity["identity"] == JANE_IDENTITY
    claims = verified_claims(identity["token"], app_url)
    assert claims["ent"] == JANE_IDENTITY["ownershipEntityRefs"]
    left = identity["expiresAt"].timestamp() - time.time()
    assert 3000 < left <= 3600


def popup_url(app_url: str, frontend_url: str) -> str:
    """Where ``BitbucketAuth`` on ``frontend_url`` opens its sign-in popup."""
    return (
        f"{app_url}{AUTH}/bitbucket/start?scope=account"
        f"&origin={quote(frontend_url, safe='')}&flow=popup&env=development"
    )


def refused_in_the_popup(
    page: Page, popup: Page, responses: list[Response], status: int
) -> dict[str, Any]:
    """The popup ``page`` opened answered ``status`` at ``/start``, went no further (no sign-in
    page, no Bitbucket) and closed itself, as Backstage's backend's popup does: what the
    frontend made of it."""
    if not popup.is_closed():
        popup.wait_for_event("close", timeout=WAIT_MS)
    seen = [r for r in responses if r.frame.page == popup]
    assert [(r.status, "/bitbucket/start?" in r.url) for r in seen] == [(status, True)]
    return call(page, "started")


def documented_calling_user(folder: Path) -> Callable[[str, str], str]:
    """The Backstage docs page's ``calling_user``, as a service would copy it."""
    module = folder / "calling_user.py"
    module.write_text(block_after("backstage", DOCS_SECTION, "python"), encoding="utf-8")
    function: Callable[[str, str], str] = runpy.run_path(str(module))["calling_user"]
    return function


def answers(responses: list[Response], method: str, route: str) -> list[Response]:
    """The responses to ``method`` requests for ``/bitbucket/<route>``."""
    return [r for r in responses if f"/bitbucket/{route}?" in r.url and r.request.method == method]


def test_backstage_signs_in_survives_a_reload_and_signs_out(
    context: BrowserContext,
    backstage_app_url: str,
    emulator_url: str,
    frontend_url: str,
    tmp_path: Path,
) -> None:
    responses = record_responses(context)
    popups: list[Page] = []
    page = open_backstage(context, frontend_url, backstage_app_url)
    assert call(page, "identity") == {"value": None}
    (signed_out,) = answers(responses, "GET", "refresh")
    assert signed_out.status == 401  # an answer the page may read: signed out, not unreachable
    assert signed_out.all_headers()["access-control-allow-origin"] == frontend_url

    outcome = sign_in(page, emulator_url, "Jane Doe")
    assert "value" in outcome, outcome
    check_identity(outcome["value"], backstage_app_url)
    assert call(page, "pendingRequests") == {"value": []}
    calling_user = documented_calling_user(tmp_path)
    token = outcome["value"]["token"]
    assert calling_user(token, f"{backstage_app_url}{AUTH}") == JANE_IDENTITY["userEntityRef"]
    altered = token[:-4] + ("BBBB" if token.endswith("AAAA") else "AAAA")  # the signature's end
    with pytest.raises(JoseError):
        calling_user(altered, f"{backstage_app_url}{AUTH}")
    start = next(r for r in responses if "/bitbucket/start?" in r.url)
    assert start.url == popup_url(backstage_app_url, frontend_url)
    frame = next(r for r in responses if "/bitbucket/handler/frame?" in r.url)
    assert frame.status == 200
    profile = call(page, "profile")["value"]
    assert profile["displayName"] == "Jane Doe"
    assert profile["email"] == "jane@example.com"

    page.on("popup", lambda popup: popups.append(popup))
    reload(page)
    check_identity(current_identity(page), backstage_app_url)
    assert popups == []
    assert call(page, "pendingRequests") == {"value": []}
    refresh = answers(responses, "GET", "refresh")[-1]
    assert refresh.status == 200
    assert "cookie" in refresh.request.all_headers()
    headers = refresh.all_headers()
    assert headers["access-control-allow-origin"] == frontend_url
    assert headers["access-control-allow-credentials"] == "true"

    assert call(page, "signOut") == {"value": None}
    (logout,) = answers(responses, "POST", "logout")
    assert logout.status == 200
    assert logout.all_headers().get("content-length") == "0"  # an empty body
    assert call(page, "identity") == {"value": None}
    reload(page)
    assert call(page, "identity") == {"value": None}
    assert answers(responses, "GET", "refresh")[-1].status == 401
    assert popups == []


def test_backstage_redirect_flow_signs_in_through_the_reload(
    context: BrowserContext, backstage_app_url: str, emulator_url: str, frontend_url: str
) -> None:
    """With ``enableExperimentalRedirectFlow``, the page itself goes to Bitbucket, comes back
    to where it was, and the reloaded app finds the identity through ``/refresh``."""
    responses = record_responses(context)
    page = open_backstage(context, frontend_url, backstage_app_url, redirect_flow=True)
    popups: list[Page] = []
    page.on("popup", lambda popup: popups.append(popup))
    here = page.url
    page.get_by_role("button", name=SIGN_IN).click()
    page.wait_for_url(f"{emulator_url}/site/oauth2/authorize?**")
    (start,) = answers(responses, "GET", "start")
    assert start.url == (
        f"{backstage_app_url}{AUTH}/bitbucket/start?scope=account"
        f"&origin={quote(frontend_url, safe='')}&redirectUrl={quote(here, safe='')}"
        "&flow=redirect&env=development"
    )
    with page.expect_navigation(url=here):
        page.get_by_role("button", name="Grant access as Jane Doe").click()
    page.wait_for_function("() => window.backstage !== undefined")
    check_identity(current_identity(page), backstage_app_url)
    assert popups == []


def test_backstage_on_an_origin_not_allowed_is_refused(
    context: BrowserContext,
    backstage_app_url: str,
    emulator_url: str,
    frontend_url: str,
    foreign_frontend_url: str,
) -> None:
    """As with Backstage's own backend, whose CORS allows the app's origin only: from another
    origin the refresh is refused, so the sign-in fails before any popup opens and the
    session of a person signed in elsewhere can be neither read nor ended; and a popup
    opened for that origin anyway answers 403, never reaches Bitbucket and closes, having
    told only the app's own origin (``app.baseUrl``), which the frontend reports as
    "Login failed, Incorrect app origin, expected <that origin>"."""
    responses = record_responses(context)
    allowed = open_backstage(context, frontend_url, backstage_app_url)
    assert "value" in sign_in(allowed, emulator_url, "Jane Doe")

    foreign = open_backstage(context, foreign_frontend_url, backstage_app_url)
    popups: list[Page] = []
    foreign.on("popup", lambda popup: popups.append(popup))
    assert call(foreign, "identity") == {"value": None}
    foreign.get_by_role("button", name=SIGN_IN).click()
    assert call(foreign, "started") == {
        "error": {
            "name": "AuthConnectionError",
            "message": "Auth refresh request failed, TypeError: Failed to fetch",
        }
    }
    assert popups == []
    signed_out = call(foreign, "signOut")
    assert signed_out == {
        "error": {"name": "Error", "message": "Logout request failed, TypeError: Failed to fetch"}
    }
    for response in responses:
        if response.frame.page == foreign and origin(response.url) == backstage_app_url:
            headers = response.all_headers()
            assert headers.get("access-control-allow-origin") != foreign_frontend_url
            assert headers.get("access-control-allow-credentials") != "true"

    with foreign.expect_popup(timeout=WAIT_MS) as opening:
        foreign.evaluate(
            "url => window.backstage.openLoginPopup(url)",
            popup_url(backstage_app_url, foreign_frontend_url),
        )
    assert refused_in_the_popup(foreign, opening.value, responses, 403) == {
        "error": {
            "name": "PopupClosedError",
            "message": f"Login failed, Incorrect app origin, expected {frontend_url}",
        }
    }

    reload(allowed)
    check_identity(current_identity(allowed), backstage_app_url)


def test_backstage_on_another_site_loses_the_session_at_the_reload(
    context: BrowserContext,
    backstage_app_url: str,
    emulator_url: str,
    cross_site_frontend_url: str,
) -> None:
    """An allowed origin on another site (``localhost`` beside ``127.0.0.1``) signs in through
    the popup, but the ``SameSite=Lax`` session cookie stays home when that site calls
    ``/refresh``: after a reload the person is signed out (the docs' warning)."""
    responses = record_responses(context)
    page = open_backstage(context, cross_site_frontend_url, backstage_app_url)
    outcome = sign_in(page, emulator_url, "Jane Doe")
    assert "value" in outcome, outcome
    check_identity(outcome["value"], backstage_app_url)

    reload(page)
    assert call(page, "identity") == {"value": None}
    refresh = answers(responses, "GET", "refresh")[-1]
    assert refresh.status == 401
    assert "cookie" not in refresh.request.all_headers()


def test_backstage_in_another_environment_fails_in_the_popup(
    context: BrowserContext, backstage_app_url: str, frontend_url: str
) -> None:
    """A frontend whose ``auth.environment`` is not the app's: ``/refresh`` answers 400, so the
    sign-in opens the popup, where ``/start`` answers 400 too, never reaches Bitbucket and
    closes, handing the frontend Backstage's ``InputError`` (the docs' table)."""
    responses = record_responses(context)
    page = open_backstage(context, frontend_url, backstage_app_url, environment="production")
    assert call(page, "identity") == {"value": None}
    assert [r.status for r in answers(responses, "GET", "refresh")] == [400]

    assert refused_in_the_popup(page, open_popup(page), responses, 400) == {
        "error": {
            "name": "InputError",
            "message": "The environment (env) 'production' is not this server's.",
        }
    }
    (start,) = answers(responses, "GET", "start")
    assert start.url.endswith("&flow=popup&env=production")
