"""A small Bitbucket Cloud API client: who the token belongs to, and upstream failures as statuses.

Framework-neutral: it knows ``requests``, not Flask.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .errors import SignInError
from .profile import BitbucketProfile, profile_from_api
from .redirects import origin

logger = logging.getLogger(__name__)

MAX_PAGES = 20
POOL_SIZE = 32
PAGE_LENGTH = 100
TOLERATED_WORKSPACE_STATUSES = frozenset({403, 404, 410})


class UpstreamError(SignInError):
    """Bitbucket failed, refused or timed out; the status is 502, 503 or 504."""

    status = 502

    def __init__(
        self, message: str, *, status: int | None = None, upstream_status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.upstream_status = upstream_status


def upstream_error_for_status(status: int, what: str) -> UpstreamError:
    """The error to show when Bitbucket answered ``status`` to ``what``."""
    if status == 429:
        message, shown = "Bitbucket is limiting requests right now", 503
        advice = " Please try again in a few minutes."
    elif status == 503:
        message, shown = "Bitbucket is temporarily unavailable", 503
        advice = " Please try again shortly."
    elif status == 401:
        message, shown, advice = "Bitbucket did not accept the sign-in", 502, ""
    else:
        message, shown, advice = "Bitbucket answered with an error", 502, ""
    return UpstreamError(
        f"{message} ({what}: HTTP {status}).{advice}", status=shown, upstream_status=status
    )


def upstream_error_for_exception(error: requests.RequestException, what: str) -> UpstreamError:
    """The error to show when a request to Bitbucket did not complete."""
    if isinstance(error, requests.Timeout):
        return UpstreamError(f"Bitbucket did not answer in time ({what}).", status=504)
    if isinstance(error, requests.ConnectionError):
        return UpstreamError(f"Bitbucket could not be reached ({what}).", status=502)
    return UpstreamError(f"The request to Bitbucket failed ({what}).", status=502)


def json_object(response: requests.Response, what: str) -> dict[str, Any]:
    """The response's JSON object; anything else is an :class:`UpstreamError`."""
    try:
        data = response.json()
    except ValueError:
        raise UpstreamError(f"Bitbucket sent a malformed answer ({what}).") from None
    if not isinstance(data, dict):
        raise UpstreamError(f"Bitbucket sent an answer of the wrong shape ({what}).")
    return data


class BitbucketClient:
    """Fetches a profile with three concurrent calls over pooled keep-alive connections."""

    def __init__(self, api_base_url: str, *, timeout: float, user_agent: str) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self.user_agent = user_agent
        self._origin = origin(self.api_base_url)
        self._lock = threading.Lock()
        self._session_of_pid: tuple[int, requests.Session] | None = None

    def fetch_profile(self, access_token: str) -> BitbucketProfile:
        """Ask Bitbucket who ``access_token`` belongs to; raises :class:`UpstreamError`."""
        session, pool = self._session(), _thread_pool()
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        emails = pool.submit(
            self._get_all_pages, session, "/user/emails", headers, "user emails", frozenset({403})
        )
        workspaces = pool.submit(
            self._get_all_pages,
            session,
            "/user/workspaces",
            headers,
            "user workspaces",
            TOLERATED_WORKSPACE_STATUSES,
        )
        try:
            user = self._get_json(session, "/user", headers, "user")
            email_values, workspace_values = emails.result(), workspaces.result()
        finally:
            emails.cancel()
            workspaces.cancel()
        try:
            return profile_from_api(user, email_values or [], workspace_values)
        except (ValueError, TypeError, AttributeError) as error:
            raise UpstreamError(f"Bitbucket sent an unexpected profile ({error}).") from None

    def _session(self) -> requests.Session:
        """This process's keep-alive connections (sockets do not survive a fork)."""
        with self._lock:
            if self._session_of_pid is None or self._session_of_pid[0] != os.getpid():
                session = requests.Session()
                adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers["User-Agent"] = self.user_agent
                self._session_of_pid = (os.getpid(), session)
            return self._session_of_pid[1]

    def _get_json(
        self,
        session: requests.Session,
        path_or_url: str,
        headers: Mapping[str, str],
        what: str,
    ) -> dict[str, Any]:
        url = path_or_url if "://" in path_or_url else self.api_base_url + path_or_url
        try:
            response = session.get(url, headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise upstream_error_for_exception(error, what) from None
        if response.status_code != 200:
            raise upstream_error_for_status(response.status_code, what)
        return json_object(response, what)

    def _get_all_pages(
        self,
        session: requests.Session,
        path: str,
        headers: Mapping[str, str],
        what: str,
        tolerated: frozenset[int],
    ) -> list[dict[str, Any]] | None:
        """Every value of a paginated list, or ``None`` when Bitbucket will not say."""
        try:
            return list(self._pages(session, path, headers, what))
        except UpstreamError as error:
            if error.upstream_status in tolerated:
                logger.info("Bitbucket would not list %s (HTTP %s)", what, error.upstream_status)
                return None
            raise

    def _pages(
        self, session: requests.Session, path: str, headers: Mapping[str, str], what: str
    ) -> Iterator[dict[str, Any]]:
        url: str | None = f"{self.api_base_url}{path}?pagelen={PAGE_LENGTH}"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page = self._get_json(session, url, headers, what)
            values = page.get("values")
            if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
                raise UpstreamError(f"Bitbucket sent an answer of the wrong shape ({what}).")
            yield from values
            url = self._next_page(page.get("next"), what)
        raise UpstreamError(f"Bitbucket listed more than {MAX_PAGES} pages ({what}).")

    def _next_page(self, next_url: Any, what: str) -> str | None:
        if next_url is None:
            return None
        # The bearer token follows the link: only ever to Bitbucket's own API origin.
        if not isinstance(next_url, str) or origin(next_url) != self._origin:
            raise UpstreamError(f"Bitbucket sent a next-page link elsewhere ({what}).")
        return next_url


_pool_lock = threading.Lock()
_pool_of_pid: tuple[int, ThreadPoolExecutor] | None = None


def _thread_pool() -> ThreadPoolExecutor:
    """One pool per process, shared by every client (threads do not survive a fork)."""
    global _pool_of_pid
    with _pool_lock:
        if _pool_of_pid is None or _pool_of_pid[0] != os.getpid():
            pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="bitbucket-signin")
            _pool_of_pid = (os.getpid(), pool)
        return _pool_of_pid[1]
