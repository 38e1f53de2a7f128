"""Bitbucket's error text is shown only on a callback that carries this browser's pending
state: anyone can send a person a link to the callback with an ``error_description``."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bitbucket_signin.emulator import EmulatorServer

from ..support import JANE, grant_at_emulator, home_page, start_sign_in, token_calls

CALLBACK = "/api/auth/bitbucket/handler/frame"
LURE = "Your account is suspended. Call +1 555 0100 to restore it."
STALE = "This sign-in link has expired or was already used"


def state_of(authorize_url: str) -> str:
    return parse_qs(urlsplit(authorize_url).query)["state"][0]


def forged_link(live_app: str, error: str, state: str | None) -> requests.PreparedRequest:
    params = {"error": error, "error_description": LURE}
    if state is not None:
        params["state"] = state
    return requests.Request("GET", f"{live_app}{CALLBACK}", params=params).prepare()


@pytest.mark.parametrize("error", ["server_error", "access_denied", "invalid_request", "other"])
@pytest.mark.parametrize("whose_state", ["none", "forged", "another-browsers"])
def test_error_text_without_this_browsers_pending_state_is_never_shown(
    http: requests.Session,
    live_app: str,
    bitbucket: EmulatorServer,
    error: str,
    whose_state: str,
) -> None:
    """The lure, sent with no state, a made-up one or another browser's real pending state to
    a browser that waits on a sign-in of its own: a generic 400 page that says nothing of
    Bitbucket's (claimed) answer, and the browser's own sign-in still completes."""
    own = start_sign_in(http, live_app, "/dash")
    with requests.Session() as other_browser:
        states = {
            "none": None,
            "forged": "A" * 30,
            "another-browsers": state_of(start_sign_in(other_browser, live_app)),
        }
    response = http.send(forged_link(live_app, error, states[whose_state]))
    page = html.unescape(response.text)
    assert response.status_code == 400
    assert STALE in page
    assert "suspended" not in page
    assert "555" not in page
    assert "Bitbucket said" not in page
    assert "You chose not to" not in page
    assert token_calls(bitbucket) == 0

    back = http.get(grant_at_emulator(bitbucket.url, own, JANE), allow_redirects=False)
    assert back.status_code == 302
    assert back.headers["Location"] == "/dash"
    assert home_page(http, live_app).status_code == 200


def test_error_text_with_this_browsers_pending_state_is_shown_escaped(
    http: requests.Session, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Bitbucket's own error, coming back with this browser's state: its text is shown (it
    helps the person), escaped, with the provider's status, and the sign-in is over."""
    state = state_of(start_sign_in(http, live_app))
    params = {"error": "server_error", "error_description": f"<b>{LURE}</b>", "state": state}
    response = http.get(f"{live_app}{CALLBACK}", params=params, allow_redirects=False)
    assert response.status_code == 502
    assert f"Bitbucket said: &lt;b&gt;{html.escape(LURE)}" in response.text
    assert "<b>" not in response.text
    again = http.get(f"{live_app}{CALLBACK}", params=params, allow_redirects=False)
    assert again.status_code == 400
    assert "suspended" not in again.text
