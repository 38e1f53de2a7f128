"""The portal's own tests: its pages for a signed-in person, and one whole sign-in."""

from __future__ import annotations

import threading
from typing import Any

import requests
from flask import Flask
from portal import create_app
from werkzeug.serving import make_server

from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.testing import emulator_settings, sign_in


def test_the_home_page_greets_a_catalog_user(app: Flask) -> None:
    client = app.test_client(user="user:default/jdoe")
    page = client.get("/")
    assert "Hello Jane Doe" in page.text
    assert "Signed in with Bitbucket." in page.text


def test_the_home_page_needs_a_sign_in(app: Flask) -> None:
    assert app.test_client().get("/").headers["Location"].startswith("/login")


def test_a_whole_sign_in_through_the_emulator(
    bitbucket_emulator: EmulatorServer, settings: dict[str, Any]
) -> None:
    app = create_app({**settings, **emulator_settings(bitbucket_emulator.url)})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with requests.Session() as browser:
            answer = sign_in(browser, url, bitbucket_emulator.url, "5c65cab48bcc9e016aeece31")
            assert answer.headers["Location"] == "/"
            assert "Hello Jane Doe" in browser.get(f"{url}/").text
    finally:
        server.shutdown()
