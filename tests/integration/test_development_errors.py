"""Mistakes made while setting up, over real HTTP against the emulator: each is named for what
it is, rather than showing up later as something else."""

from __future__ import annotations

import html
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer, load_accounts
from bitbucket_signin.emulator.__main__ import EXAMPLE_ACCOUNTS, build_parser

from ..support import CLIENT_ID, JANE, serve, sign_in

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def test_a_browser_on_another_loopback_host_than_the_callback_is_told_so(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    """``localhost`` in the browser while the callback URL says ``127.0.0.1``: the session
    cookie of one is not sent to the other, so the sign-in would come back "expired"."""
    apps: dict[str, WSGIApp] = {}

    def later(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        yield from apps["app"](environ, start_response)

    with serve(later) as url:
        port = urlsplit(url).port
        callback = f"http://127.0.0.1:{port}/api/auth/bitbucket/handler/frame"
        apps["app"] = make_app(BITBUCKET_CALLBACK_URL=callback).wsgi_app
        start = f"http://localhost:{port}/api/auth/bitbucket/start"
        page = http.get(start, allow_redirects=False, timeout=10)
        assert page.status_code == 400
        text = html.unescape(page.text)
        assert f"This page is open at localhost:{port}, but Bitbucket sends the sign-in " in text
        assert f"back to 127.0.0.1:{port} (BITBUCKET_CALLBACK_URL)" in text
        assert f"Open http://127.0.0.1:{port}/ instead" in text
        assert "expired" not in text
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302  # on the callback's host


def test_a_callback_derived_from_the_request_fits_any_loopback_host(
    app: Flask, http: requests.Session
) -> None:
    with serve(app) as url:
        port = urlsplit(url).port
        start = f"http://localhost:{port}/api/auth/bitbucket/start"
        response = http.get(start, allow_redirects=False, timeout=10)
        assert response.status_code == 302
        assert f"localhost%3A{port}" in response.headers["Location"]


def test_the_emulator_names_both_redirect_uris_it_compared(bitbucket: EmulatorServer) -> None:
    received = "http://localhost:7007/api/auth/bitbucket/handler/frame"
    page = requests.get(
        f"{bitbucket.url}/site/oauth2/authorize",
        params={"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": received},
        timeout=10,
    )
    assert page.status_code == 400
    text = html.unescape(page.text)
    assert f'The redirect_uri "{received}" does not begin with' in text
    assert 'the consumer\'s callback URL "http://127.0.0.1"' in text


def test_the_emulator_ships_an_example_and_its_help_shows_the_format() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bitbucket_signin.emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (
        "accounts file (YAML or JSON; default: the example shipped in the package" in result.stdout
    )
    for field in ("consumers:", "callback_url:", "accounts:", "account_id:", "emails:"):
        assert field in result.stdout
    assert build_parser().parse_args([]).accounts == str(EXAMPLE_ACCOUNTS)
    assert str(EXAMPLE_ACCOUNTS) in " ".join(result.stdout.split())


def test_the_example_consumer_takes_a_flask_run_app_on_127_0_0_1_port_5000() -> None:
    config = load_accounts(EXAMPLE_ACCOUNTS)
    assert [account.display_name for account in config.accounts] == ["Jane Doe", "Val Visitor"]
    with EmulatorServer(config) as emulator:
        params = {"client_id": "my-app", "response_type": "code"}
        for redirect_uri, status in [
            ("http://127.0.0.1:5000/api/auth/bitbucket/handler/frame", 200),
            ("http://localhost:5000/api/auth/bitbucket/handler/frame", 400),
            ("http://127.0.0.1:5001/api/auth/bitbucket/handler/frame", 400),
        ]:
            page = requests.get(
                f"{emulator.url}/site/oauth2/authorize",
                params={**params, "redirect_uri": redirect_uri},
                timeout=10,
            )
            assert page.status_code == status, redirect_uri
