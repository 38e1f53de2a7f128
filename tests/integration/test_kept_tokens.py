"""Bitbucket as the signed-in person: kept tokens (``BITBUCKET_KEEP_TOKENS``), a real Redis,
the emulator over HTTP, and the app's clock moved by the test instead of waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from bitbucket_signin import get_extension
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.errors import ConfigError
from bitbucket_signin.redis_sessions import SESSION_PREFIX, TOKENS_PREFIX, tokens_key
from bitbucket_signin.tokens import (
    LOCK_POLL_SECONDS,
    LOCK_PREFIX,
    LOCK_SPARE_SECONDS,
    REFRESH_MARGIN_SECONDS,
)

from ..frontend_support import FRONTEND, frontend_sign_in, popup_messages, refresh
from ..support import (
    JANE,
    LI,
    MANI,
    FakeClock,
    add_bitbucket_pages,
    clear_faults,
    csrf_token,
    is_signed_in,
    serve,
    set_fault,
    sign_in,
    signed_in_browser,
    token_requests,
)

XHR = {"X-Requested-With": "XMLHttpRequest"}
LIFETIME = 7200  # the emulator's access tokens, as Bitbucket's


@pytest.fixture
def kept(kept_app: Flask) -> Iterator[str]:
    with serve(kept_app) as url:
        yield url


def refreshes(bitbucket: EmulatorServer) -> int:
    return sum(entry["grant_type"] == "refresh_token" for entry in token_requests(bitbucket))


def token_keys(store: redis.Redis) -> list[bytes]:
    return list(store.scan_iter(TOKENS_PREFIX + "*"))


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"BITBUCKET_KEEP_TOKENS": True},
            "BITBUCKET_KEEP_TOKENS needs BITBUCKET_SESSION_REDIS_URL: "
            "Bitbucket tokens are kept server-side in Redis, never in a cookie",
        ),
        (
            {"BITBUCKET_EXPOSE_ACCESS_TOKEN": "true"},
            "BITBUCKET_EXPOSE_ACCESS_TOKEN needs BITBUCKET_KEEP_TOKENS: no token is kept to expose",
        ),
        (
            {"BITBUCKET_KEEP_TOKENS": "ture"},
            "BITBUCKET_KEEP_TOKENS: expected true or false, got 'ture'",
        ),
    ],
)
def test_tokens_are_kept_only_in_redis_or_start_up_stops(
    make_app: Callable[..., Flask], settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        make_app(**settings)
    assert str(refused.value) == message
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("store_kind", ["cookie", "redis"])
def test_without_kept_tokens_current_user_bitbucket_names_the_setting(
    store_kind: str, make_app: Callable[..., Flask], redis_url: str, bitbucket: EmulatorServer
) -> None:
    extra = {"BITBUCKET_SESSION_REDIS_URL": redis_url} if store_kind == "redis" else {}
    app = make_app(**extra)
    add_bitbucket_pages(app)
    with serve(app) as url:
        answer = signed_in_browser(url, bitbucket, JANE).get(f"{url}/bitbucket/not-kept")
    assert answer.status_code == 200
    assert "current_user.bitbucket needs BITBUCKET_KEEP_TOKENS = true" in answer.text
    assert not [e for e in token_requests(bitbucket) if e["grant_type"] == "refresh_token"]


# --- the client ---------------------------------------------------------------------------


def test_current_user_bitbucket_calls_the_api_as_the_person(
    kept: str, bitbucket: EmulatorServer
) -> None:
    jane, li = signed_in_browser(kept, bitbucket, JANE), signed_in_browser(kept, bitbucket, LI)
    assert jane.get(f"{kept}/bitbucket/me").json()["user"]["display_name"] == "Jane Doe"
    assert li.get(f"{kept}/bitbucket/me").json()["user"]["display_name"] == "Li Chen"
    api_calls = [e for e in bitbucket.state.requests("user") if e["status"] == 200]
    assert api_calls
    assert all(e["bearer"] and not e["query_fields"] for e in api_calls)


def test_next_links_on_the_api_origin_are_followed_and_other_origins_refused(
    kept: str, bitbucket: EmulatorServer
) -> None:
    mani = signed_in_browser(kept, bitbucket, MANI)
    addresses = mani.get(f"{kept}/bitbucket/emails").json()
    assert len(addresses) == 12  # eleven unconfirmed on the first page, one on the second
    refused = mani.get(f"{kept}/bitbucket/elsewhere").text
    assert "sends the person's token to Bitbucket's API only" in refused


def test_tokens_live_beside_the_session_never_in_it_or_the_cookie(
    kept: str, bitbucket: EmulatorServer, store: redis.Redis
) -> None:
    browser = signed_in_browser(kept, bitbucket, JANE)
    sid = browser.cookies["session"]
    (key,) = token_keys(store)
    assert key.decode() == tokens_key(JANE, sid)
    kept_value = store.get(key) or b""
    issued = [*bitbucket.state.access_tokens, *bitbucket.state.refresh_tokens]
    assert len(issued) == 2
    assert all(token.encode() in kept_value for token in issued)
    session_value = store.get(SESSION_PREFIX + sid) or b""
    assert b"Jane Doe" in session_value
    assert not any(token.encode() in session_value or token in sid for token in issued)
    assert 0 < store.ttl(key) <= store.ttl(SESSION_PREFIX + sid)


def test_sign_out_and_a_new_sign_in_forget_the_tokens(
    kept: str, bitbucket: EmulatorServer, store: redis.Redis
) -> None:
    browser = signed_in_browser(kept, bitbucket, JANE)
    first = token_keys(store)
    assert sign_in(browser, kept, bitbucket.url, JANE).status_code == 302  # again, same browser
    second = token_keys(store)
    assert len(second) == 1
    assert second != first
    home = browser.get(f"{kept}/")
    browser.post(f"{kept}/api/auth/bitbucket/logout", data={"csrf_token": csrf_token(home.text)})
    assert token_keys(store) == []


def test_sign_out_everywhere_forgets_every_sessions_tokens_and_no_one_elses(
    kept: str, bitbucket: EmulatorServer, store: redis.Redis
) -> None:
    laptop, phone = (
        signed_in_browser(kept, bitbucket, JANE),
        signed_in_browser(kept, bitbucket, JANE),
    )
    colleague = signed_in_browser(kept, bitbucket, LI)
    assert len(token_keys(store)) == 3
    page = laptop.get(f"{kept}/").text
    laptop.post(
        f"{kept}/api/auth/bitbucket/logout/everywhere", data={"csrf_token": csrf_token(page)}
    )
    (left,) = token_keys(store)
    assert left.decode() == tokens_key(LI, colleague.cookies["session"])
    assert phone.get(f"{kept}/bitbucket/me", allow_redirects=False).status_code == 302
    assert colleague.get(f"{kept}/bitbucket/me").json()["user"]["display_name"] == "Li Chen"


def test_tokens_expire_with_an_idle_session(
    kept_app: Flask, kept: str, bitbucket: EmulatorServer, store: redis.Redis, clock: FakeClock
) -> None:
    browser = signed_in_browser(kept, bitbucket, JANE)
    (key,) = token_keys(store)
    store.expire(key, 5)
    clock.advance(61)  # the next request renews the session's last-seen stamp, and its expiry
    assert is_signed_in(browser, kept)
    assert store.ttl(key) > 5
    assert store.ttl(key) == pytest.approx(store.ttl(SESSION_PREFIX + browser.cookies["session"]))
    assert get_extension(kept_app).sign_out_everywhere(JANE) == 1
    assert token_keys(store) == []


# --- refreshing ---------------------------------------------------------------------------


def test_a_token_is_refreshed_shortly_before_it_expires_once_and_rotated(
    kept: str, bitbucket: EmulatorServer, store: redis.Redis, clock: FakeClock
) -> None:
    browser = signed_in_browser(kept, bitbucket, JANE)
    first_refresh_token = next(iter(bitbucket.state.refresh_tokens))
    clock.advance(LIFETIME - REFRESH_MARGIN_SECONDS - 1)
    assert browser.get(f"{kept}/bitbucket/me").json()["status"] == 200
    assert refreshes(bitbucket) == 0

    clock.advance(2)  # within the margin: refreshed before the call
    for _ in range(3):
        assert browser.get(f"{kept}/bitbucket/me").json()["status"] == 200
    assert refreshes(bitbucket) == 1
    (key,) = token_keys(store)
    kept_value = store.get(key) or b""
    assert first_refresh_token.encode() not in kept_value  # rotated: the new one is kept
    assert next(iter(bitbucket.state.refresh_tokens)).encode() in kept_value

    clock.advance(LIFETIME)  # long past the new token's expiry: refreshed again, once
    assert browser.get(f"{kept}/bitbucket/me").json()["status"] == 200
    assert refreshes(bitbucket) == 2


@pytest.mark.parametrize("how", ["revoked at Bitbucket", "spent elsewhere"])
@pytest.mark.parametrize("caller", ["page", "script"])
def test_a_refused_refresh_token_signs_the_person_out_cleanly(
    how: str,
    caller: str,
    kept: str,
    bitbucket: EmulatorServer,
    store: redis.Redis,
    clock: FakeClock,
) -> None:
    browser = signed_in_browser(kept, bitbucket, JANE)
    if how == "revoked at Bitbucket":
        requests.post(f"{bitbucket.url}/_emulator/revoke/{JANE}", timeout=5).raise_for_status()
    else:  # the refresh token used once already: rotation made it worthless
        refresh_token = next(iter(bitbucket.state.refresh_tokens))
        spent = requests.post(
            f"{bitbucket.url}/site/oauth2/access_token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=("test-client-id", "test-client-secret"),
            timeout=5,
        )
        assert spent.status_code == 200
    clock.advance(LIFETIME)

    headers = XHR if caller == "script" else {}
    answer = browser.get(f"{kept}/bitbucket/me", headers=headers, allow_redirects=False)

    assert answer.status_code == 401
    if caller == "script":
        assert answer.json()["error"]["name"] == "AuthenticationError"
        assert "Please sign in again" in answer.json()["error"]["message"]
    else:
        assert "Bitbucket no longer accepts your sign-in here" in answer.text
        assert "Sign in with Bitbucket" in answer.text
    assert not is_signed_in(browser, kept)
    assert token_keys(store) == []
    assert store.keys(SESSION_PREFIX + "*") == []
    refused = token_requests(bitbucket)[-1]
    assert (refused["grant_type"], refused["status"]) == ("refresh_token", 400)


def test_bitbucket_failing_a_refresh_is_a_503_page_and_the_person_stays_signed_in(
    kept: str, bitbucket: EmulatorServer, clock: FakeClock
) -> None:
    browser = signed_in_browser(kept, bitbucket, JANE)
    clock.advance(LIFETIME)
    set_fault(bitbucket.url, "token", status=503)
    page = browser.get(f"{kept}/bitbucket/me", allow_redirects=False)
    script = browser.get(f"{kept}/bitbucket/me", headers=XHR, allow_redirects=False)
    assert page.status_code == script.status_code == 503
    assert "Bitbucket is temporarily unavailable (token refresh: HTTP 503)" in page.text
    assert script.json()["response"] == {"statusCode": 503}  # Backstage's error shape
    assert "token refresh: HTTP 503" in script.json()["error"]["message"]
    assert is_signed_in(browser, kept)
    clear_faults(bitbucket.url)
    assert browser.get(f"{kept}/bitbucket/me").json()["user"]["display_name"] == "Jane Doe"
    assert refreshes(bitbucket) == 3  # two refused by the fault, then the one that worked


def test_a_wait_for_anothers_refresh_is_bounded_a_504_and_the_person_stays_signed_in(
    make_kept_app: Callable[..., Flask],
    bitbucket: EmulatorServer,
    store: redis.Redis,
    clock: FakeClock,
) -> None:
    """Another worker holds the refresh lock and never lets go (it died mid-refresh): a request
    waits no longer than the lock can live (BITBUCKET_TIMEOUT and five seconds), then 504."""
    app = make_kept_app(BITBUCKET_TIMEOUT=0.5)
    with serve(app) as url:
        browser = signed_in_browser(url, bitbucket, JANE)
        (key,) = token_keys(store)
        clock.advance(LIFETIME)
        assert store.set(LOCK_PREFIX + key.decode(), "another worker", ex=60)
        started = time.monotonic()
        answer = browser.get(f"{url}/bitbucket/me", headers=XHR, allow_redirects=False)
        waited = time.monotonic() - started
        assert answer.status_code == 504
        assert "token refresh" in answer.json()["error"]["message"]
        bound = 0.5 + LOCK_SPARE_SECONDS  # redis-py gives up one poll early at most
        assert bound - 2 * LOCK_POLL_SECONDS <= waited < bound + 3
        assert refreshes(bitbucket) == 0
        store.delete(LOCK_PREFIX + key.decode())
        assert browser.get(f"{url}/bitbucket/me").json()["user"]["display_name"] == "Jane Doe"
        assert refreshes(bitbucket) == 1


@pytest.mark.parametrize(
    "body",
    [
        '{"access_token": "a", "refresh_token": "r", "token_type": "bearer"}',
        '{"access_token": "a", "refresh_token": "r", "expires_in": "7200"}',
        '{"access_token": "a", "refresh_token": "r", "expires_in": -1}',
        '{"access_token": "a", "refresh_token": "r", "expires_in": Infinity}',
        '{"access_token": ["a"], "refresh_token": "r", "expires_in": 7200}',
        '{"refresh_token": "r", "expires_in": 7200}',
        "[]",
        "<html>maintenance</html>",
    ],
)
def test_a_malformed_refresh_answer_is_a_502_page_never_a_500(
    body: str, kept: str, bitbucket: EmulatorServer, clock: FakeClock
) -> None:
    browser = signed_in_browser(kept, bitbucket, JANE)
    clock.advance(LIFETIME)
    set_fault(bitbucket.url, "token", status=200, body=body, times=1)
    answer = browser.get(f"{kept}/bitbucket/me", allow_redirects=False)
    assert answer.status_code == 502
    assert "Bitbucket sent" in answer.text
    assert is_signed_in(browser, kept)
    assert browser.get(f"{kept}/bitbucket/me").json()["user"]["display_name"] == "Jane Doe"


def test_a_session_without_kept_tokens_is_signed_out_when_they_are_needed(
    kept: str, bitbucket: EmulatorServer, store: redis.Redis
) -> None:
    """Signed in before ``BITBUCKET_KEEP_TOKENS`` was switched on, or the tokens were lost."""
    browser = signed_in_browser(kept, bitbucket, JANE)
    store.delete(*token_keys(store))
    answer = browser.get(f"{kept}/bitbucket/me", headers=XHR, allow_redirects=False)
    assert answer.status_code == 401
    assert not is_signed_in(browser, kept)


# --- exposing the access token to a Backstage frontend ---------------------------------------


@pytest.mark.parametrize("expose", [False, True])
def test_the_access_token_reaches_the_frontend_only_when_exposing(
    expose: bool,
    make_kept_app: Callable[..., Flask],
    http: requests.Session,
    bitbucket: EmulatorServer,
    clock: FakeClock,
) -> None:
    app = make_kept_app(BITBUCKET_EXPOSE_ACCESS_TOKEN=expose, **FRONTEND)
    with serve(app) as url:
        popup = frontend_sign_in(http, url, bitbucket.url, JANE)
        (first,) = bitbucket.state.access_tokens
        clock.advance(1000)
        refreshed = refresh(http, url)
        clock.advance(LIFETIME - 1000 - REFRESH_MARGIN_SECONDS + 1)  # due: made fresh first
        renewed = refresh(http, url)
    assert (popup.status_code, refreshed.status_code, renewed.status_code) == (200, 200, 200)
    assert refreshes(bitbucket) == 1
    (second,) = set(bitbucket.state.access_tokens) - {first}
    infos = [
        popup_messages(popup)[1]["response"]["providerInfo"],
        refreshed.json()["providerInfo"],
        renewed.json()["providerInfo"],
    ]
    if not expose:
        assert not any("accessToken" in info for info in infos)
        assert {info["expiresInSeconds"] for info in infos} == {3600}  # the identity token's
        return
    assert [(i["accessToken"], i["expiresInSeconds"]) for i in infos] == [
        (first, LIFETIME),
        (first, LIFETIME - 1000),
        (second, LIFETIME),
    ]
    by_browser = requests.get(
        f"{bitbucket.url}/2.0/user", headers={"Authorization": f"Bearer {second}"}, timeout=5
    )
    assert by_browser.json()["uuid"] == JANE
