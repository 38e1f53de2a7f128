"""Checklist row 18: no page may be framed, and no page may run inline script — including
error pages, redirects, JSON answers and static files."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer

from ..frontend_support import APP_ORIGIN, FRONTEND, frontend_sign_in
from ..support import JANE, serve, set_fault, sign_in

XHR = {"X-Requested-With": "XMLHttpRequest"}
PREFIX = "/api/auth/bitbucket"


@pytest.fixture
def site(make_app: Callable[..., Flask]) -> Iterator[str]:
    """The app on a live server, with one more route that fails with an unhandled error."""
    app = make_app(**FRONTEND)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("unhandled")

    with serve(app) as url:
        yield url


def failing_sign_in(http: requests.Session, url: str, bitbucket: EmulatorServer) -> Any:
    set_fault(bitbucket.url, "token", status=500, times=1)
    return sign_in(http, url, bitbucket.url, JANE)


# name → (signed in first?, the request) ; each answer is checked for the headers
PAGES: dict[str, tuple[bool, Callable[[requests.Session, str, EmulatorServer], Any]]] = {
    "signin": (False, lambda http, url, bb: http.get(f"{url}/signin")),
    "signin-hostile-next": (False, lambda http, url, bb: http.get(f"{url}/signin?next=//e.test")),
    "home-redirect": (False, lambda http, url, bb: http.get(f"{url}/", allow_redirects=False)),
    "start-redirect": (
        False,
        lambda http, url, bb: http.get(f"{url}{PREFIX}/start", allow_redirects=False),
    ),
    "start-refused-400": (
        False,
        lambda http, url, bb: http.get(f"{url}{PREFIX}/start", headers={"Host": "evil.test"}),
    ),
    "callback-400": (False, lambda http, url, bb: http.get(f"{url}{PREFIX}/handler/frame")),
    "callback-error-no-state-400": (
        False,
        lambda http, url, bb: http.get(f"{url}{PREFIX}/handler/frame?error=access_denied&state=x"),
    ),
    "callback-upstream-502": (False, failing_sign_in),
    "not-found-404": (False, lambda http, url, bb: http.get(f"{url}/no/such/page")),
    "logout-get-405": (False, lambda http, url, bb: http.get(f"{url}{PREFIX}/logout")),
    "logout-no-csrf-400": (False, lambda http, url, bb: http.post(f"{url}{PREFIX}/logout")),
    "refresh-401-json": (False, lambda http, url, bb: http.get(f"{url}{PREFIX}/refresh")),
    "unhandled-500": (False, lambda http, url, bb: http.get(f"{url}/boom")),
    "health-json": (False, lambda http, url, bb: http.get(f"{url}/healthz")),
    "theme-css": (False, lambda http, url, bb: http.get(f"{url}/_bitbucket_signin/theme.css")),
    "static-css": (
        False,
        lambda http, url, bb: http.get(f"{url}/_bitbucket_signin/static/signin.css"),
    ),
    "callback-302": (True, lambda http, url, bb: sign_in(http, url, bb.url, JANE)),
    "home-signed-in": (True, lambda http, url, bb: http.get(f"{url}/")),
    "refresh-json": (True, lambda http, url, bb: http.get(f"{url}{PREFIX}/refresh", headers=XHR)),
    "popup-page": (False, lambda http, url, bb: frontend_sign_in(http, url, bb.url, JANE)),
    "refresh-preflight": (
        False,
        lambda http, url, bb: http.options(
            f"{url}{PREFIX}/refresh",
            headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "GET"},
        ),
    ),
    "logout-preflight": (
        False,
        lambda http, url, bb: http.options(
            f"{url}{PREFIX}/logout",
            headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST"},
        ),
    ),
    "jwks-json": (False, lambda http, url, bb: http.get(f"{url}/api/auth/.well-known/jwks.json")),
    "openid-configuration-json": (
        False,
        lambda http, url, bb: http.get(f"{url}/api/auth/.well-known/openid-configuration"),
    ),
}


def directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {words[0].lower(): words[1:] for words in parts}


@pytest.mark.parametrize("page", PAGES)
def test_no_framing_and_no_inline_script(
    http: requests.Session, site: str, bitbucket: EmulatorServer, page: str
) -> None:
    signed_in, fetch = PAGES[page]
    if signed_in:
        assert sign_in(http, site, bitbucket.url, JANE).status_code == 302
    response = fetch(http, site, bitbucket)
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    script_src = policy.get("script-src", policy["default-src"])
    assert not {"'unsafe-inline'", "'unsafe-eval'", "*", "data:"} & set(script_src)
    assert policy["object-src"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    if response.headers.get("Content-Type", "").startswith("text/html") and response.text:
        # Inline script only on the popup page: exactly the one whose hash the policy names.
        allowed = {word.strip("'") for word in script_src if word.startswith("'sha256-")}
        inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", response.text, re.S)
        assert {_hash(script) for script in inline} <= allowed
        assert len(inline) == len(allowed) <= 1
        text = re.sub(r"<script>.*?</script>", "", response.text, flags=re.S)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text, re.IGNORECASE)
        assert not re.search(r"\son[a-z]+\s*=", response.text, re.IGNORECASE)
        assert "javascript:" not in response.text.lower()


def _hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def test_pages_cover_every_route(app: Flask) -> None:
    """A new route fails this test until it is added to PAGES above."""
    covered = {"home", "static", "bitbucket_signin.static", "bitbucket_signin.theme"}
    covered |= {f"bitbucket_signin.{name}" for name in ("signin", "start", "callback")}
    covered |= {"bitbucket_signin.refresh", "bitbucket_signin.logout", "bitbucket_signin.health"}
    covered |= {"bitbucket_signin.refresh_preflight", "bitbucket_signin.logout_preflight"}
    covered |= {"bitbucket_signin.jwks", "bitbucket_signin.openid_configuration"}
    assert {rule.endpoint for rule in app.url_map.iter_rules()} <= covered
