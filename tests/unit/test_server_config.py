"""Bitbucket Data Center's settings: ``BITBUCKET_SERVER_…`` and Backstage's
``auth.providers.bitbucketServer``; every refusal is one line naming the setting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bitbucket_signin.config import NO_PROVIDER, load_settings, route_paths

from ..support import DATA, SECRET_KEY
from . import test_config

SERVER = {
    "BITBUCKET_CLIENT_ID": None,  # Bitbucket Cloud off
    "BITBUCKET_CLIENT_SECRET": None,
    "BITBUCKET_SERVER_URL": "https://git.example.com/bitbucket/",
    "BITBUCKET_SERVER_CLIENT_ID": "dc-id",
    "BITBUCKET_SERVER_CLIENT_SECRET": "dc-secret",
}


def settings_with(**changes: Any) -> Any:
    return test_config.settings_with(**{**SERVER, **changes})


def refusal(**changes: Any) -> str:
    return test_config.refusal(**{**SERVER, **changes})


def test_data_center_alone() -> None:
    settings = settings_with()
    assert settings.client_id is None
    server = settings.server
    assert server.url == "https://git.example.com/bitbucket"
    assert server.api_url == server.url
    assert server.authorize_url == "https://git.example.com/bitbucket/rest/oauth2/latest/authorize"
    assert server.token_url == "https://git.example.com/bitbucket/rest/oauth2/latest/token"
    assert server.resolvers == ("userIdMatchingUserEntityAnnotation",)
    assert (server.name, server.host, server.scopes) == ("git.example.com", "git.example.com", ())
    assert "dc-secret" not in repr(settings)
    paths = route_paths(settings)
    assert paths["server_start"] == "/api/auth/bitbucketServer/start"
    assert paths["server_callback"] == "/api/auth/bitbucketServer/handler/frame"
    assert paths["server_refresh"] == "/api/auth/bitbucketServer/refresh"
    assert paths["server_logout"] == "/api/auth/bitbucketServer/logout"


def test_both_providers_and_every_key() -> None:
    settings = settings_with(
        BITBUCKET_CLIENT_ID="cloud-id",
        BITBUCKET_CLIENT_SECRET="cloud-secret",
        BITBUCKET_SERVER_API_URL="http://127.0.0.1:7990/bitbucket",
        BITBUCKET_SERVER_CALLBACK_URL="https://portal.example.com/api/auth/bitbucketServer/handler/frame",
        BITBUCKET_SERVER_SIGNIN_RESOLVERS="emailMatchingUserEntityProfileEmail",
        BITBUCKET_SERVER_SCOPES="PUBLIC_REPOS REPO_READ",
        BITBUCKET_SERVER_SESSION_DURATION="12h",
        BITBUCKET_SERVER_NAME="Acme Git",
    )
    assert settings.client_id == "cloud-id"
    server = settings.server
    assert server.token_url == "http://127.0.0.1:7990/bitbucket/rest/oauth2/latest/token"
    assert server.authorize_url.startswith("https://git.example.com/bitbucket/")
    assert server.resolvers == ("emailMatchingUserEntityProfileEmail",)
    assert server.scopes == ("PUBLIC_REPOS", "REPO_READ")
    assert server.session_duration == timedelta(hours=12)
    assert server.name == "Acme Git"


def test_neither_provider_is_one_line_naming_both() -> None:
    message = refusal(BITBUCKET_SERVER_URL=None)
    assert message == NO_PROVIDER
    assert "BITBUCKET_CLIENT_ID" in message
    assert "BITBUCKET_SERVER_URL" in message


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"BITBUCKET_SERVER_CLIENT_ID": None}, "BITBUCKET_SERVER_CLIENT_ID is not set"),
        ({"BITBUCKET_SERVER_CLIENT_SECRET": " "}, "BITBUCKET_SERVER_CLIENT_SECRET is not set"),
        ({"BITBUCKET_SERVER_URL": "git.example.com"}, "BITBUCKET_SERVER_URL: 'git.example.com'"),
        ({"BITBUCKET_SERVER_URL": "http://git.example.com"}, "BITBUCKET_SERVER_URL: "),
        ({"BITBUCKET_SERVER_URL": "https://git.example.com/?x=1"}, "BITBUCKET_SERVER_URL: "),
        ({"BITBUCKET_SERVER_URL": "https://bitbucket.org"}, "BITBUCKET_SERVER_URL: 'https://bit"),
        ({"BITBUCKET_SERVER_API_URL": "ftp://git"}, "BITBUCKET_SERVER_API_URL: "),
        ({"BITBUCKET_SERVER_SCOPES": "REPO_READ account"}, "BITBUCKET_SERVER_SCOPES: 'account'"),
        ({"BITBUCKET_SERVER_SESSION_DURATION": "forever"}, "BITBUCKET_SERVER_SESSION_DURATION"),
        ({"BITBUCKET_SERVER_URL_PREFIX": "api/x"}, "BITBUCKET_SERVER_URL_PREFIX: "),
        ({"BITBUCKET_SERVER_SIGNIN_RESOLVERS": "[x"}, "BITBUCKET_SERVER_SIGNIN_RESOLVERS: "),
        (
            {
                "BITBUCKET_SERVER_CALLBACK_URL": "https://p.example.com/api/auth/bitbucket/handler/frame"
            },
            "BITBUCKET_SERVER_CALLBACK_URL: 'https://p.example.com/api/auth/bitbucket/handler/frame'"
            " is not the callback route: its path must end in /api/auth/bitbucketServer/handler"
            "/frame (BITBUCKET_SERVER_URL_PREFIX + /handler/frame)",
        ),
        (
            {"BITBUCKET_SERVER_URL_PREFIX": "/api/auth/bitbucket"},
            "BITBUCKET_SERVER_URL_PREFIX: '/api/auth/bitbucket/logout' is already the path of "
            "sign-out (BITBUCKET_URL_PREFIX)",
        ),
    ],
)
def test_refusals_name_the_setting(changes: dict[str, Any], named: str) -> None:
    assert refusal(**changes).startswith(named)


def test_backstage_form(tmp_path: Path) -> None:
    app_config = tmp_path / "app-config.yaml"
    app_config.write_text(
        """
auth:
  environment: production
  providers:
    bitbucketServer:
      production:
        host: git.example.com
        clientId: ${DC_ID}
        clientSecret: ${DC_SECRET}
        callbackUrl: https://portal.example.com/api/auth/bitbucketServer/handler/frame
        sessionDuration: {hours: 2}
        signIn:
          resolvers:
            - resolver: emailLocalPartMatchingUserEntityName
              allowedDomains: [example.com]
""",
        encoding="utf-8",
    )
    settings = load_settings(
        {"SECRET_KEY": SECRET_KEY, "BITBUCKET_CATALOG": str(DATA / "catalog.yaml"),
         "BITBUCKET_APP_CONFIG": str(app_config)},
        environ={"DC_ID": "from-env", "DC_SECRET": "s"},
    )  # fmt: skip
    server = settings.server
    assert settings.client_id is None
    assert server.url == "https://git.example.com"
    assert server.client_id == "from-env"
    assert server.callback_url.endswith("/bitbucketServer/handler/frame")
    assert server.session_duration == timedelta(hours=2)
    assert server.resolvers == (
        {"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomains": ["example.com"]},
    )


def test_backstage_form_with_neither_block(tmp_path: Path) -> None:
    app_config = tmp_path / "app-config.yaml"
    app_config.write_text("auth:\n  providers:\n    github: {}\n", encoding="utf-8")
    message = refusal(BITBUCKET_APP_CONFIG=str(app_config))
    assert message.endswith("auth.providers: no 'bitbucket' section")


def test_data_center_keys_without_its_url_are_refused() -> None:
    message = refusal(
        BITBUCKET_CLIENT_ID="cloud-id", BITBUCKET_CLIENT_SECRET="s", BITBUCKET_SERVER_URL=None
    )
    assert message == (
        "BITBUCKET_SERVER_CLIENT_ID is set, but BITBUCKET_SERVER_URL is not: set it to sign in "
        "with Bitbucket Data Center"
    )
