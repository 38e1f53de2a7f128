"""The OAuth 2.0 dance with Bitbucket, through Authlib's Flask client.

Authlib keeps ``state`` and the PKCE verifier in the session (no ``cache=``: with one,
state would not be tied to the browser). This module adds what Bitbucket needs on top:
its token response quirks, and every failure turned into a status for the sign-in page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App

from .client import json_object, upstream_error_for_exception, upstream_error_for_status
from .config import Settings
from .errors import SignInError, UpstreamError
from .profile import PROVIDER
from .transport import BoundedAdapter
from .waiting import Deadline

TOKEN_CALL = "token exchange"  # noqa: S105 - a label for messages, not a secret
STALE_LINK = (
    "This sign-in link has expired or was already used. Please start again from the sign-in page."
)


def stale_link() -> SignInError:
    """The refusal of a callback whose state this browser does not have pending."""
    return SignInError(STALE_LINK, status=400, reason="StaleLink")


class _HideCodeVerifier(logging.Filter):
    """Authlib logs the PKCE verifier at DEBUG; it is a secret until the code is spent."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "code_verifier" not in str(record.msg)


logging.getLogger("authlib.integrations.base_client.sync_app").addFilter(_HideCodeVerifier())


def bitbucket_oauth_app(settings: Settings, user_agent: str) -> Any:
    """Authlib's Flask client for Bitbucket Cloud: HTTP Basic client authentication, PKCE S256.

    Built directly, not through ``OAuth(app).register``: that registry would also read
    ``BITBUCKET_AUTHORIZE_PARAMS``, ``BITBUCKET_ACCESS_TOKEN_PARAMS`` and the like from the
    app's config, past our validated settings, and would take the ``app.extensions`` slot
    of the host app's own Authlib registry.
    """
    return FlaskOAuth2App(
        FlaskIntegration(PROVIDER),
        PROVIDER,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        authorize_url=settings.authorize_url,
        access_token_url=settings.token_url,
        api_base_url=settings.api_base_url + "/",
        user_agent=user_agent,
        client_kwargs={
            "scope": " ".join(requested_scopes(settings)),
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "default_timeout": settings.timeout,
        },
        compliance_fix=partial(_bitbucket_compliance_fix, settings=settings),
    )


def requested_scopes(settings: Settings) -> tuple[str, ...]:
    """The scopes asked of Bitbucket (which grants those of the consumer, whatever is asked)."""
    return tuple(dict.fromkeys(("account", "email", *settings.scopes)))


def exchange_code(oauth_app: Any, deadline: Deadline) -> dict[str, Any]:
    """Check ``state`` and swap the code for a token; every failure is a ``SignInError``.

    Authlib also keeps the token on ``flask.g`` for the rest of the request; it is dropped
    there, so that the caller's copy is the only one."""
    try:
        token: dict[str, Any] = oauth_app.authorize_access_token(
            timeout=deadline.seconds_left(TOKEN_CALL)
        )
    except MismatchingStateError:
        raise stale_link() from None
    except requests.RequestException as error:
        raise upstream_error_for_exception(error, TOKEN_CALL) from None
    except OAuthError as error:
        raise UpstreamError(
            f"Bitbucket refused the sign-in ({TOKEN_CALL}: {error.error or 'error'})."
        ) from None
    except ValueError:
        raise UpstreamError(f"Bitbucket sent a malformed answer ({TOKEN_CALL}).") from None
    oauth_app.token = None
    return token


def _bitbucket_compliance_fix(session: Any, settings: Settings) -> None:
    """Authlib's token session (a ``requests`` session): bounded calls, Bitbucket's answers."""
    mount_bounded_transport(session, settings)
    session.register_compliance_hook(
        "access_token_response", partial(check_token_response, what=TOKEN_CALL)
    )


def mount_bounded_transport(session: requests.Session, settings: Settings) -> None:
    """Every call of ``session`` within ``BITBUCKET_TIMEOUT``, no redirects, a body cap."""
    adapter = BoundedAdapter(timeout=settings.timeout, max_body_bytes=settings.max_response_bytes)
    session.mount("https://", adapter)
    session.mount("http://", adapter)


def check_token_response(
    response: requests.Response,
    what: str,
    *,
    upstream: str = "Bitbucket",
    invalid_grant: Callable[[], SignInError] | None = None,
) -> requests.Response:
    """Turn every failed call of the token endpoint (``what``: the exchange or a refresh)
    into an :class:`UpstreamError` with its status (naming the ``upstream``), or an
    ``invalid_grant`` answer into ``invalid_grant()`` if given."""
    if response.status_code == 429 or response.status_code >= 500:
        raise upstream_error_for_status(response.status_code, what)
    body = json_object(response, what)
    if response.status_code != 200 or "error" in body:
        error = body.get("error")
        if error == "invalid_grant" and invalid_grant is not None:
            raise invalid_grant()
        code = error if isinstance(error, str) else f"HTTP {response.status_code}"
        raise UpstreamError(f"{upstream} refused the sign-in ({what}: {code}).")
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise UpstreamError(f"{upstream} sent no access token ({what}).")
    lifetime = body.get("expires_in")
    if lifetime is not None and not _is_finite_number(lifetime):  # Authlib would fail on it
        raise UpstreamError(f"{upstream} sent a malformed answer ({what}).")
    # Bitbucket's "state" field names the grant type rather than echoing ours: nothing reads it.
    return response


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
