"""``current_user.bitbucket``: Bitbucket's API as the signed-in person, through Authlib.

A ``requests`` session (Authlib's OAuth 2.0 client for ``requests``) holding the person's
kept access token, for whichever provider signed the person in (its :class:`PersonApi`):
paths are relative to that provider's API base (``BITBUCKET_API_BASE_URL`` for Bitbucket
Cloud, ``get("repositories/acme")``; ``{BITBUCKET_SERVER_API_URL}/rest/api/latest/`` for
Data Center, ``get("projects")``); an absolute URL is taken only on the API's own origin (the
``next`` links of Bitbucket's lists), so the token never travels anywhere else. Every call
goes through the bounded transport (a deadline for the whole call, no redirects, a body
cap). Before each call the token is made fresh by the token store: refreshed shortly before
it expires, once across every worker and host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session

from .client import upstream_error_for_exception
from .config import Settings
from .errors import SignInEndedError
from .oauth import check_token_response, mount_bounded_transport
from .redirects import origin
from .tokens import REFRESH_CALL, KeptToken, TokenStore


@dataclass(frozen=True)
class PersonApi:
    """A provider's API as its signed-in people: where their kept tokens are refreshed
    (``token_url``, with the client's credentials sent as ``auth_method`` says) and the base
    URL of the calls made with them. ``upstream`` names the provider in messages; Data Center
    wants a refresh to send the sign-in's redirect_uri again."""

    client_id: str | None
    client_secret: str | None = field(repr=False)
    token_url: str
    auth_method: str
    api_base_url: str
    upstream: str
    refresh_sends_redirect_uri: bool = False


class PersonClient(OAuth2Session):  # type: ignore[misc]
    """Calls to Bitbucket's API as one person (the session ``sid`` of ``person``).

    Answers are ``requests`` responses, whatever their status; a failed call raises
    ``requests``' exceptions. A refresh that Bitbucket refuses raises
    :class:`SignInEndedError` (the session then ends: a 401), one that fails otherwise an
    ``UpstreamError`` (a 502, 503 or 504).
    """

    def __init__(
        self,
        settings: Settings,
        api: PersonApi,
        store: TokenStore,
        person: str,
        sid: str,
        user_agent: str,
    ) -> None:
        super().__init__(
            client_id=api.client_id,
            client_secret=api.client_secret,
            token_endpoint_auth_method=api.auth_method,
            token_endpoint=api.token_url,
        )
        self.api_base_url = api.api_base_url
        self._sends_redirect_uri = api.refresh_sends_redirect_uri
        self._store, self._person, self._sid = store, person, sid
        mount_bounded_transport(self, settings)
        self.headers["User-Agent"] = user_agent
        # A refresh token no longer accepted (used, expired, or the person took the app's
        # access back) ends the sign-in; any other failure is an ``UpstreamError``.
        check = partial(
            check_token_response,
            what=REFRESH_CALL,
            upstream=api.upstream,
            invalid_grant=SignInEndedError,
        )
        self.register_compliance_hook("refresh_token_response", check)
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
                    f"give a path relative to {self.api_base_url}"
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

    def _refresh(self, kept: KeptToken) -> dict[str, Any]:
        """Spend the kept refresh token at the provider's token endpoint for new tokens."""
        extra = {"redirect_uri": kept.redirect_uri} if self._sends_redirect_uri else {}
        try:
            answer = self.refresh_token(
                self.metadata["token_endpoint"], refresh_token=kept.refresh_token, **extra
            )
        except requests.RequestException as error:
            raise upstream_error_for_exception(error, REFRESH_CALL) from None
        return dict(answer)
