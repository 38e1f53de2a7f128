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
from .oauth import bounded_token_session, check_token_response
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
        compliance_fix=partial(
            bounded_token_session,
            settings=settings,
            check_response=partial(
                check_token_response,
                upstream="Bitbucket Data Center",
                invalid_grant=_expired_link,
            ),
        ),
    )


def _expired_link() -> SignInError:
    return SignInError(EXPIRED_LINK, status=400)
