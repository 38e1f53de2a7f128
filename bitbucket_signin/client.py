"""A small Bitbucket Cloud API client: who the token belongs to, and upstream failures as statuses.

Framework-neutral: it knows ``requests``, not Flask.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any

import requests

from .errors import UpstreamError
from .profile import BitbucketProfile, profile_from_api
from .redirects import origin
from .transport import BodyTooLargeError, ProcessSessions, RedirectRefusedError
from .waiting import Deadline, too_late

logger = logging.getLogger(__name__)

MAX_PAGES = 20
POOL_SIZE = 32
PAGE_LENGTH = 100
TOLERATED_WORKSPACE_STATUSES = frozenset({403, 404, 410})


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
        return too_late(what)
    if isinstance(error, RedirectRefusedError):
        return UpstreamError(f"Bitbucket answered with a redirect, which is not followed ({what}).")
    if isinstance(error, BodyTooLargeError):
        return UpstreamError(f"Bitbucket sent a larger answer than this site accepts ({what}).")
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


@dataclass(frozen=True)
class _Listing:
    """A paginated list of the profile, and the statuses that mean "Bitbucket will not say"."""

    path: str
    what: str
    tolerated: frozenset[int]


EMAILS = _Listing("/user/emails", "user emails", frozenset({403}))
WORKSPACES = _Listing("/user/workspaces", "user workspaces", TOLERATED_WORKSPACE_STATUSES)


class BitbucketClient:
    """Fetches a profile: ``/user``, and concurrently only the lists the configuration needs
    (``emails``, ``workspaces``); a list not asked for is unknown (``None``) in the profile.

    Every call goes through a :class:`BoundedAdapter`: at most ``timeout`` seconds for the
    whole call, no redirects, at most ``max_body_bytes`` of answer.
    """

    def __init__(
        self,
        api_base_url: str,
        *,
        timeout: float,
        max_body_bytes: int,
        user_agent: str,
        emails: bool,
        workspaces: bool,
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.user_agent = user_agent
        self._sessions = ProcessSessions(
            timeout=timeout,
            max_body_bytes=max_body_bytes,
            user_agent=user_agent,
            pool_size=POOL_SIZE,
        )
        self.listings = tuple(
            listing for listing, wanted in ((EMAILS, emails), (WORKSPACES, workspaces)) if wanted
        )
        self._origin = origin(self.api_base_url)

    def fetch_profile(self, access_token: str, deadline: Deadline) -> BitbucketProfile:
        """Ask Bitbucket who ``access_token`` belongs to; raises :class:`UpstreamError`."""
        session, pool = self._sessions.get(), _thread_pool()
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        pending = {
            listing: pool.submit(self._get_all_pages, session, listing, headers, deadline)
            for listing in self.listings
        }
        try:
            user = self._get_json(session, "/user", headers, "user", deadline)
            lists = {
                listing: _result(future, listing.what, deadline)
                for listing, future in pending.items()
            }
        finally:
            for future in pending.values():
                future.cancel()
        try:
            return profile_from_api(user, lists.get(EMAILS) or [], lists.get(WORKSPACES))
        except (ValueError, TypeError, AttributeError) as error:
            raise UpstreamError(f"Bitbucket sent an unexpected profile ({error}).") from None

    def _get_json(
        self,
        session: requests.Session,
        path_or_url: str,
        headers: Mapping[str, str],
        what: str,
        deadline: Deadline,
    ) -> dict[str, Any]:
        url = path_or_url if "://" in path_or_url else self.api_base_url + path_or_url
        timeout = deadline.seconds_left(what)
        try:
            response = session.get(url, headers=headers, timeout=timeout)
        except requests.RequestException as error:
            raise upstream_error_for_exception(error, what) from None
        if response.status_code != 200:
            raise upstream_error_for_status(response.status_code, what)
        return json_object(response, what)

    def _get_all_pages(
        self,
        session: requests.Session,
        listing: _Listing,
        headers: Mapping[str, str],
        deadline: Deadline,
    ) -> list[dict[str, Any]] | None:
        """Every value of a paginated list, or ``None`` when Bitbucket will not say."""
        try:
            return list(self._pages(session, listing, headers, deadline))
        except UpstreamError as error:
            if error.upstream_status in listing.tolerated:
                logger.info(
                    "Bitbucket would not list %s (HTTP %s)", listing.what, error.upstream_status
                )
                return None
            raise

    def _pages(
        self,
        session: requests.Session,
        listing: _Listing,
        headers: Mapping[str, str],
        deadline: Deadline,
    ) -> Iterator[dict[str, Any]]:
        what = listing.what
        url: str | None = f"{self.api_base_url}{listing.path}?pagelen={PAGE_LENGTH}"
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page = self._get_json(session, url, headers, what, deadline)
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


def _result(
    future: Future[list[dict[str, Any]] | None], what: str, deadline: Deadline
) -> list[dict[str, Any]] | None:
    """A list fetched on the pool, waited for no longer than the deadline."""
    try:
        return future.result(timeout=deadline.seconds_left(what))
    except FutureTimeoutError:
        raise too_late(what) from None


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
