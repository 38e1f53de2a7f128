"""Settings: defaults, validation with one-line errors, and the Backstage app-config form."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bitbucket_signin.config import DEFAULTS, load_settings, parse_duration, route_paths
from bitbucket_signin.errors import ConfigError

from ..support import DATA, SECRET_KEY

BASE = {
    "SECRET_KEY": SECRET_KEY,
    "BITBUCKET_CLIENT_ID": "id",
    "BITBUCKET_CLIENT_SECRET": "secret",
    "BITBUCKET_CATALOG": str(DATA / "catalog.yaml"),
}


def settings_with(**changes: Any) -> Any:
    config = {**BASE, **changes}
    return load_settings({k: v for k, v in config.items() if v is not None}, environ={})


def refusal(**changes: Any) -> str:
    """The message of the ConfigError that ``changes`` stop start-up with (one line)."""
    with pytest.raises(ConfigError) as raised:
        settings_with(**changes)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_defaults() -> None:
    settings = settings_with()
    assert settings.resolvers == ("userIdMatchingUserEntityAnnotation",)
    assert settings.authorize_url == "https://bitbucket.org/site/oauth2/authorize"
    assert settings.token_url == "https://bitbucket.org/site/oauth2/access_token"
    assert settings.api_base_url == "https://api.bitbucket.org/2.0"
    assert settings.callback_url is None
    assert settings.timeout == 10.0
    assert settings.catalog_max_bytes == 256 * 1024 * 1024
    assert settings.clock is None
    assert "secret" not in repr(settings)


def test_bitbucket_call_settings() -> None:
    defaults = settings_with()
    assert (defaults.callback_timeout, defaults.max_response_bytes) == (20.0, 1024 * 1024)
    assert (defaults.max_concurrent_sign_ins, defaults.fetch_emails) == (32, None)
    assert settings_with(BITBUCKET_TIMEOUT="3").callback_timeout == 6.0  # twice, by default
    from_environment = settings_with(
        BITBUCKET_CALLBACK_TIMEOUT="7.5",
        BITBUCKET_MAX_RESPONSE_BYTES="2048",
        BITBUCKET_MAX_CONCURRENT_SIGN_INS="3",
        BITBUCKET_FETCH_EMAILS="no",
    )
    assert from_environment.callback_timeout == 7.5
    assert from_environment.max_response_bytes == 2048
    assert from_environment.max_concurrent_sign_ins == 3
    assert from_environment.fetch_emails is False
    assert settings_with(BITBUCKET_FETCH_EMAILS=True).fetch_emails is True


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("BITBUCKET_CALLBACK_TIMEOUT", "0"),
        ("BITBUCKET_CALLBACK_TIMEOUT", "later"),
        ("BITBUCKET_MAX_RESPONSE_BYTES", "1 MiB"),
        ("BITBUCKET_MAX_RESPONSE_BYTES", 0),
        ("BITBUCKET_MAX_RESPONSE_BYTES", True),
        ("BITBUCKET_MAX_CONCURRENT_SIGN_INS", "-1"),
        ("BITBUCKET_MAX_CONCURRENT_SIGN_INS", 2.5),
        ("BITBUCKET_FETCH_EMAILS", "sometimes"),
    ],
)
def test_bitbucket_call_settings_are_checked(setting: str, value: Any) -> None:
    assert refusal(**{setting: value}).startswith(f"{setting}: ")


def test_catalog_max_bytes_from_the_environment() -> None:
    """``FLASK_BITBUCKET_CATALOG_MAX_BYTES=1048576`` arrives as a number, or as text."""
    assert settings_with(BITBUCKET_CATALOG_MAX_BYTES=1048576).catalog_max_bytes == 1048576
    assert settings_with(BITBUCKET_CATALOG_MAX_BYTES=" 2048 ").catalog_max_bytes == 2048


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"BITBUCKET_CLIENT_ID": None}, "BITBUCKET_CLIENT_ID"),
        ({"BITBUCKET_CLIENT_SECRET": ""}, "BITBUCKET_CLIENT_SECRET"),
        ({"BITBUCKET_CATALOG": None}, "BITBUCKET_CATALOG"),
        ({"BITBUCKET_CATALOG": "/nonexistent/catalog.yaml"}, "BITBUCKET_CATALOG"),
        ({"BITBUCKET_TOKEN_URL": "ftp://x"}, "BITBUCKET_TOKEN_URL"),
        ({"BITBUCKET_TIMEOUT": "soon"}, "BITBUCKET_TIMEOUT"),
        ({"BITBUCKET_SESSION_DURATION": "forever"}, "BITBUCKET_SESSION_DURATION"),
        ({"BITBUCKET_CLOCK": "1000"}, "BITBUCKET_CLOCK"),
        ({"BITBUCKET_BRAND_COLOR": "red; background: url(x)"}, "BITBUCKET_BRAND_COLOR"),
        ({"BITBUCKET_SIGNIN_RESOLVERS": "[broken"}, "BITBUCKET_SIGNIN_RESOLVERS"),
        ({"BITBUCKET_APP_CONFIG": "/nonexistent/app-config.yaml"}, "BITBUCKET_APP_CONFIG"),
        ({"BITBUCKET_CATALOG_MAX_BYTES": "lots"}, "BITBUCKET_CATALOG_MAX_BYTES"),
        ({"BITBUCKET_CATALOG_MAX_BYTES": 0}, "BITBUCKET_CATALOG_MAX_BYTES"),
        ({"BITBUCKET_CATALOG_MAX_BYTES": -1}, "BITBUCKET_CATALOG_MAX_BYTES"),
        ({"BITBUCKET_CATALOG_MAX_BYTES": 1.5}, "BITBUCKET_CATALOG_MAX_BYTES"),
        ({"BITBUCKET_CATALOG_MAX_BYTES": True}, "BITBUCKET_CATALOG_MAX_BYTES"),
    ],
)
def test_misconfiguration_is_one_line_naming_the_setting(
    changes: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_with(**changes)
    message = str(raised.value)
    assert named in message
    assert "\n" not in message
    assert "secret" not in message.replace("SECRET", "")


def test_short_secret_key_allowed_when_testing_only() -> None:
    assert settings_with(SECRET_KEY="short-k3y!", TESTING=True).client_id == "id"
    with pytest.raises(ConfigError, match="SECRET_KEY is too short"):
        settings_with(SECRET_KEY="short-k3y!", DEBUG=True)


@pytest.mark.parametrize(
    "key",
    [
        "a" * 32,
        "ab" * 40,
        b"\x00\x01" * 32,
        "0123456" * 8,
        "change-me",
        "CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME",
        "changemechangemechangemechangemech",
        "Change_Me_please_0123456789abcdefghij",
        "your-secret-key-goes-here-0123456789abc",
        "replace-me-with-a-long-random-value-xyz",
        "secret-secret-secret-secret-secret-secret",
        "dev-dev-dev-dev-dev-dev-dev-dev-dev-dev-dev",
        "django-insecure-0123456789abcdefghijklmnopqrstuvwxyz",
        "Super_Secret_Key_1234567890_abcdefghijk",
    ],
)
def test_guessable_secret_keys_are_refused_even_when_long(key: str | bytes) -> None:
    for testing in (False, True):
        with pytest.raises(ConfigError) as raised:
            settings_with(SECRET_KEY=key, TESTING=testing)
        assert str(raised.value).startswith("SECRET_KEY ")


@pytest.mark.parametrize(
    "key",
    [
        SECRET_KEY,
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "devXq3-7Lk_2pZr9wVt0sNc8mYb4hGf1eJd6aQo5iUu",
        b"\x8f\x12\xa0\x7e\x01\xfe\x33\x90\x4c\xd2\x5b\x6a\xe7\x18\xc4\x29" * 2,
    ],
)
def test_random_secret_keys_pass(key: str | bytes) -> None:
    assert settings_with(SECRET_KEY=key).client_id == "id"


URL_SETTINGS = ("AUTHORIZE_URL", "TOKEN_URL", "API_BASE_URL", "CALLBACK_URL")
CALLBACK_PATH = "/api/auth/bitbucket/handler/frame"  # a path every URL setting accepts


@pytest.mark.parametrize("name", URL_SETTINGS)
@pytest.mark.parametrize(
    "url",
    [
        f"http://bitbucket.example{CALLBACK_PATH}",
        f"http://10.0.0.5:7008{CALLBACK_PATH}",
        f"http://127.0.0.1@evil.example{CALLBACK_PATH}",
        f"http://localhost.evil.example{CALLBACK_PATH}",
        f"http://[::2]{CALLBACK_PATH}",
        f"http://0.0.0.0:7008{CALLBACK_PATH}",
    ],
)
def test_plain_http_to_another_machine_is_refused(name: str, url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_with(**{f"BITBUCKET_{name}": url})
    message = str(raised.value)
    assert message.startswith(f"BITBUCKET_{name}: ")
    assert "https" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", URL_SETTINGS)
@pytest.mark.parametrize(
    "url",
    [
        f"http://localhost:7007{CALLBACK_PATH}",
        f"http://LOCALHOST{CALLBACK_PATH}",
        f"http://127.0.0.1:7008{CALLBACK_PATH}",
        f"http://127.8.9.10{CALLBACK_PATH}",
        f"http://[::1]:7008{CALLBACK_PATH}",
        f"https://bitbucket.example{CALLBACK_PATH}",
    ],
)
def test_https_or_loopback_http_is_accepted(name: str, url: str) -> None:
    key = name.lower()
    assert getattr(settings_with(**{f"BITBUCKET_{name}": url}), key) == url.rstrip("/")


def test_app_config_http_callback_is_refused_naming_where_it_came_from(tmp_path: Path) -> None:
    app_config = tmp_path / "app-config.yaml"
    app_config.write_text(
        "auth:\n  providers:\n    bitbucket:\n      development:\n"
        "        callbackUrl: http://portal.example.com/api/auth/bitbucket/handler/frame\n"
    )
    with pytest.raises(ConfigError) as raised:
        settings_with(BITBUCKET_APP_CONFIG=str(app_config))
    assert str(raised.value).startswith(
        "BITBUCKET_CALLBACK_URL (from BITBUCKET_APP_CONFIG): 'http://portal.example.com/"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, None),
        ("", None),
        ("false", None),
        ("off", None),
        (True, "max-age=31536000; includeSubDomains"),
        (
            "max-age=63072000; includeSubDomains; preload",
            "max-age=63072000; includeSubDomains; preload",
        ),
        ("includeSubDomains; max-age=600", "includeSubDomains; max-age=600"),
    ],
)
def test_hsts_setting(value: Any, expected: str | None) -> None:
    assert settings_with(BITBUCKET_HSTS=value).hsts == expected
    assert settings_with().hsts == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("value", ["yes", "max-age=soon", "includeSubDomains", 1])
def test_hsts_without_max_age_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^BITBUCKET_HSTS: "):
        settings_with(BITBUCKET_HSTS=value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("userIdMatchingUserEntityAnnotation", ("userIdMatchingUserEntityAnnotation",)),
        ("a, b", ("a", "b")),
        ('["a", "b"]', ("a", "b")),
        (["a", {"resolver": "b"}], ("a", {"resolver": "b"})),
        (
            '["a", {"resolver": "b", "allowedDomains": ["x.io"]}]',
            ("a", {"resolver": "b", "allowedDomains": ["x.io"]}),
        ),
        ('{"resolver": "b"}', ({"resolver": "b"},)),
    ],
)
def test_resolver_lists_from_environment_forms(value: Any, expected: tuple[Any, ...]) -> None:
    assert settings_with(BITBUCKET_SIGNIN_RESOLVERS=value).resolvers == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, timedelta(seconds=90)),
        ("3600", timedelta(hours=1)),
        ("24h", timedelta(hours=24)),
        ("2 days", timedelta(days=2)),
        ({"hours": 1, "minutes": 30}, timedelta(hours=1, minutes=30)),
        ('{"minutes": 5}', timedelta(minutes=5)),
        (None, None),
    ],
)
def test_durations(value: Any, expected: timedelta | None) -> None:
    assert parse_duration(value, "X") == expected


def test_backstage_app_config(tmp_path: Path) -> None:
    app_config = tmp_path / "app-config.yaml"
    app_config.write_text(
        """
auth:
  environment: production
  providers:
    bitbucket:
      development: {clientId: wrong, clientSecret: wrong}
      production:
        clientId: ${AUTH_BITBUCKET_CLIENT_ID}
        clientSecret: ${AUTH_BITBUCKET_CLIENT_SECRET}
        callbackUrl: https://portal.example.com/api/auth/bitbucket/handler/frame
        additionalScopes: "email, team"
        sessionDuration: {hours: 24}
        signIn:
          resolvers:
            - resolver: usernameMatchingUserEntityAnnotation
            - resolver: emailLocalPartMatchingUserEntityName
              allowedDomains: [example.com]
"""
    )
    environ = {"AUTH_BITBUCKET_CLIENT_ID": "prod-id", "AUTH_BITBUCKET_CLIENT_SECRET": "prod-secret"}
    config = {
        "SECRET_KEY": SECRET_KEY,
        "BITBUCKET_CATALOG": str(DATA / "catalog.yaml"),
        "BITBUCKET_APP_CONFIG": str(app_config),
    }
    settings = load_settings(config, environ=environ)
    assert settings.client_id == "prod-id"
    assert settings.client_secret == "prod-secret"
    assert settings.callback_url == "https://portal.example.com/api/auth/bitbucket/handler/frame"
    assert settings.scopes == ("email", "team")
    assert settings.session_duration == timedelta(hours=24)
    assert settings.resolvers == (
        {"resolver": "usernameMatchingUserEntityAnnotation"},
        {"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomains": ["example.com"]},
    )

    with pytest.raises(ConfigError, match="AUTH_BITBUCKET_CLIENT_SECRET is not set"):
        load_settings(config, environ={"AUTH_BITBUCKET_CLIENT_ID": "x"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"BITBUCKET_SIGNIN_RESOLVERS": "nosuchResolver"},
            "BITBUCKET_SIGNIN_RESOLVERS: Sign-in resolver 'nosuchResolver' is not available",
        ),
        (
            {
                "BITBUCKET_SIGNIN_RESOLVERS": [
                    {"resolver": "emailMatchingUserEntityProfileEmail", "x": 1}
                ]
            },
            "BITBUCKET_SIGNIN_RESOLVERS: Sign-in resolver "
            "'emailMatchingUserEntityProfileEmail': unknown option 'x'",
        ),
    ],
)
def test_app_refuses_bad_resolvers_at_start_up(changes: dict[str, Any], message: str) -> None:
    from bitbucket_signin.standalone import create_app

    with pytest.raises(ConfigError) as raised:
        create_app({**BASE, **changes})
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "setting",
    ["BITBUCKET_TIMEOUT", "BITBUCKET_CALLBACK_TIMEOUT", "BITBUCKET_CATALOG_CHECK_INTERVAL"],
)
@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "nan", math.inf, math.nan, 10**400])
def test_numbers_must_be_finite(setting: str, value: Any) -> None:
    """``inf`` ("no timeout") passed ``> 0``, then every socket wait of a sign-in failed."""
    assert refusal(**{setting: value}).startswith(f"{setting}: expected a finite number above 0")


@pytest.mark.parametrize("setting", ["BITBUCKET_TIMEOUT", "BITBUCKET_CALLBACK_TIMEOUT"])
def test_timeouts_are_at_most_a_day(setting: str) -> None:
    """A socket cannot wait 1e10 seconds: such a timeout would fail every sign-in."""
    assert getattr(settings_with(**{setting: "86400"}), setting.lower()[10:]) == 86400
    for value in ("86400.5", "1e10"):
        assert refusal(**{setting: value}).endswith(f" at most 86400, got '{value}'")


@pytest.mark.parametrize(
    "value",
    [math.inf, math.nan, "99999999999 days", {"days": math.inf}, '{"hours": NaN}', 10**30],
)
def test_durations_must_be_finite(value: Any) -> None:
    for setting in ("BITBUCKET_SESSION_DURATION", "BITBUCKET_SESSION_IDLE_TIMEOUT"):
        assert refusal(**{setting: value}).startswith(f"{setting}: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", DEFAULTS["RATE_LIMIT"]),  # an unset template variable: the default
        ("  ", DEFAULTS["RATE_LIMIT"]),
        ("off", None),
        (" OFF ", None),
        ("false", None),
        (False, None),
        ("10/minute; 100/hour", "10/minute; 100/hour"),
    ],
)
def test_rate_limit_is_off_only_when_said(value: Any, expected: str | None) -> None:
    assert settings_with(BITBUCKET_RATE_LIMIT=value).rate_limit == expected
    assert settings_with().rate_limit == DEFAULTS["RATE_LIMIT"]


@pytest.mark.parametrize("value", ["0", "no", "none", "disabled", "1", True, "30"])
def test_rate_limit_junk_is_refused_not_read_as_off(value: Any) -> None:
    message = refusal(BITBUCKET_RATE_LIMIT=value)
    assert message.startswith(f"BITBUCKET_RATE_LIMIT: cannot read {value!r}")


@pytest.mark.parametrize(
    "url",
    [
        "/static/logo.png",
        "/logo.svg?v=2",
        "https://cdn.example/logo.png",
        "HTTPS://cdn.example/logo.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/svg+xml,%3Csvg viewBox='0 0 32 32'%3E%3C/svg%3E",
    ],
)
def test_logo_url_a_path_https_or_data_image(url: str) -> None:
    assert settings_with(BITBUCKET_LOGO_URL=url).logo_url == url
    assert settings_with(BITBUCKET_LOGO_URL="").logo_url is None


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "http://tracker.example/pixel.gif",
        "//tracker.example/pixel.gif",  # another site, by the page's scheme
        "/\\tracker.example/pixel.gif",  # read as // by browsers
        "/\t/tracker.example/pixel.gif",  # browsers drop the tab
        "https:tracker.example/pixel.gif",
        "https:///pixel.gif",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "ftp://files.example/logo.png",
        "logo.png",
        "https://cdn.example/logo.png\n<x>",
    ],
)
def test_logo_url_anything_else_is_refused(url: str) -> None:
    assert refusal(BITBUCKET_LOGO_URL=url).startswith("BITBUCKET_LOGO_URL: ")


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        ({}, f"https://portal.example{CALLBACK_PATH}"),
        ({}, f"https://portal.example{CALLBACK_PATH}?tenant=1"),
        ({}, f"https://portal.example/mounted/under{CALLBACK_PATH}"),  # a SCRIPT_NAME mount
        ({"BITBUCKET_URL_PREFIX": "/auth/"}, "https://portal.example/auth/handler/frame"),
        ({"BITBUCKET_URL_PREFIX": "/"}, "https://portal.example/handler/frame"),
    ],
)
def test_callback_url_is_the_callback_route(changes: dict[str, Any], accepted: str) -> None:
    assert settings_with(BITBUCKET_CALLBACK_URL=accepted, **changes).callback_url == accepted


@pytest.mark.parametrize(
    ("changes", "refused", "reason"),
    [
        ({}, "http://localhost/somewhere/else", "is not the callback route"),
        ({}, "https://portal.example/api/auth/bitbucket/handler", "is not the callback route"),
        ({}, f"https://portal.example{CALLBACK_PATH}/", "is not the callback route"),
        ({}, f"https://portal.example{CALLBACK_PATH}x", "is not the callback route"),
        ({}, f"https://portal.example/x{CALLBACK_PATH[1:]}", "is not the callback route"),
        ({"BITBUCKET_URL_PREFIX": "/auth"}, f"https://portal.example{CALLBACK_PATH}", "/auth/"),
        ({}, f"http://localhost{CALLBACK_PATH}#x", "has a fragment"),
        ({}, f"https://portal.example{CALLBACK_PATH}#", "has a fragment"),
    ],
)
def test_callback_url_elsewhere_is_refused(
    changes: dict[str, Any], refused: str, reason: str
) -> None:
    message = refusal(BITBUCKET_CALLBACK_URL=refused, **changes)
    assert message.startswith(f"BITBUCKET_CALLBACK_URL: {refused!r} ")
    assert reason in message


@pytest.mark.parametrize(
    ("changes", "named", "taken_by"),
    [
        ({"BITBUCKET_METRICS_PATH": "/"}, "BITBUCKET_METRICS_PATH", "home page"),
        ({"BITBUCKET_HEALTH_PATH": "/"}, "BITBUCKET_HEALTH_PATH", "home page"),
        ({"BITBUCKET_METRICS_PATH": "/healthz"}, "BITBUCKET_METRICS_PATH", "the health check"),
        ({"BITBUCKET_METRICS_PATH": "/healthz/"}, "BITBUCKET_METRICS_PATH", "the health check"),
        ({"BITBUCKET_METRICS_PATH": CALLBACK_PATH}, "BITBUCKET_METRICS_PATH", "the callback"),
        ({"BITBUCKET_HEALTH_PATH": "/signin"}, "BITBUCKET_HEALTH_PATH", "the sign-in page"),
        ({"BITBUCKET_SIGNIN_URL": CALLBACK_PATH}, "BITBUCKET_SIGNIN_URL", "the callback"),
        (
            {"BITBUCKET_URL_PREFIX": "/", "BITBUCKET_SIGNIN_URL": "/start"},
            "BITBUCKET_SIGNIN_URL",
            "the sign-in start (BITBUCKET_URL_PREFIX)",
        ),
        (
            {
                "BITBUCKET_SESSION_REDIS_URL": "redis://localhost/0",
                "BITBUCKET_HEALTH_PATH": "/api/auth/bitbucket/logout/everywhere",
            },
            "BITBUCKET_HEALTH_PATH",
            "sign-out everywhere",
        ),
        ({"BITBUCKET_SIGNIN_URL": "/_bitbucket_signin/theme.css"}, "BITBUCKET_SIGNIN_URL", "own"),
        ({"BITBUCKET_HEALTH_PATH": "/_bitbucket_signin/static/x"}, "BITBUCKET_HEALTH_PATH", "own"),
        ({"BITBUCKET_URL_PREFIX": "/_bitbucket_signin"}, "BITBUCKET_URL_PREFIX", "own files"),
        ({"BITBUCKET_SIGNIN_URL": "/<path:page>"}, "BITBUCKET_SIGNIN_URL", "plain path"),
        ({"BITBUCKET_METRICS_PATH": "//metrics"}, "BITBUCKET_METRICS_PATH", "plain path"),
        ({"BITBUCKET_URL_PREFIX": "/api auth"}, "BITBUCKET_URL_PREFIX", "plain path"),
    ],
)
def test_routes_never_take_each_others_paths(
    changes: dict[str, Any], named: str, taken_by: str
) -> None:
    """Two routes on one path: one of them is never served (or the metrics replace the
    home page), without a word; so start-up refuses, naming the setting to change."""
    message = refusal(**changes)
    assert message.startswith(f"{named}: ")
    assert taken_by in message


def test_routes_with_a_root_prefix() -> None:
    paths = route_paths(settings_with(BITBUCKET_URL_PREFIX="/", BITBUCKET_METRICS_PATH="/m"))
    assert paths == {
        "theme": "/_bitbucket_signin/theme.css",
        "static": "/_bitbucket_signin/static/<path:filename>",
        "start": "/start",
        "callback": "/handler/frame",
        "refresh": "/refresh",
        "logout": "/logout",
        "jwks": "/.well-known/jwks.json",
        "openid_configuration": "/.well-known/openid-configuration",
        "signin": "/signin",
        "health": "/healthz",
        "metrics": "/m",
    }


def test_backstage_app_config_for_the_frontend_protocol(tmp_path: Path) -> None:
    """``app.baseUrl``, ``auth.experimentalExtraAllowedOrigins``, ``auth.environment`` and the
    identity token's settings come from the app-config; Flask keys win, and
    ``BITBUCKET_ENVIRONMENT`` picks the provider block."""
    app_config = tmp_path / "app-config.yaml"
    app_config.write_text(
        """
app: {baseUrl: "https://backstage.example.com/portal"}
auth:
  environment: production
  experimentalExtraAllowedOrigins: ["https://Other.Example.com:443", "http://localhost:3000"]
  backstageTokenExpiration: {minutes: 30}
  omitIdentityTokenOwnershipClaim: true
  providers:
    bitbucket:
      production: {clientId: prod-id, clientSecret: prod-secret}
      staging: {clientId: staging-id, clientSecret: staging-secret}
"""
    )
    config = {**BASE, "BITBUCKET_APP_CONFIG": str(app_config)}
    del config["BITBUCKET_CLIENT_ID"], config["BITBUCKET_CLIENT_SECRET"]
    settings = load_settings(config, environ={})
    assert settings.environment == "production"
    assert settings.client_id == "prod-id"
    assert settings.app_base_url == "https://backstage.example.com/portal"
    assert settings.allowed_origins == {
        "https://backstage.example.com",
        "https://other.example.com",
        "http://localhost:3000",
    }
    assert settings.token_expiration == 1800
    assert settings.token_ownership_claim is False

    staging = load_settings({**config, "BITBUCKET_ENVIRONMENT": "staging"}, environ={})
    assert (staging.environment, staging.client_id) == ("staging", "staging-id")
    own = load_settings({**config, "BITBUCKET_ALLOWED_ORIGINS": "https://a.example"}, environ={})
    assert own.allowed_origins == {"https://backstage.example.com", "https://a.example"}


def test_frontend_defaults() -> None:
    settings = settings_with()
    assert settings.environment == "development"
    assert settings.allowed_origins == frozenset()
    assert settings.token_expiration == 3600
    assert settings.token_ownership_claim is True
    assert settings.signing_key is None
    assert settings.previous_public_keys == ()


@pytest.mark.parametrize(
    "origin",
    [
        "https://*.example.com",
        "https://example.com/path",
        "http://backstage.example.com",
        "example.com",
        "https://user@example.com",
        "ftp://example.com",
    ],
)
def test_allowed_origins_are_exact_https_or_loopback_origins(origin: str) -> None:
    message = refusal(BITBUCKET_ALLOWED_ORIGINS=[origin])
    assert message.startswith("BITBUCKET_ALLOWED_ORIGINS: ")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(1, 600), (599, 600), ("15m", 900), ("3600", 3600), ({"hours": 30}, 86400)],
)
def test_token_expiration_is_clamped(value: Any, seconds: int) -> None:
    assert settings_with(BITBUCKET_TOKEN_EXPIRATION=value).token_expiration == seconds


@pytest.mark.parametrize("value", ["soon", -5, "inf", True])
def test_token_expiration_junk_is_refused(value: Any) -> None:
    assert refusal(BITBUCKET_TOKEN_EXPIRATION=value).startswith("BITBUCKET_TOKEN_EXPIRATION: ")
