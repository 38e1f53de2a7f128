"""How long, and how many at once, sign-ins wait on Bitbucket: one :class:`Deadline` per
sign-in for all of its calls, one :class:`SignInLimit` per process.

Framework-neutral: it knows neither Flask nor ``requests``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import UpstreamError


def too_late(what: str) -> UpstreamError:
    """The error to show when ``what`` ran out of time (its own, or the sign-in's)."""
    return UpstreamError(f"Bitbucket did not answer in time ({what}).", status=504)


class Deadline:
    """The moment a sign-in stops waiting for Bitbucket: every call gets only the time left."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def seconds_left(self, what: str) -> float:
        """The time left for the call ``what``; none left is an :class:`UpstreamError` (504)."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise too_late(what)
        return left


class SignInLimit:
    """At most ``size`` sign-ins of this process wait on Bitbucket at once; one more is
    refused at once (503), so a hanging Bitbucket cannot take every worker thread."""

    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            raise UpstreamError(
                "Too many sign-ins are waiting for Bitbucket right now. "
                "Please try again in a minute.",
                status=503,
            )
        try:
            yield
        finally:
            self._slots.release()
