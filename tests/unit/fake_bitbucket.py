"""A stand-in for Bitbucket on a loopback port for the unit tests: each test says how each path
answers, and reads which requests came (path, query, headers, form)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from ..support import serve

Handler = Callable[[], ResponseReturnValue]


@dataclass
class Seen:
    """One request the stand-in received."""

    host: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeBitbucket:
    """``handlers`` by path (``/2.0/user``, ``/token``); any other path is a 404."""

    url: str = ""
    handlers: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, path: str, body: Any = None, status: int = 200, **headers: str) -> None:
        """Answer ``path`` with ``body`` (JSON, or a ``str`` as it is) and ``status``."""

        def handler() -> ResponseReturnValue:
            response = (
                Response(body, status=status) if isinstance(body, str) else _json(body, status)
            )
            response.headers.update(headers)
            return response

        self.handlers[path] = handler

    def hold(self, path: str) -> None:
        """Answer ``path`` only once :attr:`release` is set (at the latest when the test ends)."""

        def handler() -> ResponseReturnValue:
            self.release.wait(30)
            return _json({}, 200)

        self.handlers[path] = handler

    def paths(self) -> list[str]:
        return [entry.path for entry in self.seen]


def _json(body: Any, status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


@contextmanager
def fake_bitbucket() -> Iterator[FakeBitbucket]:
    fake = FakeBitbucket()
    app = Flask("fake_bitbucket")

    @app.route("/<path:path>", methods=["GET", "POST"])
    def any_path(path: str) -> ResponseReturnValue:
        fake.seen.append(
            Seen(
                host=request.host,
                path=f"/{path}",
                args=dict(request.args),
                headers=dict(request.headers),
                form=dict(request.form),
            )
        )
        handler = fake.handlers.get(f"/{path}")
        return handler() if handler else _json({"error": "not here"}, 404)

    with serve(app) as url:
        fake.url = url
        try:
            yield fake
        finally:
            fake.release.set()
