"""Checklist row 15: the app refuses to start without its secrets, with one line naming the
setting; and the client secret, the tokens and the PKCE verifier never reach a log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from bitbucket_signin import BitbucketSignIn, ConfigError
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.standalone import create_app

from ..processes import run_wsgi
from ..support import JANE, grant_at_emulator, home_page, serve, session_contents, start_sign_in
from .conftest import leaked, log_texts, secret_values

CALLBACK_PATH = "/api/auth/bitbucket/handler/frame"
APP_CONFIG = f"""
auth:
  providers:
    bitbucket:
      development:
        callbackUrl: http://portal.example{CALLBACK_PATH}
"""
# Loggers that write request lines (URLs): the only places the spent code may show up.
ACCESS_LOGGERS = ("werkzeug", "urllib3.connectionpool")

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "no-secret-key": ({"SECRET_KEY": None}, "SECRET_KEY"),
    "short-secret-key": ({"SECRET_KEY": "short-key"}, "SECRET_KEY"),
    "short-secret-key-in-debug": ({"SECRET_KEY": "short-k3y!", "DEBUG": True}, "SECRET_KEY"),
    "one-letter-secret-key": ({"SECRET_KEY": "a" * 40}, "SECRET_KEY"),
    "placeholder-secret-key": ({"SECRET_KEY": "Change-Me-" * 4}, "SECRET_KEY"),
    "placeholder-prefixed-key": (
        {"SECRET_KEY": "your-secret-key-here-0123456789abcdef"},
        "SECRET_KEY",
    ),
    "http-authorize-url": (
        {"BITBUCKET_AUTHORIZE_URL": "http://bitbucket.example/site/oauth2/authorize"},
        "BITBUCKET_AUTHORIZE_URL",
    ),
    "http-token-url": (
        {"BITBUCKET_TOKEN_URL": "http://bitbucket.example/site/oauth2/access_token"},
        "BITBUCKET_TOKEN_URL",
    ),
    "http-api-base-url": (
        {"BITBUCKET_API_BASE_URL": "http://10.0.0.7/2.0"},
        "BITBUCKET_API_BASE_URL",
    ),
    "http-callback-url": (
        {"BITBUCKET_CALLBACK_URL": f"http://portal.example{CALLBACK_PATH}"},
        "BITBUCKET_CALLBACK_URL",
    ),
    "http-callback-in-app-config": (
        {"BITBUCKET_APP_CONFIG": "{tmp}/app-config.yaml"},
        "BITBUCKET_CALLBACK_URL (from BITBUCKET_APP_CONFIG)",
    ),
    "no-client-id": ({"BITBUCKET_CLIENT_ID": None}, "BITBUCKET_CLIENT_ID"),
    "no-client-secret": ({"BITBUCKET_CLIENT_SECRET": None}, "BITBUCKET_CLIENT_SECRET"),
    "blank-client-secret": ({"BITBUCKET_CLIENT_SECRET": "   "}, "BITBUCKET_CLIENT_SECRET"),
    "unknown-resolver": ({"BITBUCKET_SIGNIN_RESOLVERS": "nosuchResolver"}, "nosuchResolver"),
    "missing-catalog": ({"BITBUCKET_CATALOG": "{tmp}/missing.yaml"}, "BITBUCKET_CATALOG"),
    "catalog-is-a-folder": ({"BITBUCKET_CATALOG": "{tmp}"}, "BITBUCKET_CATALOG"),
    "catalog-not-utf8": ({"BITBUCKET_CATALOG": "{tmp}/binary.yaml"}, "binary.yaml"),
    "infinite-timeout": ({"BITBUCKET_TIMEOUT": "inf"}, "BITBUCKET_TIMEOUT"),
    "nan-callback-timeout": ({"BITBUCKET_CALLBACK_TIMEOUT": "nan"}, "BITBUCKET_CALLBACK_TIMEOUT"),
    "metrics-on-the-home-page": ({"BITBUCKET_METRICS_PATH": "/"}, "BITBUCKET_METRICS_PATH"),
    "metrics-on-the-health-check": (
        {"BITBUCKET_METRICS_PATH": "/healthz"},
        "BITBUCKET_METRICS_PATH",
    ),
    "health-on-the-sign-in-page": ({"BITBUCKET_HEALTH_PATH": "/signin"}, "BITBUCKET_HEALTH_PATH"),
    "sign-in-page-on-the-callback": (
        {"BITBUCKET_SIGNIN_URL": CALLBACK_PATH},
        "BITBUCKET_SIGNIN_URL",
    ),
    "rate-limit-zero": ({"BITBUCKET_RATE_LIMIT": 0}, "BITBUCKET_RATE_LIMIT"),  # 0 from FLASK_…
    "rate-limit-no": ({"BITBUCKET_RATE_LIMIT": "no"}, "BITBUCKET_RATE_LIMIT"),
    "javascript-logo": ({"BITBUCKET_LOGO_URL": "javascript:alert(1)"}, "BITBUCKET_LOGO_URL"),
    "plain-http-logo": (
        {"BITBUCKET_LOGO_URL": "http://tracker.example/pixel.gif"},
        "BITBUCKET_LOGO_URL",
    ),
    "callback-url-elsewhere": (
        {"BITBUCKET_CALLBACK_URL": "http://localhost/somewhere/else"},
        "BITBUCKET_CALLBACK_URL",
    ),
    "callback-url-with-fragment": (
        {"BITBUCKET_CALLBACK_URL": f"http://localhost{CALLBACK_PATH}#x"},
        "BITBUCKET_CALLBACK_URL",
    ),
}


def case_config(case: str, base: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The base config with the case's changes (``None`` removes a key)."""
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00kind: User")
    (tmp_path / "app-config.yaml").write_text(APP_CONFIG)
    config = {**base, **CASES[case][0]}
    return {
        key: value.format(tmp=tmp_path) if isinstance(value, str) else value
        for key, value in config.items()
        if value is not None
    }


@pytest.mark.parametrize("case", CASES)
def test_refuses_to_start_with_one_line_naming_the_setting(
    app_config: dict[str, Any], tmp_path: Path, case: str
) -> None:
    """``create_app`` raises ConfigError, and ``import wsgi`` (gunicorn's way) prints exactly
    that one line and exits 1; no secret value is echoed."""
    config = case_config(case, app_config, tmp_path)
    with pytest.raises(ConfigError) as raised:
        create_app(config)
    line = str(raised.value)
    assert CASES[case][1] in line
    assert "\n" not in line
    assert not any(secret in line for secret in ("short-key", app_config["SECRET_KEY"]))
    assert app_config["BITBUCKET_CLIENT_SECRET"] not in line

    environment = {
        key.replace("BITBUCKET_", "FLASK_BITBUCKET_", 1): str(value)
        for key, value in config.items()
        if key.startswith("BITBUCKET_")
    }
    if "SECRET_KEY" in config:
        environment["FLASK_SECRET_KEY"] = config["SECRET_KEY"]
    result = run_wsgi(environment)
    assert result.returncode == 1
    assert result.stderr == f"bitbucket-signin: {line}\n"
    assert result.stdout == ""


def host_app(app_config: dict[str, Any], **settings: Any) -> Flask:
    """An app with its own ``/login`` and ``/healthz`` before Bitbucket sign-in is added."""
    app = Flask("host")
    app.config.update(app_config, **settings)
    app.add_url_rule("/login", "login", lambda: "the app's own login")
    app.add_url_rule("/healthz", "healthz", lambda: "the app's own health check")
    BitbucketSignIn(app)
    return app


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        (
            {"BITBUCKET_SIGNIN_URL": "/login"},
            "BITBUCKET_SIGNIN_URL: '/login' is already the path of a route of the app ('login')",
        ),
        (
            {},
            "BITBUCKET_HEALTH_PATH: '/healthz' is already the path of a route of the app "
            "('healthz')",
        ),
        (
            {"BITBUCKET_HEALTH_PATH": "", "BITBUCKET_METRICS_PATH": "/login/"},
            "BITBUCKET_METRICS_PATH: '/login' is already the path of a route of the app ('login')",
        ),
    ],
    ids=["sign-in-page", "default-health-check", "metrics"],
)
def test_a_route_the_app_already_has_is_never_replaced(
    app_config: dict[str, Any], settings: dict[str, Any], refusal: str
) -> None:
    """One of two routes on one path is never served, without a word: ``init_app`` checks
    the app's routes and stops, naming the setting to change."""
    with pytest.raises(ConfigError) as raised:
        host_app(app_config, **settings)
    assert str(raised.value) == refusal


def test_routes_on_paths_of_their_own_both_answer(app_config: dict[str, Any]) -> None:
    app = host_app(app_config, BITBUCKET_HEALTH_PATH="/bitbucket-signin/healthz")
    with serve(app) as url:
        assert requests.get(f"{url}/login", timeout=10).text == "the app's own login"
        assert requests.get(f"{url}/healthz", timeout=10).text == "the app's own health check"
        health = requests.get(f"{url}/bitbucket-signin/healthz", timeout=10)
        assert health.json()["status"] == "ok"
        assert "Sign in with Bitbucket" in requests.get(f"{url}/signin", timeout=10).text


def test_secrets_never_reach_the_logs(
    http: requests.Session,
    app: Flask,
    live_app: str,
    bitbucket: EmulatorServer,
    logs: pytest.LogCaptureFixture,
) -> None:
    """Every logger at DEBUG (ours, Authlib, urllib3, werkzeug) through a whole sign-in: the
    client secret (plain and as its Basic header), the access and refresh tokens and the PKCE
    verifier appear in no record. The authorization code appears only in request lines of
    access logs, like any URL: it is single use, already spent when logged, and worthless
    without the client secret and the verifier (see test_state_and_pkce.py)."""
    authorize_url = start_sign_in(http, live_app)
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    pending = session_contents(app, http.cookies.get("session"))[f"_state_bitbucket_{state}"]
    verifier = pending["data"]["code_verifier"]
    callback_url = grant_at_emulator(bitbucket.url, authorize_url, JANE)
    code = parse_qs(urlsplit(callback_url).query)["code"][0]
    assert http.get(callback_url, allow_redirects=False).status_code == 302
    assert home_page(http, live_app).status_code == 200

    assert leaked(log_texts(logs), [*secret_values(bitbucket), verifier]) == []
    assert len(secret_values(bitbucket)) == 4  # secret, Basic header, access and refresh token
    code_loggers = {record.name for record in logs.records if code in record.getMessage()}
    assert code_loggers <= set(ACCESS_LOGGERS)
    assert logging.getLogger("authlib").getEffectiveLevel() == logging.DEBUG
