"""Kept tokens (``BITBUCKET_KEEP_TOKENS``) stay server-side: through a sign-in, calls as the
person, a refresh, Bitbucket failing one, and a refused refresh token, no token reaches a
cookie, a page, a header or a log record at any level."""

from __future__ import annotations

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer

from ..support import JANE, FakeClock, clear_faults, serve, set_fault, sign_in
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
        set_fault(bitbucket, "token", status=503)
        step(http.get(f"{url}/bitbucket/me"), 503)
        step(http.get(f"{url}/bitbucket/me", headers=XHR), 503)
        clear_faults(bitbucket)
        requests.post(f"{bitbucket.url}/_emulator/revoke/{JANE}", timeout=5).raise_for_status()
        step(http.get(f"{url}/bitbucket/me", headers=XHR, allow_redirects=False), 401)
        step(sign_in(http, url, bitbucket.url, JANE), 302)
        requests.post(f"{bitbucket.url}/_emulator/revoke/{JANE}", timeout=5).raise_for_status()
        clock.advance(LIFETIME)
        step(http.get(f"{url}/bitbucket/me", allow_redirects=False), 401)

    assert len(secrets) == 2 + 3 * 2  # the secret twice; two sign-ins' and a refresh's tokens
    assert not issued_tokens(bitbucket)  # every one revoked by now, and still none leaked
    assert leaked(traffic + cookies + log_texts(logs), sorted(secrets)) == []
