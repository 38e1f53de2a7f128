"""Helpers for signing in with Bitbucket Data Center over real HTTP: an app served on a free
port whose callback is registered as an application link at the emulator (Data Center
matches the redirect URL exactly), and the steps of a sign-in."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import requests
from flask import Flask
from werkzeug.serving import make_server

from bitbucket_signin.emulator import EmulatorServer, ServerConsumer, datacenter_state

DC_CLIENT_ID = "dc-client-id"
DC_CLIENT_SECRET = "dc-client-secret"
DC_PREFIX = "/api/auth/bitbucketServer"
INSTANCE = "Acme Bitbucket"


class Site(NamedTuple):
    """An app served over real HTTP, and its URL."""

    url: str
    app: Flask


class LateApp:
    """A WSGI app that serves the app set later (503 until then): the port comes first."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"not yet"]
        return self.app(environ, start_response)


@contextmanager
def served_later() -> Iterator[tuple[str, LateApp]]:
    """A free loopback port and the :class:`LateApp` it serves; yields its URL and the app."""
    late = LateApp()
    server = make_server("127.0.0.1", 0, late, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", late
    finally:
        server.shutdown()
        thread.join(timeout=5)


def register_link(emulator: EmulatorServer, app_url: str) -> str:
    """Register the app's callback as the test link's one redirect URL; returns it."""
    callback = f"{app_url}{DC_PREFIX}/handler/frame"
    datacenter_state(emulator.app).add_link(
        ServerConsumer(DC_CLIENT_ID, DC_CLIENT_SECRET, callback, "Test Portal")
    )
    return callback


def server_config(emulator: EmulatorServer) -> dict[str, Any]:
    """The Data Center settings for the emulator's instance: browsers see it at
    ``localhost`` (the catalog's annotations say ``localhost/user-id``), the server calls it
    at 127.0.0.1."""
    assert emulator.datacenter_url is not None
    path = urlsplit(emulator.datacenter_url).path
    return {
        "BITBUCKET_SERVER_URL": f"http://localhost:{emulator.port}{path}",
        "BITBUCKET_SERVER_API_URL": emulator.datacenter_url,
        "BITBUCKET_SERVER_CLIENT_ID": DC_CLIENT_ID,
        "BITBUCKET_SERVER_CLIENT_SECRET": DC_CLIENT_SECRET,
        "BITBUCKET_SERVER_NAME": INSTANCE,
    }


def start_dc_sign_in(http: requests.Session, app_url: str, next_path: str = "/") -> str:
    """Press the Data Center button; returns the authorize URL the app sent the browser to."""
    response = http.get(
        f"{app_url}{DC_PREFIX}/start", params={"next": next_path}, allow_redirects=False
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def grant_dc(emulator: EmulatorServer, authorize_url: str, who: str) -> str:
    """Allow as ``who`` on the instance's consent page; returns the callback URL."""
    response = requests.get(
        f"{emulator.url}/_emulator/datacenter/authorize-as/{quote(who)}?{urlsplit(authorize_url).query}",
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def dc_sign_in(
    http: requests.Session, app_url: str, emulator: EmulatorServer, who: str, next_path: str = "/"
) -> requests.Response:
    """The whole Data Center sign-in over real HTTP; returns the app's answer to the callback."""
    callback = grant_dc(emulator, start_dc_sign_in(http, app_url, next_path), who)
    return http.get(callback, allow_redirects=False, timeout=30)
