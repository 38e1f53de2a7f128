"""Bitbucket's error text is shown only on a callback that carries this browser's pending
state: anyone can send a person a link to the callback with an ``error_description``."""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer

from ..frontend_support import FRONTEND, PREFIX, popup_messages, start, start_params
from ..support import JANE, grant_at_emulator, home_page, serve, start_sign_in, token_calls

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


# Line breaks and controls every log reader or terminal knows: \r\n, NEL, LS, PS, FF, VT, ESC.
FORGED_LINES = (
    "Try again.\r\n[2026-11-29 15:59:00 +0000] [1] [INFO] admin signed in\x85x\u2028y\u2029z"
    "\x0c\x0b\x1b[2J\x00\tend"
)
LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029", "\x0c", "\x0b", "\x1b", "\x00")


def test_error_text_cannot_forge_log_lines_or_break_the_message(
    make_app: Callable[..., Flask], http: requests.Session, logs: pytest.LogCaptureFixture
) -> None:
    """Anyone may start a sign-in and come back with their own state and an
    ``error_description`` of their making: it reaches the log, the page, the popup and the
    redirect flow's ``?error=`` as one line of printable text, never as a line of its own."""
    shown = "Try again. [2026-11-29 15:59:00 +0000] [1] [INFO] admin signed in x y z [2J end"
    with serve(make_app(**FRONTEND)) as url:
        for flow in ("server", "popup", "redirect"):
            extra = {"redirectUrl": "http://localhost:3000/catalog"} if flow == "redirect" else {}
            begun = (
                start_sign_in(http, url)
                if flow == "server"
                else start(http, url, **start_params(flow, **extra)).headers["Location"]
            )
            params = {
                "error": "server_error",
                "error_description": FORGED_LINES,
                "state": state_of(begun),
            }
            answer = http.get(f"{url}{PREFIX}/handler/frame", params=params, allow_redirects=False)
            if flow == "redirect":
                (error,) = parse_qs(urlsplit(answer.headers["Location"]).query)["error"]
            elif flow == "popup":
                error = popup_messages(answer)[1]["error"]["message"]
            else:
                error = html.unescape(answer.text)
            assert f"Bitbucket said: {shown}" in error, error
    refusals = [r.getMessage() for r in logs.records if r.name.startswith("bitbucket_signin")]
    assert sum("Sign-in refused" in message for message in refusals) == 3
    for message in refusals:
        assert not any(char in message for char in LINE_BREAKS), repr(message)
