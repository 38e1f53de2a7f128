"""How every call to Bitbucket travels: one deadline for the whole call, no redirects, a body cap.

``requests`` and urllib3 bound each socket operation, not a call: an upstream that sends one
byte at a time never trips a read timeout. Here every read of a response (status line,
headers and body) gets only the time left until the call's deadline, so the whole call ends
in time. A redirect is refused rather than followed (a token or code must never be replayed
to another origin), and a body is read into memory only up to the cap.

Framework-neutral: it knows ``requests`` and urllib3, not Flask.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

_call = threading.local()  # the deadline of the call this thread is making
_call_observers: list[Callable[[str, float], None]] = []


def observe_calls(observer: Callable[[str, float], None]) -> None:
    """Have ``observer(path, seconds)`` called after every call to Bitbucket, in this process
    (for metrics); adding the same observer again changes nothing."""
    if observer not in _call_observers:
        _call_observers.append(observer)


class RedirectRefusedError(requests.RequestException):
    """The upstream answered with a redirect (3xx), which is never followed."""


class BodyTooLargeError(requests.RequestException):
    """The upstream's answer is longer than the cap."""


class _DeadlineReader(io.RawIOBase):
    """A socket's reader that gives each receive only the time left until ``deadline``."""

    def __init__(self, raw: Any, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call's deadline has passed")
        self._sock.settimeout(left)
        count: int | None = self._raw.readinto(buffer)
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """``http.client``'s response, reading through a :class:`_DeadlineReader` when the
    thread making the call has a deadline."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        deadline: float | None = getattr(_call, "deadline", None)
        if deadline is not None:
            raw = self.fp.detach()  # the socket's own reader, holding its reference
            self.fp = io.BufferedReader(_DeadlineReader(raw, sock, deadline))


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


class BoundedAdapter(HTTPAdapter):
    """A ``requests`` transport adapter for calls to Bitbucket.

    ``timeout`` (seconds) bounds each whole call: connecting, the headers and the entire
    body; a caller's own ``timeout=`` (a number) can only shorten it. A 3xx answer raises
    :class:`RedirectRefusedError`; a body longer than ``max_body_bytes`` raises
    :class:`BodyTooLargeError` after reading at most one byte more than the cap. Answers
    come back fully read (as with ``stream=False``).
    """

    def __init__(self, *, timeout: float, max_body_bytes: int, **kwargs: Any) -> None:
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        seconds = self.timeout if timeout is None else min(float(timeout), self.timeout)
        started = time.monotonic()
        _call.deadline = started + seconds
        try:
            response = super().send(
                request, stream=True, timeout=seconds, verify=verify, cert=cert, proxies=proxies
            )
            if 300 <= response.status_code < 400:
                response.close()
                raise RedirectRefusedError(
                    f"HTTP {response.status_code} redirect not followed", request=request
                )
            response._content = self._read_body(response)
        finally:
            _call.deadline = None
            for observer in _call_observers:
                observer(urlsplit(request.url or "").path, time.monotonic() - started)
        return response

    def _read_body(self, response: requests.Response) -> bytes:
        """The whole body, or an error once it exceeds the cap (the rest is never read)."""
        body = bytearray()
        try:
            while len(body) <= self.max_body_bytes:
                chunk = response.raw.read(self.max_body_bytes + 1 - len(body), decode_content=True)
                if not chunk:
                    return bytes(body)
                body += chunk
        except ReadTimeoutError as error:
            response.close()
            raise requests.ReadTimeout(error, request=response.request) from None
        except Urllib3Error as error:
            response.close()
            raise requests.ConnectionError(error, request=response.request) from None
        response.close()  # closes the connection: nothing more is read from it
        raise BodyTooLargeError(
            f"answer longer than {self.max_body_bytes} bytes", request=response.request
        )


class ProcessSessions:
    """A ``requests`` session per process, every call through a :class:`BoundedAdapter`
    (keep-alive sockets do not survive a fork)."""

    def __init__(
        self, *, timeout: float, max_body_bytes: int, user_agent: str, pool_size: int
    ) -> None:
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.user_agent = user_agent
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._session_of_pid: tuple[int, requests.Session] | None = None

    def get(self) -> requests.Session:
        """This process's session."""
        with self._lock:
            if self._session_of_pid is None or self._session_of_pid[0] != os.getpid():
                session = requests.Session()
                adapter = BoundedAdapter(
                    timeout=self.timeout,
                    max_body_bytes=self.max_body_bytes,
                    pool_connections=4,
                    pool_maxsize=self.pool_size,
                )
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers["User-Agent"] = self.user_agent
                self._session_of_pid = (os.getpid(), session)
            return self._session_of_pid[1]
