"""views.py: the blueprint's routes through Flask's test client; Bitbucket, where a route calls
it, is a stand-in on loopback."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from bitbucket_signin.errors import SessionStoreUnavailableError
from bitbucket_signin.oauth import STALE_LINK
from bitbucket_signin.security import CSRF_KEY
from bitbucket_signin.signals import sign_in_failed, signed_in, signed_out
from bitbucket_signin.views import (
    MAX_KEPT_NEXT_LENGTH,
    MAX_PENDING_SIGN_INS,
    PENDING_STATE_PREFIX,
    SIGN_IN_NOTICE,
    text_color_on,
)

from ..support import AUTHORIZE_PATH, JANE, JANE_IDENTITY, TOKEN_PATH, FakeClock
from .conftest import signed_in_session, unit_app
from .fake_bitbucket import FakeBitbucket

START = "/api/auth/bitbucket/start"
CALLBACK = "/api/auth/bitbucket/handler/frame"
REFRESH = "/api/auth/bitbucket/refresh"
LOGOUT = "/api/auth/bitbucket/logout"
XHR = {"X-Requested-With": "XMLHttpRequest"}
USER = {"uuid": JANE, "display_name": "Jane Doe", "username": "jdoe"}
TOKEN = {"access_token": "the-access-token", "token_type": "bearer", "expires_in": 7200}


def who(client: FlaskClient) -> str:
    return client.get("/who").text


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def pending(client: FlaskClient) -> dict[str, Any]:
    """The sign-ins waiting for Bitbucket in the client's session, by state."""
    with client.session_transaction() as session:
        return {
            key.removeprefix(PENDING_STATE_PREFIX): value["data"]
            for key, value in session.items()
            if key.startswith(PENDING_STATE_PREFIX)
        }


def start(client: FlaskClient, next_path: str = "/") -> str:
    """Press "Sign in with Bitbucket"; the state of the new pending sign-in."""
    response = client.get(START, query_string={"next": next_path})
    assert response.status_code == 302, response.text
    return query(response.headers["Location"])["state"]


@contextmanager
def sent(signal: Any, app: Flask) -> Iterator[list[dict[str, Any]]]:
    """What ``signal`` was sent with, for ``app``, within the block."""
    received: list[dict[str, Any]] = []

    def receive(_: Flask, **kwargs: Any) -> None:
        received.append(kwargs)

    signal.connect(receive, app)
    try:
        yield received
    finally:
        signal.disconnect(receive, app)


# --- the sign-in page ---------------------------------------------------------------------


def test_the_sign_in_page_says_why_only_when_sent_from_a_page(client: FlaskClient) -> None:
    plain = client.get("/signin")
    assert plain.status_code == 200
    assert "Sign in with Bitbucket" in plain.text
    assert SIGN_IN_NOTICE not in plain.text
    assert SIGN_IN_NOTICE in client.get("/signin?next=/private").text


def test_the_sign_in_button_carries_only_a_safe_next(client: FlaskClient) -> None:
    assert 'name="next" value="/dash?x=1"' in client.get("/signin?next=/dash%3Fx%3D1").text
    page = client.get("/signin?next=//evil.test/").text
    assert "evil.test" not in page
    assert 'name="next"' not in page


def test_someone_signed_in_goes_on_to_next(client: FlaskClient, clock: FakeClock) -> None:
    signed_in_session(client, clock)
    assert client.get("/signin?next=/dash").headers["Location"] == "/dash"
    assert client.get("/signin?next=https://evil.test/").headers["Location"] == "/"


# --- start ----------------------------------------------------------------------------------


def test_start_sends_the_browser_to_bitbucket_and_remembers_next(client: FlaskClient) -> None:
    response = client.get(START, query_string={"next": "/dash"})
    location = response.headers["Location"]
    assert location.startswith(f"http://127.0.0.1:9{AUTHORIZE_PATH}?")
    sent_query = query(location)
    assert sent_query["redirect_uri"] == f"http://localhost{CALLBACK}"
    assert sent_query["code_challenge_method"] == "S256"
    assert pending(client)[sent_query["state"]]["next"] == "/dash"


def test_a_next_too_long_to_keep_becomes_the_root(client: FlaskClient) -> None:
    state = start(client, "/" + "x" * MAX_KEPT_NEXT_LENGTH)
    assert pending(client)[state]["next"] == "/"


def test_only_the_newest_unfinished_sign_ins_are_kept(client: FlaskClient) -> None:
    states = [start(client) for _ in range(MAX_PENDING_SIGN_INS + 2)]
    assert set(pending(client)) == set(states[-MAX_PENDING_SIGN_INS:])


def test_the_configured_callback_url_is_the_redirect_uri(clock: FakeClock) -> None:
    callback_url = "https://portal.example.com/api/auth/bitbucket/handler/frame"
    client = unit_app(clock, BITBUCKET_CALLBACK_URL=callback_url).test_client()
    location = client.get(START, headers={"Host": "evil.test"}).headers["Location"]
    assert query(location)["redirect_uri"] == callback_url


def test_no_redirect_uri_from_a_host_nobody_trusted(client: FlaskClient) -> None:
    response = client.get(START, headers={"Host": "evil.test"})
    assert response.status_code == 400
    assert "BITBUCKET_CALLBACK_URL" in response.text
    assert pending(client) == {}


# --- the callback ---------------------------------------------------------------------------


def test_a_callback_without_a_pending_state_is_a_stale_link(
    app: Flask, client: FlaskClient
) -> None:
    start(client)
    with sent(sign_in_failed, app) as failures:
        response = client.get(CALLBACK, query_string={"code": "c", "state": "forged"})
    assert response.status_code == 400
    assert html.escape(STALE_LINK, quote=True) in response.text
    assert [failure["error"].message for failure in failures] == [STALE_LINK]


def test_a_pending_sign_in_past_its_time_is_a_stale_link(client: FlaskClient) -> None:
    state = start(client)
    with client.session_transaction() as session:
        key = PENDING_STATE_PREFIX + state
        session[key] = {**session[key], "exp": 0}
    response = client.get(CALLBACK, query_string={"code": "c", "state": state})
    assert response.status_code == 400
    assert "expired or was already used" in response.text


@pytest.mark.parametrize(
    ("params", "status", "shown", "hidden"),
    [
        ({"error": "access_denied", "error_description": "xyz"}, 403, "chose not to", "xyz"),
        ({"error": "server_error", "error_description": "xyz"}, 502, "Bitbucket said: xyz", ""),
        ({"error": "temporarily_unavailable"}, 503, "Bitbucket is busy right now", ""),
        ({"error": "invalid_scope"}, 400, "could not complete the sign-in", ""),
        ({}, 400, "This sign-in link is incomplete", ""),
    ],
)
def test_what_bitbucket_sends_back_instead_of_a_code(
    client: FlaskClient, params: dict[str, str], status: int, shown: str, hidden: str
) -> None:
    state = start(client)
    response = client.get(CALLBACK, query_string={**params, "state": state})
    assert response.status_code == status
    assert shown in html.unescape(response.text)
    assert not hidden or hidden not in response.text
    assert state not in pending(client)  # a refused sign-in is forgotten


def test_error_text_is_believed_only_with_a_pending_state(client: FlaskClient) -> None:
    response = client.get(
        CALLBACK, query_string={"error": "server_error", "error_description": "call 555-0100"}
    )
    assert response.status_code == 400
    assert "555-0100" not in response.text


@pytest.fixture
def bitbucket_app(upstream: FakeBitbucket, clock: FakeClock) -> Flask:
    upstream.answer(TOKEN_PATH, TOKEN)
    upstream.answer("/2.0/user", USER)
    return unit_app(clock, upstream.url)


def test_the_callback_signs_in_and_goes_on_to_next(
    bitbucket_app: Flask, upstream: FakeBitbucket
) -> None:
    client = bitbucket_app.test_client()
    state = start(client, "/dash")
    with sent(signed_in, bitbucket_app) as sign_ins:
        response = client.get(CALLBACK, query_string={"code": "c", "state": state})
    assert (response.status_code, response.headers["Location"]) == (302, "/dash")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert [event["user"].user_entity_ref for event in sign_ins] == ["user:default/jdoe"]
    assert client.get("/who").text == "user:default/jdoe"
    assert upstream.paths() == [TOKEN_PATH, "/2.0/user"]
    with client.session_transaction() as session:
        assert "the-access-token" not in repr(dict(session))


def test_bitbucket_failing_at_the_callback_is_a_page_to_try_again(
    bitbucket_app: Flask, upstream: FakeBitbucket
) -> None:
    upstream.answer("/2.0/user", {"type": "error"}, 503)
    client = bitbucket_app.test_client()
    with sent(sign_in_failed, bitbucket_app) as failures:
        response = client.get(CALLBACK, query_string={"code": "c", "state": start(client)})
    assert response.status_code == 503
    assert "Try again" in response.text
    assert [failure["error"].status for failure in failures] == [503]
    assert client.get("/who").text == "anonymous"


def test_someone_not_in_the_catalog_is_told_what_to_add(
    bitbucket_app: Flask, upstream: FakeBitbucket
) -> None:
    stranger = "{00000000-0000-4000-8000-000000000000}"
    upstream.answer("/2.0/user", {**USER, "uuid": stranger, "display_name": "Sam Stranger"})
    client = bitbucket_app.test_client()
    response = client.get(CALLBACK, query_string={"code": "c", "state": start(client)})
    assert response.status_code == 403
    page = html.unescape(response.text)
    assert "Sam Stranger" in page
    assert f'bitbucket.org/user-id: "{stranger}"' in page


# --- a Backstage frontend's sign-in -------------------------------------------------------

FRONTEND = "http://localhost:3000"


@pytest.fixture
def frontend_app(upstream: FakeBitbucket, clock: FakeClock) -> Flask:
    upstream.answer(TOKEN_PATH, TOKEN)
    upstream.answer("/2.0/user", USER)
    return unit_app(clock, upstream.url, BITBUCKET_APP_BASE_URL=f"{FRONTEND}/catalog")


def frontend_start(client: FlaskClient, **params: str) -> str:
    query_string = {"flow": "popup", "origin": FRONTEND, "env": "development", **params}
    response = client.get(START, query_string=query_string)
    assert response.status_code == 302, response.text
    return query(response.headers["Location"])["state"]


def test_a_popup_sign_in_is_handed_to_the_frontends_origin_only(frontend_app: Flask) -> None:
    client = frontend_app.test_client()
    state = frontend_start(client, scope="repository")
    response = client.get(CALLBACK, query_string={"code": "c", "state": state})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "script-src 'sha256-" in response.headers["Content-Security-Policy"]
    origin, message = (
        unquote(text) for text in re.findall(r"decodeURIComponent\('([^']*)'\)", response.text)
    )
    assert origin == FRONTEND  # the one origin the message may go to
    answer = json.loads(message)["response"]
    assert answer["backstageIdentity"]["identity"] == JANE_IDENTITY
    assert answer["providerInfo"]["scope"].split() == ["account", "email", "repository"]
    assert "the-access-token" not in response.text


def test_a_redirect_sign_in_that_fails_returns_to_the_app_saying_why(
    frontend_app: Flask, upstream: FakeBitbucket
) -> None:
    upstream.answer("/2.0/user", {"type": "error"}, 503)
    client = frontend_app.test_client()
    state = frontend_start(client, flow="redirect", redirectUrl=f"{FRONTEND}/catalog/x")
    response = client.get(CALLBACK, query_string={"code": "c", "state": state})
    location = response.headers["Location"]
    assert location.startswith(f"{FRONTEND}/catalog?error=")
    assert query(location)["error"].startswith("Bitbucket is temporarily unavailable")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"origin": "https://evil.test"}, 403),
        ({"flow": "redirect", "redirectUrl": "https://evil.test/"}, 403),
        ({"env": "production"}, 400),
        ({"flow": "iframe"}, 400),
    ],
)
def test_a_frontend_start_off_the_allowed_origins_or_env_is_refused(
    frontend_app: Flask, params: dict[str, str], status: int
) -> None:
    client = frontend_app.test_client()
    query_string = {"flow": "popup", "origin": FRONTEND, "env": "development", **params}
    assert client.get(START, query_string=query_string).status_code == status
    assert pending(client) == {}


# --- refresh and logout ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "Invalid X-Requested-With header"), (XHR, "You are not signed in with Bitbucket")],
)
def test_refresh_answers_401_in_backstages_shape(
    client: FlaskClient, clock: FakeClock, headers: dict[str, str], message: str
) -> None:
    if not headers:
        signed_in_session(client, clock)  # signed in, but not asked by a script
    response = client.get(REFRESH, headers=headers)
    assert response.status_code == 401
    assert response.json == {
        "error": {"name": "AuthenticationError", "message": message},
        "request": {"method": "GET", "url": REFRESH},
        "response": {"statusCode": 401},
    }


def test_refresh_answers_who_is_signed_in(client: FlaskClient, clock: FakeClock) -> None:
    signed_in_session(client, clock)
    response = client.get(REFRESH, headers=XHR)
    body = response.json
    assert body is not None
    assert body["profile"] == {
        "displayName": "Jane Doe",
        "email": "jane@example.com",
        "picture": "https://avatars.example/jd.png",
    }
    identity = body["backstageIdentity"]
    assert identity["identity"] == JANE_IDENTITY
    assert identity["token"].count(".") == 2  # a JWT, checked in test_identity_token.py
    assert identity["expiresInSeconds"] == body["providerInfo"]["expiresInSeconds"]
    assert "accessToken" not in body["providerInfo"]  # no provider token is kept
    assert response.headers["Cache-Control"] == "no-store"


def test_the_identity_tokens_issuer_and_keys_are_published(client: FlaskClient) -> None:
    config = client.get("/api/auth/.well-known/openid-configuration")
    assert config.status_code == 200
    assert config.json is not None
    assert config.json["issuer"] == "http://localhost/api/auth"
    keys = client.get(urlsplit(config.json["jwks_uri"]).path)
    assert keys.json is not None
    assert [key["alg"] for key in keys.json["keys"]] == ["ES256"]
    assert not any("d" in key for key in keys.json["keys"])  # public halves only
    assert keys.headers["Cache-Control"] == "public, max-age=300"


def csrf(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        session[CSRF_KEY] = "the-csrf-token"
    return "the-csrf-token"


@pytest.mark.parametrize("token", [None, "wrong"])
def test_logout_without_the_sessions_csrf_token_is_refused(
    client: FlaskClient, clock: FakeClock, token: str | None
) -> None:
    signed_in_session(client, clock)
    csrf(client)
    response = client.post(LOGOUT, data={"csrf_token": token} if token else {})
    assert response.status_code == 400
    assert "Sign-out was not confirmed" in response.text
    assert client.get("/who").text == "user:default/jdoe"


def test_logout_signs_out_and_says_who_left(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    signed_in_session(client, clock)
    with sent(signed_out, app) as sign_outs:
        response = client.post(LOGOUT, data={"csrf_token": csrf(client)})
    assert (response.status_code, response.headers["Location"]) == (303, "/signin")
    assert [event["user"].user_entity_ref for event in sign_outs] == ["user:default/jdoe"]
    with client.session_transaction() as session:
        assert dict(session) == {}


def test_logout_from_a_script_is_a_plain_200(client: FlaskClient, clock: FakeClock) -> None:
    signed_in_session(client, clock)
    response = client.post(LOGOUT, headers={**XHR, "X-CSRF-Token": csrf(client)})
    assert (response.status_code, response.data) == (200, b"")
    assert client.get("/who").text == "anonymous"


@pytest.mark.parametrize(
    ("origin", "status"), [(None, 200), (FRONTEND, 200), ("https://evil.test", 403)]
)
def test_a_frontends_logout_needs_an_allowed_origin_not_the_csrf_token(
    frontend_app: Flask, clock: FakeClock, origin: str | None, status: int
) -> None:
    client = frontend_app.test_client()
    signed_in_session(client, clock)
    headers = {**XHR, **({"Origin": origin} if origin else {})}
    response = client.post(LOGOUT, headers=headers)
    assert response.status_code == status
    assert who(client) == ("anonymous" if status == 200 else "user:default/jdoe")


# --- health, theme, error pages -------------------------------------------------------------


def test_health_reports_the_catalog_and_the_session_store(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body is not None
    assert body["status"] == "ok"
    assert (body["catalog"]["loaded"], body["catalog"]["users"], body["catalog"]["groups"]) == (
        True,
        5,
        2,
    )
    assert body["catalog"]["loaded_at"].endswith("+00:00")
    assert body["sessions"] == {"store": "cookie", "reachable": True}


def test_the_theme_is_the_brand_colour_and_a_text_colour_that_reads_on_it(
    clock: FakeClock,
) -> None:
    app = unit_app(clock, BITBUCKET_BRAND_COLOR="#ffcc00")
    with app.test_request_context():
        theme = url_for("bitbucket_signin.theme")
    response = app.test_client().get(theme)
    assert response.mimetype == "text/css"
    assert response.text == ":root { --brand: #ffcc00; --on-brand: #172b4d; }\n"
    assert response.headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize(
    ("background", "text"),
    [("#fff", "#172b4d"), ("#000000", "#ffffff"), ("#0c66e4", "#ffffff"), ("#ffcc00", "#172b4d")],
)
def test_text_colour_on_a_background(background: str, text: str) -> None:
    assert text_color_on(background) == text


def test_the_session_store_failing_is_a_503_page_to_come_back_to(app: Flask) -> None:
    @app.get("/needs-the-store")
    def needs_the_store() -> str:
        raise SessionStoreUnavailableError

    response = app.test_client().get("/needs-the-store")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.headers["Cache-Control"] == "no-store"
    assert "Sign-in sessions are unavailable right now" in response.text


def test_the_extensions_pages_are_never_cached(client: FlaskClient) -> None:
    assert client.get("/signin").headers["Cache-Control"] == "no-store"
    assert client.get(START).headers["Cache-Control"] == "no-store"
