"""Only our validated settings configure the Bitbucket client, and the host app's own Authlib
registry (its providers, its config) stays the host app's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from bitbucket_signin import BitbucketSignIn
from bitbucket_signin.emulator import EmulatorServer

from ..support import (
    JANE,
    emulator_requests,
    grant_at_emulator,
    home_page,
    reset_emulator,
    serve,
    sign_in,
    start_sign_in,
    token_requests,
)

RANDOM_PARAMETERS = {"state", "code_challenge"}
AUTHLIB_REGISTRY = "authlib.integrations.flask_client"  # Authlib's key in app.extensions
# Flask config keys Authlib's registry reads for a client named "bitbucket".
AUTHLIB_KEYS: dict[str, Any] = {
    "BITBUCKET_AUTHORIZE_PARAMS": {"prompt": "none", "scope": "repository:admin"},
    "BITBUCKET_ACCESS_TOKEN_PARAMS": {"injected": "yes"},
    "BITBUCKET_CLIENT_KWARGS": {"token_endpoint_auth_method": "client_secret_post"},
    "BITBUCKET_SERVER_METADATA_URL": "{emulator}/planted/metadata",
    "BITBUCKET_REQUEST_TOKEN_URL": "{emulator}/planted/oauth1",
}


def observed_sign_in(app: Flask, bitbucket: EmulatorServer) -> dict[str, Any]:
    """Sign Jane in over HTTP; what reached Bitbucket: the authorize URL's parameters (but
    the random ones), the token request's fields and every path the emulator served."""
    with serve(app) as live_app, requests.Session() as http:
        authorize_url = start_sign_in(http, live_app)
        callback_url = grant_at_emulator(bitbucket.url, authorize_url, JANE)
        assert http.get(callback_url, allow_redirects=False).status_code == 302
        assert "Signed in as Jane Doe" in home_page(http, live_app).text
    [token] = token_requests(bitbucket)
    authorize = parse_qs(urlsplit(authorize_url).query)
    return {
        "authorize": {
            key: [value.replace(live_app, "{app}") for value in values]
            for key, values in authorize.items()
            if key not in RANDOM_PARAMETERS
        },
        "token_fields": token["form_fields"],
        "client_auth": token["client_auth"],
        "paths": sorted(entry["path"] for entry in emulator_requests(bitbucket)),
    }


@pytest.mark.parametrize("key", AUTHLIB_KEYS)
def test_authlib_config_keys_change_nothing(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer, key: str
) -> None:
    """Each key Authlib would read from Flask's config, set: the authorize and token requests
    the emulator sees are exactly those of an app without it."""
    expected = observed_sign_in(make_app(), bitbucket)
    reset_emulator(bitbucket.url)
    value = AUTHLIB_KEYS[key]
    if isinstance(value, str):
        value = value.format(emulator=bitbucket.url)
    assert observed_sign_in(make_app(**{key: value}), bitbucket) == expected


def test_host_apps_own_authlib_registry_keeps_working(
    app_config: dict[str, Any], bitbucket: EmulatorServer
) -> None:
    """A host app with its own ``OAuth(app)`` and provider, configured from its Flask config
    the Authlib way: after our ``init_app`` its registry is still the app's, its provider
    still signs in, and ours works next to it."""
    app = Flask(__name__)
    app.config.update(
        app_config,
        CORP_CLIENT_ID="corp-client",
        CORP_CLIENT_SECRET="corp-secret",
        CORP_AUTHORIZE_URL="https://sso.corp.test/authorize",
        CORP_ACCESS_TOKEN_URL="https://sso.corp.test/token",
    )
    oauth = OAuth(app)
    oauth.register("corp", client_kwargs={"scope": "openid"})
    BitbucketSignIn(app)

    @app.get("/")
    @login_required  # type: ignore[misc]
    def home() -> str:
        return f"Signed in as {current_user.display_name}"

    @app.get("/login/corp")
    def login_corp() -> ResponseReturnValue:
        registry = current_app.extensions[AUTHLIB_REGISTRY]  # how blueprints reach it
        redirect_uri = url_for("corp_callback", _external=True)
        return registry.create_client("corp").authorize_redirect(redirect_uri)

    @app.get("/login/corp/callback")
    def corp_callback() -> str:
        return "corp"

    assert app.extensions[AUTHLIB_REGISTRY] is oauth
    with serve(app) as live_app, requests.Session() as http:
        response = http.get(f"{live_app}/login/corp", allow_redirects=False)
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert (location.netloc, location.path) == ("sso.corp.test", "/authorize")
        assert parse_qs(location.query)["client_id"] == ["corp-client"]
        assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
        assert "Signed in as Jane Doe" in home_page(http, live_app).text
