"""Settings: defaults, validation with one-line errors, and the Backstage app-config form."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bitbucket_signin.config import load_settings, parse_duration
from bitbucket_signin.errors import ConfigError

from .support import DATA, SECRET_KEY

BASE = {
    "SECRET_KEY": SECRET_KEY,
    "BITBUCKET_CLIENT_ID": "id",
    "BITBUCKET_CLIENT_SECRET": "secret",
    "BITBUCKET_CATALOG": str(DATA / "catalog.yaml"),
}


def settings_with(**changes: Any) -> Any:
    config = {**BASE, **changes}
    return load_settings({k: v for k, v in config.items() if v is not None}, environ={})


def test_defaults() -> None:
    settings = settings_with()
    assert settings.resolvers == ("userIdMatchingUserEntityAnnotation",)
    assert settings.authorize_url == "https://bitbucket.org/site/oauth2/authorize"
    assert settings.token_url == "https://bitbucket.org/site/oauth2/access_token"
    assert settings.api_base_url == "https://api.bitbucket.org/2.0"
    assert settings.callback_url is None
    assert settings.timeout == 10.0
    assert settings.catalog_max_bytes == 256 * 1024 * 1024
    assert "secret" not in repr(settings)


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


def test_short_secret_key_allowed_when_testing() -> None:
    assert settings_with(SECRET_KEY="short", TESTING=True).client_id == "id"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("userIdMatchingUserEntityAnnotation", ("userIdMatchingUserEntityAnnotation",)),
        ("a, b", ("a", "b")),
        ('["a", "b"]', ("a", "b")),
        (["a", {"resolver": "b"}], ("a", {"resolver": "b"})),
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
    from bitbucket_signin.demo import create_app

    with pytest.raises(ConfigError) as raised:
        create_app({**BASE, **changes})
    assert str(raised.value) == message
