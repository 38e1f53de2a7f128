"""Security headers on real responses of the app under gunicorn, signed out and signed in."""

from __future__ import annotations

import pytest
import requests

from ..support import JANE, sign_in
from .pages import check_security_headers

SIGNED_OUT_PATHS = [
    "/signin",
    "/?tab=groups",
    "/api/auth/bitbucket/handler/frame",
    "/api/auth/bitbucket/start?next=/",
    "/_bitbucket_signin/theme.css",
    "/_bitbucket_signin/static/signin.css",
]


@pytest.mark.parametrize("path", SIGNED_OUT_PATHS)
def test_every_response_carries_security_headers(app_url: str, path: str) -> None:
    response = requests.get(f"{app_url}{path}", allow_redirects=False, timeout=10)
    assert response.status_code < 500
    check_security_headers(response.headers)


def test_signed_in_and_callback_responses_are_not_stored(app_url: str, emulator_url: str) -> None:
    with requests.Session() as http:
        callback = sign_in(http, app_url, emulator_url, JANE, next_path="/?tab=groups")
        assert callback.status_code == 302
        home = http.get(f"{app_url}/?tab=groups", allow_redirects=False, timeout=10)
    assert home.status_code == 200
    for response in (callback, home):
        assert response.headers["Cache-Control"] == "no-store"
        check_security_headers(response.headers)
