"""Kept tokens for a Bitbucket Data Center sign-in (``BITBUCKET_KEEP_TOKENS``): a real Redis,
the emulator's Data Center over HTTP, two instances of the app, and the app's clock moved by
the test. Its refresh tokens rotate as Cloud's do, so the same one-refresh-per-expiry rule
holds, and every refresh sends the sign-in's redirect_uri again, as Data Center wants."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import requests
from flask import Flask, jsonify
from flask_login import current_user, login_required

from bitbucket_signin.emulator import EmulatorServer, datacenter_state
from bitbucket_signin.emulator.datacenter import TOKEN_LIFETIME
from bitbucket_signin.redis_sessions import SESSION_PREFIX, TOKENS_PREFIX
from bitbucket_signin.standalone import create_app
from bitbucket_signin.tokens import REFRESH_MARGIN_SECONDS

from ..datacenter import DC_CLIENT_ID, DC_PREFIX, Site, dc_sign_in, served_later, server_config
from ..support import FakeClock, emulator_requests, is_signed_in

CONCURRENT = 20
JANE_DC = "jane@example.com"  # slug jane_example.com, id 102


def add_dc_page(app: Flask) -> None:
    """A page that calls Data Center's REST API as the signed-in person."""

    @app.get("/dc/me")
    @login_required  # type: ignore[untyped-decorator]
    def me() -> Any:
        answer = current_user.bitbucket.get("users/jane_example.com")
        return jsonify(status=answer.status_code, user=answer.json())


def dc_token_calls(bitbucket: EmulatorServer) -> list[dict[str, Any]]:
    return [e for e in emulator_requests(bitbucket) if e["endpoint"] == "dc-token"]


def refreshes(bitbucket: EmulatorServer) -> list[dict[str, Any]]:
    return [e for e in dc_token_calls(bitbucket) if e["grant_type"] == "refresh_token"]


@pytest.fixture
def kept(redis_url: str, store: redis.Redis) -> dict[str, Any]:
    """Sessions in Redis (emptied) and tokens kept."""
    return {"BITBUCKET_SESSION_REDIS_URL": redis_url, "BITBUCKET_KEEP_TOKENS": True}


@pytest.fixture
def site(make_site: Callable[..., Site], kept: dict[str, Any]) -> Site:
    """Both providers, tokens kept, the page; the application link's redirect URL is its
    callback."""
    site = make_site(**kept)
    add_dc_page(site.app)
    return site


@pytest.fixture
def second_host(
    site: Site,
    kept: dict[str, Any],
    app_config: dict[str, Any],
    bitbucket: EmulatorServer,
    clock: FakeClock,
) -> Iterator[str]:
    """Another instance of the same site (same Redis, same settings) on a port of its own;
    the application link still names the first one's callback."""
    with served_later() as (url, late):
        app = create_app(
            {**app_config, **server_config(bitbucket), "BITBUCKET_CLOCK": clock, **kept}
        )
        add_dc_page(app)
        late.app = app
        yield url


def test_a_data_center_sign_in_keeps_its_tokens_beside_the_session_only(
    site: Site,
    bitbucket: EmulatorServer,
    http: requests.Session,
    store: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = dc_sign_in(http, site.url, bitbucket, JANE_DC)
    assert answer.status_code == 302
    me = http.get(f"{site.url}/dc/me", timeout=10)
    assert me.status_code == 200
    assert me.json()["status"] == 200
    assert me.json()["user"]["slug"] == "jane_example.com"
    # The call went to Data Center's REST base with the person's token.
    (api_call,) = [e for e in emulator_requests(bitbucket) if e["endpoint"] == "dc-user"][-1:]
    assert api_call["path"] == "/bitbucket/rest/api/latest/users/jane_example.com"

    sid = http.cookies["session"]
    (key,) = list(store.scan_iter(TOKENS_PREFIX + "*"))
    kept = store.get(key) or b""
    grants = list(datacenter_state(bitbucket.app).by_refresh.values())
    assert len(grants) == 1
    secrets = (grants[0].access_token, grants[0].refresh_token)
    assert all(secret.encode() in kept for secret in secrets)
    elsewhere = [
        store.get(SESSION_PREFIX + sid) or b"",
        str(http.cookies.get_dict()).encode(),
        answer.text.encode(),
        me.content,
        caplog.text.encode(),
    ]
    assert not [s for s in secrets for place in elsewhere if s.encode() in place]


def test_twenty_requests_past_expiry_on_two_instances_make_one_refresh_at_data_center(
    site: Site,
    second_host: str,
    bitbucket: EmulatorServer,
    http: requests.Session,
    clock: FakeClock,
) -> None:
    assert dc_sign_in(http, site.url, bitbucket, JANE_DC).status_code == 302
    clock.advance(TOKEN_LIFETIME - REFRESH_MARGIN_SECONDS + 1)
    start = threading.Barrier(CONCURRENT)
    cookies = http.cookies.get_dict()

    def get(n: int) -> requests.Response:
        start.wait(10)
        host = (site.url, second_host)[n % 2]
        return requests.get(f"{host}/dc/me", cookies=cookies, timeout=30)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(get, range(CONCURRENT)))

    assert [a.status_code for a in answers] == [200] * CONCURRENT
    assert {a.json()["status"] for a in answers} == {200}
    (refresh,) = refreshes(bitbucket)
    assert refresh["status"] == 200
    assert refresh["client_auth"] == "body"
    assert refresh["form_fields"] == [
        "client_id",
        "client_secret",
        "grant_type",
        "redirect_uri",
        "refresh_token",
    ]
    # Whichever instance refreshed, it sent the sign-in's redirect_uri (the first's callback).
    assert refresh["redirect_uri"] == f"{site.url}{DC_PREFIX}/handler/frame"
    # The rotated tokens serve the next expiry too: one more refresh, not another sign-in.
    clock.advance(TOKEN_LIFETIME)
    assert http.get(f"{site.url}/dc/me", timeout=10).json()["status"] == 200
    assert [e["status"] for e in refreshes(bitbucket)] == [200, 200]


@pytest.mark.parametrize("how", ["revoked", "used"])
def test_a_refused_refresh_token_signs_the_person_out(
    how: str,
    site: Site,
    bitbucket: EmulatorServer,
    http: requests.Session,
    clock: FakeClock,
    store: redis.Redis,
) -> None:
    assert dc_sign_in(http, site.url, bitbucket, JANE_DC).status_code == 302
    state = datacenter_state(bitbucket.app)
    (grant,) = state.by_refresh.values()
    if how == "revoked":  # the person took the application link's access back
        with state.lock:
            del state.by_refresh[grant.refresh_token]
    else:  # spent elsewhere: Data Center rotates it, so ours is dead
        link = state.link(DC_CLIENT_ID)
        assert link is not None
        state.refresh(
            link, {"refresh_token": grant.refresh_token, "redirect_uri": link.redirect_url}
        )
    clock.advance(TOKEN_LIFETIME)

    answer = http.get(f"{site.url}/dc/me", timeout=10)
    assert answer.status_code == 401
    assert "Please sign in again" in answer.text
    assert grant.refresh_token not in answer.text
    assert not list(store.scan_iter(TOKENS_PREFIX + "*"))
    assert not is_signed_in(http, site.url)
    refusals = [e for e in refreshes(bitbucket) if e["status"] == 400]
    assert len(refusals) == 1


def test_the_refresh_route_of_data_center_makes_the_token_fresh(
    site: Site, bitbucket: EmulatorServer, http: requests.Session, clock: FakeClock
) -> None:
    assert dc_sign_in(http, site.url, bitbucket, JANE_DC).status_code == 302
    clock.advance(TOKEN_LIFETIME)
    mine = http.get(
        f"{site.url}{DC_PREFIX}/refresh", headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert mine.status_code == 200
    assert "accessToken" not in mine.text
    assert [e["status"] for e in refreshes(bitbucket)] == [200]
