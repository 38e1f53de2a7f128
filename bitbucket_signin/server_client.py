"""Who a Bitbucket Data Center token belongs to: whoami, then ``users?filter`` (an exact
match on ``name``), then ``users/{slug}``.

Framework-neutral: it knows ``requests``, not Flask. Every call goes through a
:class:`~bitbucket_signin.transport.BoundedAdapter` and within the sign-in's deadline; every
failure is an :class:`~bitbucket_signin.client.UpstreamError` (502, 503 or 504), and an
account that may not sign in (inactive, a service account) a 403.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import requests

from .client import (
    json_object,
    upstream_error_for_exception,
    upstream_error_for_status,
)
from .errors import SignInError, UpstreamError, one_line_text
from .server_profile import (
    ServerProfile,
    entry_named,
    server_profile_from_api,
    sign_in_refusal,
    whoami_name,
)
from .transport import ProcessSessions
from .waiting import Deadline

logger = logging.getLogger(__name__)

WHOAMI_PATH = "/plugins/servlet/applinks/whoami"
REST_PATH = "/rest/api/latest"
USERS_PATH = REST_PATH + "/users"
PAGE_LIMIT = 100
MAX_PAGES = 20
AVATAR_SIZE = 64
POOL_SIZE = 32


class DataCenterClient:
    """Finds the account behind an access token on one Data Center instance.

    ``api_url`` is where this server reaches the instance; ``browser_url`` is the instance as
    browsers see it (relative avatar URLs are resolved against it).
    """

    def __init__(
        self,
        api_url: str,
        browser_url: str,
        *,
        timeout: float,
        max_body_bytes: int,
        user_agent: str,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.browser_url = browser_url.rstrip("/")
        self._sessions = ProcessSessions(
            timeout=timeout,
            max_body_bytes=max_body_bytes,
            user_agent=user_agent,
            pool_size=POOL_SIZE,
        )

    def fetch_profile(self, access_token: str, deadline: Deadline) -> ServerProfile:
        """The signed-in account; raises :class:`UpstreamError`, or a 403
        :class:`SignInError` for an inactive or service account."""
        headers = {"Authorization": f"Bearer {access_token}"}
        name = self._whoami(headers, deadline)
        entry = self._find_listed(name, headers, deadline)
        _refuse_if_not_allowed(entry)
        slug = entry.get("slug")
        if not isinstance(slug, str) or not slug:
            raise UpstreamError("Bitbucket Data Center listed the account without a slug.")
        path = f"{USERS_PATH}/{quote(slug, safe='')}?avatarSize={AVATAR_SIZE}"
        user = json_object(self._get(path, headers, "user profile", deadline), "user profile")
        if user.get("id") != entry.get("id") or user.get("name") != name:
            raise UpstreamError("Bitbucket Data Center sent another account's profile.")
        _refuse_if_not_allowed(user)
        try:
            return server_profile_from_api(user, self.browser_url)
        except ValueError as error:
            raise UpstreamError(
                f"Bitbucket Data Center sent an unexpected profile ({error})."
            ) from None

    def _whoami(self, headers: Mapping[str, str], deadline: Deadline) -> str:
        response = self._get(WHOAMI_PATH, headers, "whoami", deadline)
        if response.headers.get("Content-Type", "").partition(";")[0].strip() != "text/plain":
            raise UpstreamError("Bitbucket Data Center sent a malformed answer (whoami).")
        try:
            name = whoami_name(response.text)
        except ValueError:
            raise UpstreamError("Bitbucket Data Center sent a malformed answer (whoami).") from None
        if name is None:
            raise UpstreamError(
                "Bitbucket Data Center did not accept the sign-in (whoami: nobody signed in)."
            )
        return name

    def _find_listed(
        self, name: str, headers: Mapping[str, str], deadline: Deadline
    ) -> Mapping[str, Any]:
        """The entry of ``users?filter=name`` whose name is exactly ``name``, page by page."""
        what = "user search"
        start = 0
        for _ in range(MAX_PAGES):
            query = f"filter={quote(name, safe='')}&start={start}&limit={PAGE_LIMIT}"
            page = json_object(self._get(f"{USERS_PATH}?{query}", headers, what, deadline), what)
            values = page.get("values")
            if not isinstance(values, list):
                raise UpstreamError(
                    f"Bitbucket Data Center sent an answer of the wrong shape ({what})."
                )
            try:
                entry = entry_named(values, name)
            except ValueError as error:
                raise UpstreamError(
                    f"Bitbucket Data Center sent a wrong listing ({error})."
                ) from None
            if entry is not None:
                return entry
            next_start = page.get("nextPageStart")
            if (
                page.get("isLastPage") is not False
                or not isinstance(next_start, int)
                or next_start <= start
            ):
                break
            start = next_start
        raise UpstreamError(
            "Bitbucket Data Center did not list the signed-in account (user search).", status=502
        )

    def _get(
        self, path: str, headers: Mapping[str, str], what: str, deadline: Deadline
    ) -> requests.Response:
        timeout = deadline.seconds_left(what)
        try:
            response = self._sessions.get().get(
                self.api_url + path, headers=headers, timeout=timeout
            )
        except requests.RequestException as error:
            raise upstream_error_for_exception(error, what) from None
        if response.status_code != 200:
            logger.warning(
                "Bitbucket Data Center answered %s to %s: %s",
                response.status_code,
                what,
                rest_error_message(response),
            )
            raise upstream_error_for_status(response.status_code, what)
        return response


def _refuse_if_not_allowed(user: Mapping[str, Any]) -> None:
    """A 403 for an inactive or service account."""
    refusal = sign_in_refusal(user)
    if refusal is not None:
        message, reason = refusal
        raise SignInError(message, status=403, reason=reason)


def rest_error_message(response: requests.Response) -> str:
    """The message of Data Center's error body ``{"errors": [{"message": …}]}``, as one line
    of printable text (for the log: the text is the upstream's, never shown on a page)."""
    try:
        body = response.json()
    except ValueError:
        return "(no error body)"
    errors = body.get("errors") if isinstance(body, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, str):
        return "(no error message)"
    return one_line_text(message)
