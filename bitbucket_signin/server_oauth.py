"""The OAuth 2.0 dance with Bitbucket Data Center, through Authlib's Flask client.

PKCE S256, the client credentials in the form body (Data Center documents nothing else),
``state`` always, and the identical ``redirect_uri`` on the authorize and token calls.
A code lives about 10 seconds on a default instance: a token answer of ``invalid_grant``
means the sign-in link expired (or was used), and the page says to start again.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App

from .config import ServerSettings, Settings
from .errors import SignInError
from .oauth import TOKEN_CALL, check_token_response, mount_bounded_transport
from .server_profile import PROVIDER

EXPIRED_LINK = (
    "The sign-in link expired: Bitbucket Data Center accepts it for a few seconds only. "
    "Please start again from the sign-in page."
)


def server_oauth_app(settings: Settings, server: ServerSettings, user_agent: str) -> Any:
    """Authlib's Flask client for the Data Center instance (built directly, as for Cloud,
    so that no ``BITBUCKET_SERVER_*`` key reaches Authlib's own configuration)."""
    return FlaskOAuth2App(
        FlaskIntegration(PROVIDER),
        PROVIDER,
        client_id=server.client_id,
        client_secret=server.client_secret,
        authorize_url=server.authorize_url,
        access_token_url=server.token_url,
        user_agent=user_agent,
        client_kwargs={
            "scope": " ".join(server.scopes) or None,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_post",
            "default_timeout": settings.timeout,
        },
        compliance_fix=partial(_data_center_compliance_fix, settings=settings),
    )


def _expired_link() -> SignInError:
    return SignInError(EXPIRED_LINK, status=400)


def _data_center_compliance_fix(session: Any, settings: Settings) -> None:
    """Authlib's token session: bounded calls; an ``invalid_grant`` is an expired link."""
    mount_bounded_transport(session, settings)
    check = partial(
        check_token_response,
        what=TOKEN_CALL,
        upstream="Bitbucket Data Center",
        invalid_grant=_expired_link,
    )
    session.register_compliance_hook("access_token_response", check)
