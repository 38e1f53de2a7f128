"""Checklist rows 8, 9, 12 and 13: a fresh session at sign-in, cookie flags, no provider
token anywhere the browser or the logs can see, and the catalog as the gate."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.typing import ResponseReturnValue
from flask_login import current_user

from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.errors import ConfigError

from ..support import (
    JANE,
    VAL,
    FakeClock,
    csrf_token,
    finish_sign_in,
    home_page,
    remove_from_catalog,
    serve,
    session_contents,
    sign_in,
    signed_session,
    start_sign_in,
)
from .conftest import issued_tokens, leaked, log_texts, secret_values

REFRESH = "/api/auth/bitbucket/refresh"
XHR = {"X-Requested-With": "XMLHttpRequest"}
CALLBACK = "http://127.0.0.1/api/auth/bitbucket/handler/frame"
# All a signed-in session may hold: the Bitbucket identity, Flask-Login's bookkeeping, CSRF.
SESSION_KEYS = {
    "_bitbucket_profile",
    "_bitbucket_provider",
    "_bitbucket_signed_in_at",
    "_bitbucket_seen_at",
    "_bitbucket_csrf",
    "_user_id",
    "_fresh",
    "_id",
}


def test_sign_in_discards_a_planted_session(
    http: requests.Session, app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 8: whatever the session held before sign-in (planted by an attacker) is gone."""
    planted = {
        "attacker": "planted",
        "_bitbucket_csrf": "csrf-the-attacker-knows",
        "_state_bitbucket_attackers": {"data": {"code_verifier": "x" * 43}, "exp": 9e9},
        "_user_id": VAL,
    }
    http.cookies.set("session", signed_session(app, planted), domain="127.0.0.1")
    assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
    after = session_contents(app, http.cookies.get("session"))
    assert after["_user_id"] == JANE
    assert set(after) <= SESSION_KEYS
    assert "planted" not in json.dumps(after)
    assert csrf_token(home_page(http, live_app).text) != "csrf-the-attacker-knows"
    logout = http.post(
        f"{live_app}/api/auth/bitbucket/logout", data={"csrf_token": "csrf-the-attacker-knows"}
    )
    assert logout.status_code == 400  # the planted CSRF token is worth nothing now


def cookie_attributes(response: requests.Response) -> dict[str, Any]:
    """The attributes of the ``session`` cookie the response sets."""
    [header] = [h for h in response.raw.headers.getlist("Set-Cookie") if h.startswith("session=")]
    morsel = SimpleCookie(header)["session"]
    return {"header": header, **{key: morsel[key] for key in ("secure", "httponly", "samesite")}}


@pytest.mark.parametrize(
    ("config", "headers", "secure"),
    [
        ({}, {}, False),
        (
            {"PROXY_FIX": 1, "BITBUCKET_CALLBACK_URL": CALLBACK},
            {"X-Forwarded-Proto": "https"},
            True,
        ),
        ({"SESSION_COOKIE_SECURE": True}, {}, True),
    ],
    ids=["http", "https-behind-proxy", "configured-secure"],
)
def test_session_cookie_flags(
    make_app: Callable[..., Flask],
    bitbucket: EmulatorServer,
    config: dict[str, Any],
    headers: dict[str, str],
    secure: bool,
) -> None:
    """Row 9: HttpOnly, SameSite=Lax, no Domain; Secure whenever the app is served over https."""
    with serve(make_app(**config)) as live_app:
        start = requests.get(
            f"{live_app}/api/auth/bitbucket/start", headers=headers, allow_redirects=False
        )
        callback = finish_sign_in(live_app, bitbucket.url, start, JANE, headers)
    assert callback.status_code == 302
    for response in (start, callback):
        cookie = cookie_attributes(response)
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert bool(cookie["secure"]) is secure
        assert "domain=" not in cookie["header"].lower()


def test_no_provider_token_reaches_the_browser_or_the_logs(
    http: requests.Session,
    app: Flask,
    live_app: str,
    bitbucket: EmulatorServer,
    traffic: list[str],
    logs: pytest.LogCaptureFixture,
) -> None:
    """Row 12: the access and refresh tokens are nowhere: not in the (readable) cookie, the
    pages, the URLs, the headers, nor any log record at any level."""
    cookies: list[str] = []
    start_sign_in(http, live_app, "/dash")
    cookies.append(json.dumps(session_contents(app, http.cookies.get("session"))))
    assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
    cookies.append(json.dumps(session_contents(app, http.cookies.get("session"))))
    page = home_page(http, live_app)
    assert "Signed in as Jane Doe" in page.text
    assert http.get(f"{live_app}{REFRESH}", headers=XHR).status_code == 200
    cookies.append(json.dumps(session_contents(app, http.cookies.get("session"))))
    http.post(f"{live_app}/api/auth/bitbucket/logout", data={"csrf_token": csrf_token(page.text)})

    tokens = issued_tokens(bitbucket)
    assert len(tokens) == 2  # one access token, one refresh token: both must stay server-side
    assert leaked(traffic + cookies + log_texts(logs), secret_values(bitbucket)) == []
    assert all(set(json.loads(cookie)) <= SESSION_KEYS for cookie in cookies[1:])


def test_account_not_in_catalog_gets_no_session(
    http: requests.Session, app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 13: 403 with a clear message, and the cookie names nobody."""
    response = sign_in(http, live_app, bitbucket.url, VAL)
    assert response.status_code == 403
    assert "not known here" in response.text
    contents = session_contents(app, http.cookies.get("session"))
    assert not {"_user_id", "_bitbucket_profile"} & set(contents)
    assert http.get(f"{live_app}{REFRESH}", headers=XHR).status_code == 401


def test_removal_from_the_catalog_ends_the_session_at_the_next_request(
    http: requests.Session,
    app: Flask,
    live_app: str,
    bitbucket: EmulatorServer,
    catalog_file: Path,
    clock: FakeClock,
) -> None:
    """Row 13: Jane's entity deleted while she is signed in: her next request is anonymous,
    for pages and for the JSON refresh alike, and the session is emptied."""
    assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
    assert http.get(f"{live_app}{REFRESH}", headers=XHR).status_code == 200
    remove_from_catalog(catalog_file, "jdoe", clock)
    assert http.get(f"{live_app}{REFRESH}", headers=XHR).status_code == 401
    assert "_user_id" not in session_contents(app, http.cookies.get("session"))
    assert home_page(http, live_app).status_code == 302


def test_a_host_app_that_makes_the_session_cookie_readable_is_refused(
    make_app: Callable[..., Flask],
) -> None:
    """``SESSION_COOKIE_HTTPONLY = False`` would let any script read the session cookie and
    its CSRF token (row 9): start-up stops, with one line naming the setting."""
    with pytest.raises(ConfigError, match=r"^SESSION_COOKIE_HTTPONLY must stay True") as refused:
        make_app(SESSION_COOKIE_HTTPONLY=False)
    assert "\n" not in str(refused.value)


def test_a_host_pages_own_cache_control_is_kept_and_said_once(
    make_app: Callable[..., Flask],
    bitbucket: EmulatorServer,
    http: requests.Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A page of the host app served to a signed-in person: without a ``Cache-Control`` it
    gets ``no-store``; with its own, it keeps it, and the first answer says so in a warning
    naming the endpoint (one, however many answers); ``Vary: Cookie`` either way."""
    app = make_app()

    @app.route("/cached")
    def cached() -> ResponseReturnValue:
        return f"Hello {current_user.get_id()}", {"Cache-Control": "public, max-age=60"}

    @app.route("/plain")
    def plain() -> ResponseReturnValue:
        return f"Hello {current_user.get_id()}"

    with serve(app) as live_app:
        assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
        answers = [http.get(f"{live_app}{path}", timeout=10) for path in ("/cached",) * 2]
        plain_page = http.get(f"{live_app}/plain", timeout=10)
    for answer in answers:
        assert JANE in answer.text
        assert answer.headers["Cache-Control"] == "public, max-age=60"
        assert "Cookie" in answer.headers["Vary"]
    assert plain_page.headers["Cache-Control"] == "no-store"
    assert "Cookie" in plain_page.headers["Vary"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [message for message in warnings if "Cache-Control" in message] == [
        "cached sets its own Cache-Control ('public, max-age=60') on a page for a signed-in "
        "person: kept; bitbucket-signin would send no-store"
    ]
