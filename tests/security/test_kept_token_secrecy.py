"""Kept tokens (``BITBUCKET_KEEP_TOKENS``) stay server-side: through a sign-in, calls as the
person, a refresh, Bitbucket failing one, and a refused refresh token, no token reaches a
cookie, a page, a header or a log record at any level; exposed
(``BITBUCKET_EXPOSE_ACCESS_TOKEN``), the access token is in the ``/refresh`` JSON and the
popup's message, and nowhere else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer

from ..frontend_support import FRONTEND, frontend_sign_in, popup_messages, refresh
from ..support import (
    JANE,
    FakeClock,
    clear_faults,
    serve,
    set_fault,
    sign_in,
)
from .conftest import issued_tokens, leaked, log_texts, secret_values

XHR = {"X-Requested-With": "XMLHttpRequest"}
LIFETIME = 7200


def test_no_kept_token_reaches_a_cookie_page_or_log(
    http: requests.Session,
    kept_app: Flask,
    bitbucket: EmulatorServer,
    clock: FakeClock,
    traffic: list[str],
    logs: pytest.LogCaptureFixture,
) -> None:
    secrets: set[str] = set()
    cookies: list[str] = []

    def step(answer: requests.Response, status: int) -> None:
        assert answer.status_code == status, answer.text
        secrets.update(secret_values(bitbucket))
        cookies.extend(f"{cookie.name}={cookie.value}" for cookie in http.cookies)

    with serve(kept_app) as url:
        step(sign_in(http, url, bitbucket.url, JANE), 302)
        step(http.get(f"{url}/"), 200)
        step(http.get(f"{url}/bitbucket/me"), 200)
        step(http.get(f"{url}/api/auth/bitbucket/refresh", headers=XHR), 200)
        clock.advance(LIFETIME)
        step(http.get(f"{url}/bitbucket/me"), 200)  # refreshed first
        clock.advance(LIFETIME)
        set_fault(bitbucket.url, "token", status=503)
        step(http.get(f"{url}/bitbucket/me"), 503)
        step(http.get(f"{url}/bitbucket/me", headers=XHR), 503)
        clear_faults(bitbucket.url)
        requests.post(f"{bitbucket.url}/_emulator/revoke/{JANE}", timeout=5).raise_for_status()
        step(http.get(f"{url}/bitbucket/me", headers=XHR, allow_redirects=False), 401)
        step(sign_in(http, url, bitbucket.url, JANE), 302)
        requests.post(f"{bitbucket.url}/_emulator/revoke/{JANE}", timeout=5).raise_for_status()
        clock.advance(LIFETIME)
        step(http.get(f"{url}/bitbucket/me", allow_redirects=False), 401)

    assert len(secrets) == 2 + 3 * 2  # the secret twice; two sign-ins' and a refresh's tokens
    assert not issued_tokens(bitbucket)  # every one revoked by now, and still none leaked
    assert leaked(traffic + cookies + log_texts(logs), sorted(secrets)) == []


def test_an_exposed_access_token_is_only_in_the_refresh_json_and_the_popup_message(
    http: requests.Session,
    make_kept_app: Callable[..., Flask],
    bitbucket: EmulatorServer,
    clock: FakeClock,
    traffic: list[str],
    logs: pytest.LogCaptureFixture,
) -> None:
    app = make_kept_app(BITBUCKET_EXPOSE_ACCESS_TOKEN=True, **FRONTEND)
    secrets: set[str] = set()
    with serve(app) as url:
        popup = frontend_sign_in(http, url, bitbucket.url, JANE)
        secrets.update(issued_tokens(bitbucket))
        assert http.get(f"{url}/").status_code == 200
        assert http.get(f"{url}/bitbucket/me").status_code == 200
        first = refresh(http, url)
        clock.advance(LIFETIME)
        second = refresh(http, url)  # refreshed first: a new access token, exposed
        secrets.update(issued_tokens(bitbucket))
        assert http.get(f"{url}/bitbucket/me").status_code == 200
        assert http.post(f"{url}/api/auth/bitbucket/logout", headers=XHR).status_code == 200
        cookies = [f"{cookie.name}={cookie.value}" for cookie in http.cookies]

    exposed = [
        popup_messages(popup)[1]["response"]["providerInfo"]["accessToken"],
        first.json()["providerInfo"]["accessToken"],
        second.json()["providerInfo"]["accessToken"],
    ]
    assert exposed[0] == exposed[1] != exposed[2]
    assert set(exposed) < secrets  # access tokens only: never a refresh token
    allowed_bodies = {popup.text, first.text, second.text}
    elsewhere = [text for text in traffic if text not in allowed_bodies]
    assert leaked(elsewhere + cookies + log_texts(logs), sorted(secrets)) == []
