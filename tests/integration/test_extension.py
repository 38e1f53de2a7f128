"""The extension's options end to end: session lifetime, workspaces, signals, CLI, quirks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from flask import Flask

from bitbucket_signin import signals
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.testing import SignedInClient

from ..support import JANE, LI, VAL, FakeClock, grant_at_emulator, serve, sign_in


def signed_in_page(http: requests.Session, url: str) -> requests.Response:
    return http.get(f"{url}/", allow_redirects=False, timeout=10)


def test_legacy_scopes_field_and_no_workspace_permission(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    app = make_app(
        BITBUCKET_CLIENT_ID="legacy-client-id", BITBUCKET_CLIENT_SECRET="legacy-client-secret"
    )
    with serve(app) as url:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
        assert "Signed in as Jane Doe" in signed_in_page(http, url).text


def test_session_duration_ends_the_sign_in(
    make_app: Callable[..., Flask], clock: FakeClock
) -> None:
    app = make_app(BITBUCKET_SESSION_DURATION="1s", BITBUCKET_CLOCK=clock)
    app.test_client_class = SignedInClient
    client = app.test_client(user="user:default/jdoe")
    clock.advance(1)
    assert client.get("/").status_code == 200
    clock.advance(0.01)
    assert client.get("/").status_code == 302


def test_allowed_workspaces(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    with serve(make_app(BITBUCKET_ALLOWED_WORKSPACES="acme")) as url:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
        http.cookies.clear()
        li = sign_in(http, url, bitbucket.url, LI, next_path="/")  # in the catalog, in no workspace
        assert li.status_code == 403
        assert "only for members of the Bitbucket workspaces: acme" in li.text


def test_allowed_workspaces_refuse_when_bitbucket_will_not_say(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    app = make_app(
        BITBUCKET_ALLOWED_WORKSPACES=["acme"],
        BITBUCKET_CLIENT_ID="legacy-client-id",
        BITBUCKET_CLIENT_SECRET="legacy-client-secret",
    )
    with serve(app) as url:
        response = sign_in(http, url, bitbucket.url, JANE)
        assert response.status_code == 403
        assert "did not say which workspaces" in response.text


def test_sign_in_without_catalog_user_when_dangerously_allowed(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    resolver = {
        "resolver": "userIdMatchingUserEntityAnnotation",
        "dangerouslyAllowSignInWithoutUserInCatalog": True,
    }
    with serve(make_app(BITBUCKET_SIGNIN_RESOLVERS=[resolver])) as url:
        assert sign_in(http, url, bitbucket.url, VAL).status_code == 302
        page = signed_in_page(http, url).text
        assert "user:default/0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a" in page
        assert "Val Visitor" in page


def test_signals(app: Flask, http: requests.Session, bitbucket: EmulatorServer) -> None:
    received: list[tuple[str, Any]] = []

    def record(name: str) -> Callable[..., None]:
        def receiver(sender: Flask, **extra: Any) -> None:
            assert sender is app
            received.append((name, extra))

        return receiver

    receivers = {name: record(name) for name in ("signed_in", "signed_out", "sign_in_failed")}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, app)
    with serve(app) as url:
        sign_in(http, url, bitbucket.url, VAL)
        sign_in(http, url, bitbucket.url, JANE)
        token = signed_in_page(http, url).text.split('name="csrf_token" value="')[1].split('"')[0]
        http.post(f"{url}/api/auth/bitbucket/logout", data={"csrf_token": token})
    assert [name for name, _ in received] == ["sign_in_failed", "signed_in", "signed_out"]
    assert received[0][1]["error"].status == 403
    assert received[1][1]["user"].user_entity_ref == "user:default/jdoe"


def test_route_prefixes_are_configurable(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    app = make_app(BITBUCKET_URL_PREFIX="/auth/bb", BITBUCKET_SIGNIN_URL="/login")
    with serve(app) as url:
        protected = http.get(f"{url}/", allow_redirects=False)
        assert protected.headers["Location"].startswith("/login?next=")
        assert "Sign in with Bitbucket" in http.get(f"{url}/login").text
        start = http.get(f"{url}/auth/bb/start", allow_redirects=False)
        assert "%2Fauth%2Fbb%2Fhandler%2Fframe" in start.headers["Location"]
        callback = grant_at_emulator(bitbucket.url, start.headers["Location"], JANE)
        assert http.get(callback, allow_redirects=False).status_code == 302
        assert "Signed in as Jane Doe" in signed_in_page(http, url).text
