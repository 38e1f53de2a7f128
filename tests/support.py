"""Helpers shared by the integration tests: the example accounts and a sign-in through HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests
from werkzeug.serving import make_server

DATA = Path(__file__).parent / "data"
CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
SECRET_KEY = "integration-tests-secret-key-of-enough-bytes"

JANE = "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"
LI = "{9c2d4e6f-8a1b-4c3d-9e5f-7a6b5c4d3e2f}"
OMAR = "{1f0e3a57-2c4b-4f1e-8d2a-6a3b9c7d5e21}"
MANI = "{2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d}"
VAL = "{0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a}"


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def start_sign_in(http: requests.Session, app_url: str, next_path: str = "/") -> str:
    """Press "Sign in with Bitbucket"; returns the authorize URL the app sent the browser to."""
    response = http.get(
        f"{app_url}/api/auth/bitbucket/start", params={"next": next_path}, allow_redirects=False
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def grant_at_emulator(emulator_url: str, authorize_url: str, account: str) -> str:
    """Press the account's button on the emulator's authorize page; returns the callback URL."""
    query = urlsplit(authorize_url).query
    response = requests.get(
        f"{emulator_url}/_emulator/authorize-as/{quote(account)}?{query}",
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def sign_in(
    http: requests.Session, app_url: str, emulator_url: str, account: str, next_path: str = "/"
) -> requests.Response:
    """The whole sign-in over real HTTP; returns the app's answer to the callback."""
    authorize_url = start_sign_in(http, app_url, next_path)
    callback_url = grant_at_emulator(emulator_url, authorize_url, account)
    return http.get(callback_url, allow_redirects=False, timeout=30)
