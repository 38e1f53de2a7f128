"""Sign in through real HTTP: the app on a live server, Bitbucket played by the emulator."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, g, request, request_finished

from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.profile import PROVIDER
from bitbucket_signin.testing import SignedInClient

from ..support import (
    JANE,
    JANE_IDENTITY,
    LI,
    MANI,
    OMAR,
    VAL,
    FakeClock,
    clear_faults,
    csrf_token,
    deny_at_emulator,
    edit_catalog,
    emulator_requests,
    grant_at_emulator,
    home_page,
    serve,
    set_fault,
    sign_in,
    start_sign_in,
    token_calls,
)


class TestResolvers:
    def test_user_id_signs_in_and_lands_on_next(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        response = sign_in(http, live_app, bitbucket.url, JANE, next_path="/dash?x=1")
        assert response.status_code == 302
        assert response.headers["Location"] == "/dash?x=1"

        home = home_page(http, live_app)
        assert home.status_code == 200
        assert "Signed in as Jane Doe" in home.text
        assert "user:default/jdoe" in home.text
        assert "group:default/platform" in home.text  # through the user's memberOf
        assert "group:default/payments" in home.text  # through the group's members

    @pytest.mark.parametrize(
        ("resolvers", "account", "entity_ref"),
        [
            ("usernameMatchingUserEntityAnnotation", LI, "user:default/lchen"),
            ("bitbucketUsernameSignInResolver", LI, "user:default/lchen"),
            ("accountIdMatchingUserEntityAnnotation", JANE, "user:default/jdoe"),
            ("emailMatchingUserEntityProfileEmail", JANE, "user:default/jdoe"),
            # The primary address is unconfirmed (and a catalog user has it): never used.
            ("emailMatchingUserEntityProfileEmail", OMAR, "user:default/omar"),
            # The one confirmed address is on the second page and carries a +tag.
            ("emailMatchingUserEntityProfileEmail", MANI, "user:default/mani"),
            (
                [
                    {
                        "resolver": "emailLocalPartMatchingUserEntityName",
                        "allowedDomains": ["example.com"],
                    }
                ],
                OMAR,
                "user:default/omar",
            ),
            (
                "userIdMatchingUserEntityAnnotation,usernameMatchingUserEntityAnnotation",
                LI,
                "user:default/lchen",
            ),
        ],
    )
    def test_each_resolver(
        self,
        make_app: Callable[..., Flask],
        http: requests.Session,
        bitbucket: EmulatorServer,
        resolvers: Any,
        account: str,
        entity_ref: str,
    ) -> None:
        app = make_app(BITBUCKET_SIGNIN_RESOLVERS=resolvers)
        with serve(app) as url:
            assert sign_in(http, url, bitbucket.url, account).status_code == 302
            assert entity_ref in home_page(http, url).text

    def test_allowed_domains_refuses_other_domains(
        self, make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
    ) -> None:
        resolver = {
            "resolver": "emailLocalPartMatchingUserEntityName",
            "allowedDomains": ["x.test"],
        }
        app = make_app(BITBUCKET_SIGNIN_RESOLVERS=[resolver])
        with serve(app) as url:
            response = sign_in(http, url, bitbucket.url, OMAR)
            assert response.status_code == 403
            assert "not from an allowed domain" in response.text

    def test_custom_resolver_callable(
        self, make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
    ) -> None:
        from bitbucket_signin.errors import NotFoundError
        from bitbucket_signin.resolvers import identity_for

        def by_nickname(profile: Any, catalog: Any) -> Any:
            user = catalog.user_by_name("lchen") if profile.nickname == "Li" else None
            if user is None:
                raise NotFoundError("no nickname match")
            return identity_for(catalog, user)

        app = make_app(BITBUCKET_SIGNIN_RESOLVERS=[by_nickname])
        with serve(app) as url:
            assert sign_in(http, url, bitbucket.url, LI).status_code == 302
            assert "user:default/lchen" in home_page(http, url).text


class TestRefusals:
    def test_not_in_catalog_names_account_and_annotation(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        response = sign_in(http, live_app, bitbucket.url, VAL)
        assert response.status_code == 403
        page = html.unescape(response.text)
        assert "Val Visitor" in page
        assert VAL in page
        assert f'bitbucket.org/user-id: "{VAL}"' in page
        assert home_page(http, live_app).status_code == 302

    def test_deny_at_bitbucket(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        authorize_url = start_sign_in(http, live_app)
        page = requests.get(authorize_url, timeout=5)
        assert "Deny" in page.text
        denied = deny_at_emulator(authorize_url)
        assert denied.status_code == 302
        response = http.get(denied.headers["Location"], allow_redirects=False)
        assert response.status_code == 403
        assert "chose not to" in response.text
        assert token_calls(bitbucket) == 0
        assert home_page(http, live_app).status_code == 302

    def test_forged_state(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        start_sign_in(http, live_app)
        response = http.get(
            f"{live_app}/api/auth/bitbucket/handler/frame",
            params={"code": "x", "state": "forged"},
            allow_redirects=False,
        )
        assert response.status_code == 400
        assert "expired or was already used" in response.text
        assert token_calls(bitbucket) == 0

    def test_missing_state(self, http: requests.Session, live_app: str) -> None:
        response = http.get(f"{live_app}/api/auth/bitbucket/handler/frame?code=x")
        assert response.status_code == 400

    def test_replayed_callback(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        authorize_url = start_sign_in(http, live_app)
        callback_url = grant_at_emulator(bitbucket.url, authorize_url, JANE)
        assert http.get(callback_url, allow_redirects=False).status_code == 302
        replay = http.get(callback_url, allow_redirects=False)
        assert replay.status_code == 400
        assert token_calls(bitbucket) == 1
        assert "Jane Doe" in home_page(http, live_app).text

    def test_only_the_newest_unfinished_sign_ins_are_kept(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        authorize_urls = [start_sign_in(http, live_app) for _ in range(5)]
        oldest = grant_at_emulator(bitbucket.url, authorize_urls[0], JANE)
        newest = grant_at_emulator(bitbucket.url, authorize_urls[-1], JANE)
        assert http.get(oldest, allow_redirects=False).status_code == 400
        assert http.get(newest, allow_redirects=False).status_code == 302


class TestLiveCatalog:
    """Jane signed in to the live app; then the catalog file changes under it."""

    @pytest.fixture
    def jane(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> requests.Session:
        assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
        return http

    def test_removal_from_catalog_signs_out(
        self, jane: requests.Session, live_app: str, catalog_file: Path, clock: FakeClock
    ) -> None:
        assert home_page(jane, live_app).status_code == 200
        text = catalog_file.read_text().replace(
            '"768F8C62-7F2A-4914-BF33-3F412FC1D3A4"', '"{00000000-0000-4000-8000-000000000000}"'
        )
        edit_catalog(catalog_file, text, clock)
        assert home_page(jane, live_app).status_code == 302
        restored = text.replace('"{00000000-0000-4000-8000-000000000000}"', f'"{JANE}"')
        edit_catalog(catalog_file, restored, clock)
        assert home_page(jane, live_app).status_code == 302  # signed out for good

    def test_group_edit_applies_at_once(
        self, app: Flask, catalog_file: Path, clock: FakeClock
    ) -> None:
        app.test_client_class = SignedInClient
        client = app.test_client(user="user:default/jdoe")
        assert "group:default/payments" in client.get("/").text
        edit_catalog(
            catalog_file, catalog_file.read_text().replace("[jdoe, omar]", "[omar]"), clock
        )
        page = client.get("/").text
        assert "Signed in as Jane Doe" in page
        assert "group:default/payments" not in page

    def test_broken_edit_keeps_last_good_catalog(
        self,
        app: Flask,
        catalog_file: Path,
        clock: FakeClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        app.test_client_class = SignedInClient
        client = app.test_client(user="jdoe")
        edit_catalog(catalog_file, "kind: User\nmetadata: [this is: not valid\n", clock)
        assert "Signed in as Jane Doe" in client.get("/").text
        assert any("catalog.yaml" in record.getMessage() for record in caplog.records)


class TestBitbucketFailures:
    def test_workspaces_gone_does_not_matter_without_a_workspace_gate(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        set_fault(bitbucket.url, "workspaces", status=410)
        assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
        assert "workspaces" not in {call["endpoint"] for call in emulator_requests(bitbucket)}

    @pytest.mark.parametrize(
        ("endpoint", "fault", "status"),
        [
            ("token", {"status": 500}, 502),
            ("token", {"status": 503}, 503),
            ("token", {"status": 429}, 503),
            (
                "token",
                {"status": 200, "body": '{"access_tok', "content_type": "application/json"},
                502,
            ),
            (
                "token",
                {"status": 200, "body": "<html>oops</html>", "content_type": "text/html"},
                502,
            ),
            ("token", {"hang": True}, 504),
            ("user", {"status": 500}, 502),
            ("user", {"status": 401}, 502),
            ("user", {"status": 429}, 503),
            ("user", {"status": 200, "body": "[1, 2]", "content_type": "application/json"}, 502),
            ("emails", {"status": 503}, 503),
            ("emails", {"hang": True}, 504),
            ("workspaces", {"status": 500}, 502),
        ],
    )
    def test_failure_status(
        self,
        make_app: Callable[..., Flask],
        http: requests.Session,
        bitbucket: EmulatorServer,
        endpoint: str,
        fault: dict[str, Any],
        status: int,
    ) -> None:
        set_fault(bitbucket.url, endpoint, **fault)
        # Both lists asked for, so that every endpoint is called.
        app = make_app(
            BITBUCKET_TIMEOUT=0.5,
            BITBUCKET_FETCH_EMAILS=True,
            BITBUCKET_ALLOWED_WORKSPACES=["acme"],
        )
        with serve(app) as url:
            response = sign_in(http, url, bitbucket.url, JANE)
            assert response.status_code == status
            assert "Try again" in response.text
            assert "Traceback" not in response.text
            assert home_page(http, url).status_code == 302
        clear_faults(bitbucket.url)

    def test_bitbucket_unreachable(
        self, make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
    ) -> None:
        with serve(Flask("closed")) as closed_url:
            pass  # the port is free again: nothing listens there now
        app = make_app(BITBUCKET_TOKEN_URL=f"{closed_url}/site/oauth2/access_token")
        with serve(app) as url:
            response = sign_in(http, url, bitbucket.url, JANE)
            assert response.status_code == 502
            assert "could not be reached" in response.text


class TestSessionEndpoints:
    def test_refresh_answers_backstage_shape(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        sign_in(http, live_app, bitbucket.url, JANE)
        response = http.get(
            f"{live_app}/api/auth/bitbucket/refresh",
            headers={"X-Requested-With": "XMLHttpRequest"},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["profile"]["displayName"] == "Jane Doe"
        assert body["profile"]["email"] == "jane@example.com"
        assert body["profile"]["picture"]
        identity = body["backstageIdentity"]["identity"]
        assert identity == JANE_IDENTITY

    def test_refresh_refuses_without_header_or_session(self, app: Flask) -> None:
        url = "/api/auth/bitbucket/refresh"
        headers = {"X-Requested-With": "XMLHttpRequest"}
        app.test_client_class = SignedInClient
        assert app.test_client().get(url, headers=headers).status_code == 401
        signed_in = app.test_client(user="jdoe")
        assert signed_in.get(url, headers=headers).status_code == 200
        assert signed_in.get(url).status_code == 401

    def test_logout_needs_post_and_csrf(
        self, http: requests.Session, live_app: str, bitbucket: EmulatorServer
    ) -> None:
        sign_in(http, live_app, bitbucket.url, JANE)
        token = csrf_token(home_page(http, live_app).text)
        url = f"{live_app}/api/auth/bitbucket/logout"
        assert http.get(url).status_code == 405
        assert http.post(url, allow_redirects=False).status_code == 400
        assert home_page(http, live_app).status_code == 200
        response = http.post(url, data={"csrf_token": token}, allow_redirects=False)
        assert response.status_code == 303
        assert response.headers["Location"].endswith("/signin")
        assert home_page(http, live_app).status_code == 302


class TestCallbackUrl:
    @pytest.mark.parametrize(
        ("config", "host", "status"),
        [
            ({}, "evil.test", 400),
            ({}, "localhost:5000", 302),
            ({"TRUSTED_HOSTS": ["portal.example.com"]}, "portal.example.com", 302),
            ({"TRUSTED_HOSTS": ["portal.example.com"]}, "evil.test", 400),
            ({"SERVER_NAME": "portal.example.com"}, "portal.example.com", 302),
            ({"SERVER_NAME": "portal.example.com"}, "evil.test", 400),
        ],
    )
    def test_redirect_uri_only_from_trusted_hosts(
        self, make_app: Callable[..., Flask], config: dict[str, Any], host: str, status: int
    ) -> None:
        client = make_app(**config).test_client()
        response = client.get("/api/auth/bitbucket/start", headers={"Host": host})
        assert response.status_code == status
        if status == 302:
            assert (
                f"redirect_uri=http%3A%2F%2F{host.replace(':', '%3A')}%2Fapi"
                in (response.headers["Location"])
            )


def test_the_callback_keeps_no_token_on_flask_g(
    http: requests.Session, app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Authlib keeps the token it fetched on ``flask.g``; the callback drops it there too."""
    kept: list[object] = []

    def look(sender: Flask, **_: Any) -> None:
        if request.endpoint == "bitbucket_signin.callback":
            kept.append(g.get(f"_oauth_token_{PROVIDER}", "never set"))

    request_finished.connect(look, app)
    try:
        response = sign_in(http, live_app, bitbucket.url, JANE)
    finally:
        request_finished.disconnect(look, app)
    assert response.status_code == 302
    assert kept == [None]
