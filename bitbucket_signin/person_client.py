"""``current_user.bitbucket``: Bitbucket's API as the signed-in person, through Authlib.

A ``requests`` session (Authlib's OAuth 2.0 client for ``requests``) holding the person's
kept access token. Paths are relative to ``BITBUCKET_API_BASE_URL``
(``get("repositories/acme")``); an absolute URL is taken only on the API's own origin (the
``next`` links of Bitbucket's lists), so the token never travels anywhere else. Every call
goes through the bounded transport (a deadline for the whole call, no redirects, a body
cap). Before each call the token is made fresh by the token store: refreshed shortly before
it expires, once across every worker and host.
"""

from __future__ import annotations

from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session

from .client import upstream_error_for_exception
from .config import Settings
from .errors import SignInEndedError
from .oauth import check_token_response, mount_bounded_transport
from .redirects import origin
from .tokens import REFRESH_CALL, KeptToken, TokenStore


class PersonClient(OAuth2Session):  # type: ignore[misc]
    """Calls to Bitbucket's API as one person (the session ``sid`` of ``person``).

    Answers are ``requests`` responses, whatever their status; a failed call raises
    ``requests``' exceptions. A refresh that Bitbucket refuses raises
    :class:`SignInEndedError` (the session then ends: a 401), one that fails otherwise an
    ``UpstreamError`` (a 502, 503 or 504).
    """

    def __init__(
        self, settings: Settings, store: TokenStore, person: str, sid: str, user_agent: str
    ) -> None:
        super().__init__(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method's name
            token_endpoint=settings.token_url,
        )
        self.api_base_url = settings.api_base_url
        self._store, self._person, self._sid = store, person, sid
        mount_bounded_transport(self, settings)
        self.headers["User-Agent"] = user_agent
        self.register_compliance_hook("refresh_token_response", _check_refresh_response)
        self._kept = self._fresh_token()

    def request(
        self,
        method: str,
        url: str,
        withhold_token: bool = False,
        auth: Any = None,
        **kwargs: Any,
    ) -> requests.Response:
        if not withhold_token and auth is None:  # the person's token goes with this call
            url = self.api_url(url)
        response: requests.Response = super().request(
            method, url, withhold_token=withhold_token, auth=auth, **kwargs
        )
        return response

    def api_url(self, path_or_url: str) -> str:
        """``path_or_url`` under the API base URL; an absolute URL only on the API's origin."""
        if "://" in path_or_url or path_or_url.startswith("//"):
            if origin(path_or_url) != origin(self.api_base_url):
                raise ValueError(
                    "current_user.bitbucket sends the person's token to Bitbucket's API only: "
                    "give a path relative to BITBUCKET_API_BASE_URL"
                )
            return path_or_url
        return f"{self.api_base_url}/{path_or_url.lstrip('/')}"

    def current_token(self) -> KeptToken:
        """The person's token as the next call would send it (refreshed first when due)."""
        self.ensure_active_token()
        return self._kept

    def ensure_active_token(self, token: Any = None) -> bool:
        """Authlib's hook before each call: the kept token, refreshed once when due."""
        if not self._kept.is_fresh(self._store.clock()):
            self._kept = self._fresh_token()
        return True

    def _fresh_token(self) -> KeptToken:
        kept = self._store.current(self._person, self._sid, self._refresh)
        self.token = kept.as_authlib_token()
        return kept

    def _refresh(self, refresh_token: str) -> dict[str, Any]:
        """Spend ``refresh_token`` at Bitbucket's token endpoint for new tokens."""
        try:
            answer = self.refresh_token(
                self.metadata["token_endpoint"], refresh_token=refresh_token
            )
        except requests.RequestException as error:
            raise upstream_error_for_exception(error, REFRESH_CALL) from None
        return dict(answer)


def _check_refresh_response(response: requests.Response) -> requests.Response:
    """A refresh token that Bitbucket no longer accepts (used, expired, or the person took
    the app's access back) ends the sign-in; any other failure is an ``UpstreamError``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error") == "invalid_grant":
        raise SignInEndedError()
    return check_token_response(response, REFRESH_CALL)
