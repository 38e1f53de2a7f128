"""Checklist rows 1-4: ``state`` is required, bound to the browser, single use; PKCE is S256."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer

from ..support import (
    JANE,
    grant_at_emulator,
    home_page,
    session_contents,
    start_sign_in,
    token_calls,
    token_requests,
)

CALLBACK = "/api/auth/bitbucket/handler/frame"
STATE_PREFIX = "_state_bitbucket_"


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def assert_anonymous(http: requests.Session, app: Flask, live_app: str) -> None:
    """No signed-in person: the home page sends to sign-in, the cookie names nobody."""
    assert home_page(http, live_app).status_code == 302
    assert "_user_id" not in session_contents(app, http.cookies.get("session"))


@pytest.mark.parametrize(
    ("started", "params"),
    [
        (False, {"code": "x", "state": "forged"}),
        (False, {"code": "x"}),
        (False, {"code": "x", "state": ""}),
        (True, {"code": "x", "state": "forged"}),
        (True, {"code": "x", "state": "A" * 30}),
        (True, {"code": "x", "state": "forged", "error": ""}),
    ],
)
def test_forged_or_missing_state_is_refused_before_any_token_call(
    http: requests.Session,
    app: Flask,
    live_app: str,
    bitbucket: EmulatorServer,
    started: bool,
    params: dict[str, str],
) -> None:
    """Row 1: a callback whose state this browser never got is a 4xx, with no token request."""
    if started:
        start_sign_in(http, live_app)
    response = http.get(f"{live_app}{CALLBACK}", params=params, allow_redirects=False)
    assert 400 <= response.status_code < 500
    assert "Sign in with Bitbucket" in response.text
    assert token_calls(bitbucket) == 0
    assert_anonymous(http, app, live_app)


def test_state_from_another_browser_is_refused(
    app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 2: the victim's state (and code) sent from the attacker's session is refused."""
    with requests.Session() as victim, requests.Session() as attacker:
        callback_url = grant_at_emulator(bitbucket.url, start_sign_in(victim, live_app), JANE)
        start_sign_in(attacker, live_app)  # the attacker has a pending sign-in of their own
        response = attacker.get(callback_url, allow_redirects=False)
        assert response.status_code == 400
        assert token_calls(bitbucket) == 0
        assert_anonymous(attacker, app, live_app)
        # The attempt did not disturb the victim's own sign-in.
        assert victim.get(callback_url, allow_redirects=False).status_code == 302
        assert home_page(victim, live_app).status_code == 200


def test_replayed_callback_leaves_the_session_unchanged(
    http: requests.Session, app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 3: the successful callback URL sent again is refused and changes nothing."""
    callback_url = grant_at_emulator(bitbucket.url, start_sign_in(http, live_app), JANE)
    assert http.get(callback_url, allow_redirects=False).status_code == 302
    before = session_contents(app, http.cookies.get("session"))
    replay = http.get(callback_url, allow_redirects=False)
    assert replay.status_code == 400
    assert session_contents(app, http.cookies.get("session")) == before
    assert token_calls(bitbucket) == 1
    assert "Signed in as Jane Doe" in home_page(http, live_app).text


def test_spent_code_under_a_fresh_state_is_refused_by_bitbucket(
    app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 3: a code that was used once is worth nothing, even with a valid state of its own."""
    with requests.Session() as victim, requests.Session() as attacker:
        used = grant_at_emulator(bitbucket.url, start_sign_in(victim, live_app), JANE)
        assert victim.get(used, allow_redirects=False).status_code == 302
        own_state = query(start_sign_in(attacker, live_app))["state"]
        response = attacker.get(
            f"{live_app}{CALLBACK}",
            params={"code": query(used)["code"], "state": own_state},
            allow_redirects=False,
        )
        assert response.status_code == 502
        assert "invalid_grant" in response.text
        assert_anonymous(attacker, app, live_app)


def pending_sign_in(app: Flask, http: requests.Session, state: str) -> dict[str, Any]:
    """What Authlib keeps in the (readable) session cookie for the sign-in with ``state``."""
    pending: dict[str, dict[str, Any]] = session_contents(app, http.cookies.get("session"))[
        STATE_PREFIX + state
    ]
    return pending["data"]


def test_pkce_s256_challenge_matches_the_verifier_sent_with_the_code(
    http: requests.Session, app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 4: S256, the challenge is b64url(sha256(verifier)), and the verifier is sent."""
    authorize_url = start_sign_in(http, live_app)
    params = query(authorize_url)
    assert params["code_challenge_method"] == "S256"
    verifier = pending_sign_in(app, http, params["state"])["code_verifier"]
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    assert params["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert params["code_challenge"] != verifier  # never "plain"

    http.get(grant_at_emulator(bitbucket.url, authorize_url, JANE), allow_redirects=False)
    [token_request] = token_requests(bitbucket)
    assert token_request["code_verifier"] is True
    assert token_request["status"] == 200  # the emulator checks the verifier against the challenge
    assert "Signed in as Jane Doe" in home_page(http, live_app).text


def test_every_sign_in_gets_its_own_state_and_verifier(
    http: requests.Session, app: Flask, live_app: str
) -> None:
    """Row 4: state and verifier are fresh per sign-in, never reused."""
    states = [query(start_sign_in(http, live_app))["state"] for _ in range(3)]
    verifiers = {pending_sign_in(app, http, state)["code_verifier"] for state in states}
    assert len(set(states)) == len(verifiers) == 3


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("access_denied", 403),
        ("invalid_request", 400),
        ("unauthorized_client", 400),
        ("server_error", 502),
        ("temporarily_unavailable", 503),
    ],
)
def test_error_callback_is_escaped_and_clears_the_pending_sign_in(
    http: requests.Session,
    app: Flask,
    live_app: str,
    bitbucket: EmulatorServer,
    error: str,
    status: int,
) -> None:
    """Row 6: Bitbucket's error comes back with our state and a hostile description: a sign-in
    page with the right status, the text escaped, no token request, the pending state gone."""
    state = query(start_sign_in(http, live_app))["state"]
    script = "<script>alert(document.cookie)</script>"
    response = http.get(
        f"{live_app}{CALLBACK}",
        params={"error": error, "error_description": script, "state": state},
        allow_redirects=False,
    )
    assert response.status_code == status
    assert "Sign in with Bitbucket" in response.text
    assert "<script>" not in response.text
    assert token_calls(bitbucket) == 0
    assert STATE_PREFIX + state not in session_contents(app, http.cookies.get("session"))
    assert_anonymous(http, app, live_app)
