"""HSTS on every answer served over https (never over plain http), and a session that holds
only what the resolvers and the pages read back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, Response

from bitbucket_signin.emulator import EmulatorServer

from ..processes import app_environment, gunicorn_app
from ..support import JANE, home_page, serve, session_contents, sign_in

DEFAULT_HSTS = "max-age=31536000; includeSubDomains"
HTTPS = {"X-Forwarded-Proto": "https"}
PATHS = ["/signin", "/api/auth/bitbucket/start", "/no/such/page", "/_bitbucket_signin/theme.css"]
# What the resolvers (built-in and custom) and the pages read of the Bitbucket account.
PROFILE_FIELDS = {
    "uuid",
    "account_id",
    "username",
    "nickname",
    "display_name",
    "email",
    "avatar_url",
    "workspaces",
}


@pytest.mark.parametrize(
    ("config", "headers", "expected"),
    [
        ({}, {}, None),
        ({}, HTTPS, None),  # no ProxyFix: a forwarded header from anyone proves nothing
        ({"PROXY_FIX": 1}, {}, None),
        ({"PROXY_FIX": 1}, HTTPS, DEFAULT_HSTS),
        ({"PROXY_FIX": 1, "BITBUCKET_HSTS": "max-age=600"}, HTTPS, "max-age=600"),
        ({"PROXY_FIX": 1, "BITBUCKET_HSTS": "false"}, HTTPS, None),
        ({"PROXY_FIX": 1, "BITBUCKET_SECURITY_HEADERS": False}, HTTPS, None),
    ],
    ids=[
        "http",
        "forged-proto",
        "http-behind-proxy",
        "https-behind-proxy",
        "https-own-max-age",
        "https-switched-off",
        "https-no-security-headers",
    ],
)
def test_hsts_only_over_https(
    make_app: Callable[..., Flask],
    config: dict[str, Any],
    headers: dict[str, str],
    expected: str | None,
) -> None:
    """Pages, redirects, errors and stylesheets alike: the header exactly when the request
    came over https (``request.is_secure``, so ProxyFix counts) and it is switched on."""
    with serve(make_app(**config)) as live_app:
        for path in PATHS:
            response = requests.get(f"{live_app}{path}", headers=headers, allow_redirects=False)
            assert response.headers.get("Strict-Transport-Security") == expected, path


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, None),
        ({"FLASK_PROXY_FIX": "1"}, DEFAULT_HSTS),
        ({"FORWARDED_ALLOW_IPS": "127.0.0.1"}, DEFAULT_HSTS),
    ],
    ids=["as-shipped", "proxy-fix", "told-to-believe-loopback"],
)
def test_gunicorn_as_shipped_believes_a_forwarded_proto_only_through_proxy_fix(
    bitbucket: EmulatorServer,
    catalog_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    expected: str | None,
) -> None:
    """gunicorn itself believes X-Forwarded-Proto from this machine unless told otherwise;
    the shipped gunicorn.conf.py tells it to believe no one, so a forged header from
    127.0.0.1 proves nothing there either, and ProxyFix decides (or FORWARDED_ALLOW_IPS)."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    settings = app_environment(bitbucket.url, catalog_file) | environment
    with gunicorn_app(settings, workers=1, as_shipped=True) as url:
        response = requests.get(f"{url}/signin", headers=HTTPS, timeout=10)
    assert response.status_code == 200
    assert response.headers.get("Strict-Transport-Security") == expected


def test_the_apps_own_hsts_header_wins(make_app: Callable[..., Flask]) -> None:
    app = make_app(PROXY_FIX=1)

    @app.get("/own")
    def own() -> Response:
        response = Response("own")
        response.headers["Strict-Transport-Security"] = "max-age=5"
        return response

    with serve(app) as live_app:
        response = requests.get(f"{live_app}/own", headers=HTTPS)
    assert response.headers["Strict-Transport-Security"] == "max-age=5"


@pytest.mark.parametrize(
    ("allowed", "workspaces"),
    [("", None), ("acme", ({"slug": "acme"},))],
    ids=["no-workspace-gate", "workspace-gate"],
)
def test_session_keeps_only_what_is_read_again(
    make_app: Callable[..., Flask],
    bitbucket: EmulatorServer,
    http: requests.Session,
    allowed: str,
    workspaces: tuple[dict[str, str], ...] | None,
) -> None:
    """The cookie (readable by anyone holding it) keeps the account fields the resolvers and
    pages read; of the workspaces only the slugs the gate checks on every request (no
    workspace ids, no administrator flags); and the person stays signed in."""
    app = make_app(BITBUCKET_ALLOWED_WORKSPACES=allowed)
    with serve(app) as live_app:
        assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
        profile = session_contents(app, http.cookies.get("session"))["_bitbucket_profile"]
        for _ in range(2):
            assert "Signed in as Jane Doe" in home_page(http, live_app).text
    assert set(profile) <= PROFILE_FIELDS
    assert profile.get("workspaces") == workspaces
