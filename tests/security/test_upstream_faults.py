"""Checklist row 14: every way Bitbucket can fail, at the token call and at each API call.

Each fault gives a clear sign-in page with 502, 503 or 504, creates no session, shows and
logs no secret or token, ends within the configured timeout and leaves the app healthy: the
next person signs in, and no thread is left behind beyond the client's bounded pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask

from bitbucket_signin.config import DEFAULTS
from bitbucket_signin.emulator import EmulatorServer

from ..support import (
    JANE,
    clear_faults,
    home_page,
    readme,
    serve,
    session_contents,
    set_fault,
    sign_in,
    token_requests,
)
from .conftest import leaked, log_texts, secret_values

# The hang fault waits this long for its 504. Only that case gets so short a deadline: under a
# busy machine an emulator answer can itself take half a second, so every other case keeps
# enough room that only the injected fault can fail the sign-in.
HANG_TIMEOUT = 1.0
TIMEOUT = 5.0
POOL_PREFIX = "bitbucket-signin"  # the threads of the shared pool (at most 32 a process)
POOL_SIZE = 16
JSON = "application/json"
HTML = "text/html; charset=utf-8"
ERROR_PAGE = "<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>"

# fault name → (the emulator's fault, the status the app must answer with)
FAULTS: dict[str, tuple[dict[str, Any], int]] = {
    "429": ({"status": 429}, 503),
    "500": ({"status": 500}, 502),
    "503": ({"status": 503}, 503),
    "hang": ({"hang": 5}, 504),
    "400-invalid-grant": (
        {"status": 400, "body": '{"error": "invalid_grant", "error_description": "bad code"}'},
        502,
    ),
    "401": ({"status": 401}, 502),
    "malformed-json": (
        {"status": 200, "body": '{"values": [{"a": 1}, ', "content_type": JSON},
        502,
    ),
    "truncated-json": ({"status": 200, "body": '{"access_token": "abc', "content_type": JSON}, 502),
    "infinite-token-lifetime": (
        {"status": 200, "body": '{"access_token": "abc", "expires_in": Infinity}'},
        502,
    ),
    "wrong-shape-list": ({"status": 200, "body": '["not", "an", "object"]'}, 502),
    "wrong-shape-object": ({"status": 200, "body": '{"values": "none", "uuid": 7}'}, 502),
    "html-error-page": ({"status": 502, "body": ERROR_PAGE, "content_type": HTML}, 502),
    "html-with-200": ({"status": 200, "body": ERROR_PAGE, "content_type": HTML}, 502),
}
ENDPOINTS = ("token", "user", "emails", "workspaces")
EVERY_CALL = {
    "BITBUCKET_FETCH_EMAILS": True,
    "BITBUCKET_ALLOWED_WORKSPACES": ["acme"],
}
XHR = {"X-Requested-With": "XMLHttpRequest"}


def thread_counts() -> tuple[int, int]:
    """Threads outside the client's shared pool, and inside it."""
    names = [thread.name for thread in threading.enumerate()]
    pool = sum(1 for name in names if name.startswith(POOL_PREFIX))
    return len(names) - pool, pool


def settles(baseline: tuple[int, int], seconds: float = 5.0) -> bool:
    """Whether, within ``seconds``, the threads outside the pool are back to ``baseline`` (one
    more allowed for a keep-alive connection that moved) and the pool grew within its bound."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        others, pool = thread_counts()
        if others <= baseline[0] + 1 and pool - baseline[1] <= POOL_SIZE:
            return True
        time.sleep(0.05)
    return False


def fresh_sign_in(app_url: str, emulator_url: str) -> int:
    """Sign Jane in from a new browser; the home page's status afterwards."""
    with requests.Session() as http:
        assert sign_in(http, app_url, emulator_url, JANE).status_code == 302
        return home_page(http, app_url).status_code


@dataclass
class Served:
    """An app on a live server and the thread count outside the pool after its warm-up."""

    url: str
    app: Flask
    baseline: tuple[int, int]


@pytest.fixture
def serve_app(make_app: Callable[..., Flask], bitbucket: EmulatorServer) -> Iterator[Any]:
    """Serve apps with the given timeout, asking for both lists so that every endpoint is called
    (and overrides); a healthy one is warmed up with a sign-in first, so that its pool threads
    and keep-alive connections count as baseline."""
    with ExitStack() as stack:

        def start(timeout: float = TIMEOUT, **overrides: Any) -> Served:
            app = make_app(**{**EVERY_CALL, "BITBUCKET_TIMEOUT": timeout, **overrides})
            url = stack.enter_context(serve(app))
            if not overrides:
                assert fresh_sign_in(url, bitbucket.url) == 200
            return Served(url, app, thread_counts())

        yield start


def assert_clear_failure(
    response: requests.Response,
    status: int,
    http: requests.Session,
    served: Served,
    bitbucket: EmulatorServer,
    logs: pytest.LogCaptureFixture,
) -> None:
    """The failure page: right status, a retry, no trace, no session, nothing leaked."""
    assert response.status_code == status
    assert "Bitbucket" in response.text
    assert "Try again" in response.text
    assert "Traceback" not in response.text
    assert "_user_id" not in session_contents(served.app, http.cookies.get("session"))
    assert home_page(http, served.url).status_code == 302
    assert leaked([response.text, *log_texts(logs)], secret_values(bitbucket)) == []
    assert [record.getMessage() for record in logs.records if record.exc_info] == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("fault", FAULTS)
def test_fault(
    serve_app: Callable[..., Served],
    http: requests.Session,
    bitbucket: EmulatorServer,
    logs: pytest.LogCaptureFixture,
    endpoint: str,
    fault: str,
) -> None:
    timeout = HANG_TIMEOUT if fault == "hang" else TIMEOUT
    served = serve_app(timeout)
    injected, status = FAULTS[fault]
    set_fault(bitbucket.url, endpoint, times=1, **injected)
    began = time.monotonic()
    response = sign_in(http, served.url, bitbucket.url, JANE)
    assert time.monotonic() - began < 4 * timeout + 1  # the timeout bounds the wait
    clear_faults(bitbucket.url)  # wake a hanging emulator thread
    assert_clear_failure(response, status, http, served, bitbucket, logs)
    assert fresh_sign_in(served.url, bitbucket.url) == 200  # the next person is fine
    http.close()
    assert settles(served.baseline), (served.baseline, thread_counts())


@pytest.mark.parametrize("setting", ["BITBUCKET_TOKEN_URL", "BITBUCKET_API_BASE_URL"])
def test_connection_refused(
    serve_app: Callable[..., Served],
    http: requests.Session,
    bitbucket: EmulatorServer,
    logs: pytest.LogCaptureFixture,
    setting: str,
) -> None:
    """Nothing listens where Bitbucket should be: 502, and the app stays up."""
    with serve(Flask("closed")) as closed:
        pass  # the port is free again
    served = serve_app(**{setting: f"{closed}/site/oauth2/access_token"})
    response = sign_in(http, served.url, bitbucket.url, JANE)
    assert_clear_failure(response, 502, http, served, bitbucket, logs)
    assert "could not be reached" in response.text
    assert requests.get(f"{served.url}/signin", timeout=5).status_code == 200


def test_no_refresh_token_call_in_normal_use(
    http: requests.Session, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 17 does not apply (no provider token is kept), so no refresh call is ever made:
    not at sign-in, not on later requests, not after the access token expired."""
    assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
    requests.post(f"{bitbucket.url}/_emulator/clock", json={"advance": 3 * 3600}, timeout=5)
    for _ in range(3):
        assert home_page(http, live_app).status_code == 200
        assert http.get(f"{live_app}/api/auth/bitbucket/refresh", headers=XHR).status_code == 200
    grants = [entry["grant_type"] for entry in token_requests(bitbucket)]
    assert grants == ["authorization_code"]


def test_timeout_is_configurable_and_its_default_documented() -> None:
    assert DEFAULTS["TIMEOUT"] == 10.0
    assert (
        "| `BITBUCKET_TIMEOUT` | seconds for each whole call to Bitbucket (connecting, the "
        "headers and the entire body) | `10` |"
    ) in readme()
