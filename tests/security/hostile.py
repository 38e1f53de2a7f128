"""A small hostile upstream for the tests: it drips, hangs, redirects or floods its answers.

It plays one Bitbucket endpoint (or a few, by path) on a free loopback port, counts what it
was asked and what it sent, and stops by itself at the end of its ``with hostile(…)`` block
(a held answer is released first).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[["Upstream", BaseHTTPRequestHandler], None]
CHUNK = 64 * 1024
JSON = {"Content-Type": "application/json"}


class Upstream:
    """A threaded HTTP server whose answer to each request is written by ``answer``.

    ``requests`` lists ``"METHOD /path"`` of every request; ``bytes_sent`` counts what the
    answers wrote; ``answers_finished`` counts answers written to their end; ``release``
    lets held answers go on (see :func:`held`).
    """

    def __init__(self, answer: Answer) -> None:
        self.requests: list[str] = []
        self.bytes_sent = 0
        self.answers_finished = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._busy = threading.Condition(self._lock)
        self._answering = 0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except OSError:  # the client hung up: stop answering it
                    self.close_connection = True

            def do_GET(self) -> None:
                upstream._answer(self, answer)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream._answer(self, answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # many callbacks connect at once

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def send(self, handler: BaseHTTPRequestHandler, data: bytes) -> None:
        """Write ``data`` to the client and count it; raises ``OSError`` once it hung up."""
        handler.wfile.write(data)
        with self._lock:
            self.bytes_sent += len(data)

    def answering(self) -> int:
        """How many requests are being answered (or held) right now."""
        with self._lock:
            return self._answering

    def wait_until_idle(self, seconds: float) -> bool:
        """Whether every answer has ended (finished or cut off) within ``seconds``."""
        with self._busy:
            return self._busy.wait_for(lambda: self._answering == 0, timeout=seconds)

    def _answer(self, handler: BaseHTTPRequestHandler, answer: Answer) -> None:
        with self._lock:
            self.requests.append(f"{handler.command} {handler.path}")
            self._answering += 1
        try:
            answer(self, handler)
            with self._lock:
                self.answers_finished += 1
        finally:
            handler.close_connection = True
            with self._busy:
                self._answering -= 1
                self._busy.notify_all()

    def stop(self) -> None:
        """Release held answers, stop serving and close the port."""
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def hostile(answer: Answer) -> Iterator[Upstream]:
    """An :class:`Upstream` answering with ``answer`` until the block ends."""
    upstream = Upstream(answer)
    try:
        yield upstream
    finally:
        upstream.stop()


def http_answer(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 answer as bytes, with its ``Content-Length``."""
    return _head(status, len(body), headers) + body


def _head(status: int, length: int, headers: Mapping[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever", f"Content-Length: {length}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def json_body(data: Any, *, padded_to: int = 0) -> bytes:
    """``data`` as JSON, padded with spaces to ``padded_to`` bytes (a long answer)."""
    text = json.dumps(data).encode()
    return text + b" " * max(0, padded_to - len(text))


def whole(answer: bytes) -> Answer:
    """Send ``answer`` at once."""

    def write(upstream: Upstream, handler: BaseHTTPRequestHandler) -> None:
        upstream.send(handler, answer)

    return write


def drip(answer: bytes, *, after: int = 0, interval: float = 0.05) -> Answer:
    """Send the first ``after`` bytes at once, then one byte every ``interval`` seconds."""

    def write(upstream: Upstream, handler: BaseHTTPRequestHandler) -> None:
        upstream.send(handler, answer[:after])
        for index in range(after, len(answer)):
            if upstream.release.wait(interval):  # the test is over
                raise ConnectionAbortedError("released")
            upstream.send(handler, answer[index : index + 1])

    return write


def held(then: Answer) -> Answer:
    """Hold the request (send nothing) until the test sets ``release``, then ``then``."""

    def write(upstream: Upstream, handler: BaseHTTPRequestHandler) -> None:
        upstream.release.wait()
        then(upstream, handler)

    return write


def flood(total: int, start: bytes, item: bytes) -> Answer:
    """A 200 answer of ``total`` bytes announced up front: ``start`` then ``item`` repeated,
    made as it is sent, so that nothing of that size is ever held in memory."""

    def write(upstream: Upstream, handler: BaseHTTPRequestHandler) -> None:
        upstream.send(handler, _head(200, total, JSON))
        block = (item * (CHUNK // len(item) + 1))[:CHUNK]
        upstream.send(handler, start)
        sent = len(start)
        while sent < total:
            piece = block[: total - sent]
            upstream.send(handler, piece)
            sent += len(piece)

    return write


def by_path(answers: Mapping[str, Answer]) -> Answer:
    """Answer each path (without its query) with its own answer; anything else is a 404."""

    def write(upstream: Upstream, handler: BaseHTTPRequestHandler) -> None:
        answer = answers.get(handler.path.partition("?")[0])
        if answer is None:
            upstream.send(handler, http_answer(404, b""))
        else:
            answer(upstream, handler)

    return write
