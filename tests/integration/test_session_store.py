"""Server-side sessions in a real Redis (``BITBUCKET_SESSION_REDIS_URL``)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from flask_login import current_user

from bitbucket_signin import get_extension
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.errors import ConfigError
from bitbucket_signin.redis_sessions import PENDING_SECONDS, PERSON_PREFIX

from ..processes import free_port, redis_process
from ..support import (
    JANE,
    LI,
    FakeClock,
    csrf_token,
    is_signed_in,
    serve,
    sign_in,
    signed_in_browser,
)

COOKIE = "session"
SESSIONS = "bitbucket-signin:session:*"


@pytest.fixture
def redis_app(make_app: Callable[..., Flask], redis_url: str) -> Iterator[str]:
    """Jane signs in by user id, Li by username."""
    redis.Redis.from_url(redis_url).flushdb()
    resolvers = ["userIdMatchingUserEntityAnnotation", "usernameMatchingUserEntityAnnotation"]
    app = make_app(BITBUCKET_SESSION_REDIS_URL=redis_url, BITBUCKET_SIGNIN_RESOLVERS=resolvers)
    with serve(app) as url:
        yield url


def test_the_browser_holds_only_an_opaque_id(
    redis_app: str, http: requests.Session, bitbucket: EmulatorServer
) -> None:
    sign_in(http, redis_app, bitbucket.url, JANE)
    cookie = http.cookies.get(COOKIE)
    assert cookie
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", cookie)
    assert "Jane" not in cookie


def test_logout_ends_a_copied_session(
    redis_app: str, http: requests.Session, bitbucket: EmulatorServer
) -> None:
    sign_in(http, redis_app, bitbucket.url, JANE)
    home = http.get(f"{redis_app}/")
    assert "Signed in as Jane Doe" in home.text
    copied = http.cookies.get(COOKIE)

    http.post(f"{redis_app}/api/auth/bitbucket/logout", data={"csrf_token": csrf_token(home.text)})

    replay = requests.get(f"{redis_app}/", cookies={COOKIE: copied}, allow_redirects=False)
    assert replay.status_code == 302
    assert "/signin" in replay.headers["Location"]


def test_sign_in_issues_a_new_session_id(
    redis_app: str, http: requests.Session, bitbucket: EmulatorServer
) -> None:
    http.get(f"{redis_app}/api/auth/bitbucket/start", allow_redirects=False)
    before = http.cookies.get(COOKIE)
    assert before
    sign_in(http, redis_app, bitbucket.url, JANE)
    after = http.cookies.get(COOKIE)
    assert after
    assert after != before
    stale = requests.get(f"{redis_app}/", cookies={COOKIE: before}, allow_redirects=False)
    assert stale.status_code == 302


def test_the_store_holds_no_provider_token(
    redis_app: str, redis_url: str, http: requests.Session, bitbucket: EmulatorServer
) -> None:
    sign_in(http, redis_app, bitbucket.url, JANE)
    store = redis.Redis.from_url(redis_url)
    values = b"".join(store.get(key) or b"" for key in store.keys(SESSIONS))
    assert values
    assert b"Jane Doe" in values
    issued = [*bitbucket.state.access_tokens, *bitbucket.state.refresh_tokens]
    assert issued
    assert not any(token.encode() in values for token in issued)


def test_sign_out_everywhere_ends_every_session_of_that_person_only(
    redis_app: str, bitbucket: EmulatorServer
) -> None:
    laptop, phone = (signed_in_browser(redis_app, bitbucket, JANE) for _ in range(2))
    colleague = signed_in_browser(redis_app, bitbucket, LI)
    page = laptop.get(f"{redis_app}/").text
    assert "Sign out everywhere" in page

    refused = laptop.post(f"{redis_app}/api/auth/bitbucket/logout/everywhere", data={})
    assert refused.status_code == 400
    assert is_signed_in(phone, redis_app)

    laptop.post(
        f"{redis_app}/api/auth/bitbucket/logout/everywhere",
        data={"csrf_token": csrf_token(page)},
    )

    assert not is_signed_in(laptop, redis_app)
    assert not is_signed_in(phone, redis_app)
    assert is_signed_in(colleague, redis_app)


def test_admins_sign_a_person_out_everywhere_from_python(
    make_app: Callable[..., Flask], redis_url: str, bitbucket: EmulatorServer
) -> None:
    app = make_app(BITBUCKET_SESSION_REDIS_URL=redis_url)
    with serve(app) as url:
        browsers = [signed_in_browser(url, bitbucket, JANE) for _ in range(3)]
        assert get_extension(app).sign_out_everywhere(JANE.upper().strip("{}")) == 3
        assert not any(is_signed_in(browser, url) for browser in browsers)
        assert get_extension(app).sign_out_everywhere(JANE) == 0


def test_cookie_sessions_cannot_sign_out_everywhere(app: Flask) -> None:
    assert "bitbucket_signin.logout_everywhere" not in app.view_functions
    with pytest.raises(RuntimeError, match="BITBUCKET_SESSION_REDIS_URL"):
        get_extension(app).sign_out_everywhere(JANE)


@pytest.mark.parametrize("store", ["cookie", "redis"])
def test_idle_timeout_and_absolute_lifetime(
    store: str,
    make_app: Callable[..., Flask],
    redis_url: str,
    bitbucket: EmulatorServer,
    clock: FakeClock,
) -> None:
    extra: dict[str, Any] = {"BITBUCKET_SESSION_REDIS_URL": redis_url} if store == "redis" else {}
    app = make_app(
        BITBUCKET_SESSION_IDLE_TIMEOUT="10m",
        BITBUCKET_SESSION_DURATION="1h",
        BITBUCKET_CLOCK=clock,
        **extra,
    )
    with serve(app) as url:
        browser = signed_in_browser(url, bitbucket, JANE)
        for _ in range(6):  # active every 9 minutes: the idle timeout never strikes
            clock.advance(timedelta(minutes=9).total_seconds())
            assert is_signed_in(browser, url)
        clock.advance(timedelta(minutes=9).total_seconds())  # 63 minutes after sign-in
        assert not is_signed_in(browser, url)

        idle = signed_in_browser(url, bitbucket, JANE)
        clock.advance(timedelta(minutes=10, seconds=1).total_seconds())
        assert not is_signed_in(idle, url)


@pytest.fixture
def half_hour_app(make_app: Callable[..., Flask], redis_url: str, clock: FakeClock) -> Flask:
    """Sessions in Redis, idle for 30 minutes at most, on the test clock."""
    return make_app(
        BITBUCKET_SESSION_REDIS_URL=redis_url,
        BITBUCKET_SESSION_IDLE_TIMEOUT="30m",
        BITBUCKET_CLOCK=clock,
    )


def test_redis_forgets_an_idle_session_by_itself(
    half_hour_app: Flask, store: redis.Redis, bitbucket: EmulatorServer, clock: FakeClock
) -> None:
    """The session's Redis expiry is the idle timeout (and the minute the last-seen stamp
    may lag), pushed out whenever a request renews that stamp."""
    app = half_hour_app
    with serve(app) as url:
        browser = signed_in_browser(url, bitbucket, JANE)
        (key,) = store.keys(SESSIONS)
        assert 30 * 60 < store.ttl(key) <= 31 * 60
        assert is_signed_in(browser, url)  # the page's first view adds its CSRF token
        store.expire(key, 5)
        assert is_signed_in(browser, url)  # the stamp is fresh: no write
        assert store.ttl(key) <= 5
        clock.advance(61)
        assert is_signed_in(browser, url)  # the stamp is renewed: the expiry too
        assert 30 * 60 < store.ttl(key) <= 31 * 60


def test_unreachable_redis_stops_start_up(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ConfigError, match=r"^BITBUCKET_SESSION_REDIS_URL: cannot use Redis"):
        make_app(BITBUCKET_SESSION_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")


def test_redis_down_signed_in_pages_503_signed_out_pages_answer_then_recovery(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    port = free_port()
    with redis_process(port) as redis_url:
        app = make_app(BITBUCKET_SESSION_REDIS_URL=redis_url)
        with serve(app) as url:
            browser = signed_in_browser(url, bitbucket, JANE)
            assert is_signed_in(browser, url)
    # Redis is down; the app keeps running.
    with serve(app) as url:
        assert requests.get(f"{url}/signin", timeout=10).status_code == 200
        home = browser.get(f"{url}/", allow_redirects=False, timeout=10)
        assert home.status_code == 503
        assert "Sign-in sessions are unavailable right now" in home.text
        assert home.headers["Retry-After"]
        start = requests.get(f"{url}/api/auth/bitbucket/start", allow_redirects=False, timeout=10)
        assert start.status_code == 503
        assert "Location" not in start.headers
        assert "Sign-in sessions are unavailable right now" in start.text

        with redis_process(port):
            assert not is_signed_in(browser, url)  # the store forgot the session
            sign_in(browser, url, bitbucket.url, JANE)
            assert is_signed_in(browser, url)


def test_visitors_who_never_sign_in_cost_the_store_nothing_or_half_an_hour(
    redis_app: str, redis_url: str
) -> None:
    store = redis.Redis.from_url(redis_url)
    for _ in range(50):  # a protected page, then the sign-in page it sends them to
        assert requests.get(f"{redis_app}/", timeout=10).status_code == 200
    assert store.keys(SESSIONS) == []
    pending = requests.get(f"{redis_app}/api/auth/bitbucket/start", allow_redirects=False)
    assert pending.status_code == 302
    (key,) = store.keys(SESSIONS)
    assert 0 < store.ttl(key) <= PENDING_SECONDS


def test_a_request_under_way_cannot_bring_back_a_session_that_ended(
    make_app: Callable[..., Flask], redis_url: str, bitbucket: EmulatorServer, clock: FakeClock
) -> None:
    """A thief's request that read the session before "sign out everywhere" and writes it
    back afterwards (its last-seen stamp was due) must not revive it."""
    redis.Redis.from_url(redis_url).flushdb()
    app = make_app(BITBUCKET_SESSION_REDIS_URL=redis_url, BITBUCKET_CLOCK=clock)
    read, release = threading.Event(), threading.Event()

    @app.get("/slow")
    def slow() -> str:
        assert current_user.is_authenticated  # loading the user renews the last-seen stamp
        read.set()
        release.wait(10)
        return "the session was read and changed; it is written on the way out"

    with serve(app) as url:
        thief = signed_in_browser(url, bitbucket, JANE)
        clock.advance(61)  # the next load of the user renews the stamp: a write
        with ThreadPoolExecutor(1) as pool:
            under_way = pool.submit(thief.get, f"{url}/slow", timeout=30)
            assert read.wait(10)
            assert get_extension(app).sign_out_everywhere(JANE) == 1
            release.set()
            assert under_way.result().status_code == 200
        assert not is_signed_in(thief, url)


def test_sign_out_everywhere_finds_a_session_kept_alive_past_its_index_expiry(
    half_hour_app: Flask, store: redis.Redis, bitbucket: EmulatorServer, clock: FakeClock
) -> None:
    """The person's index of sessions is renewed with every write of a session, so it lives
    as long as the longest-lived one (even if it had expired meanwhile)."""
    app = half_hour_app
    index = PERSON_PREFIX + JANE.strip("{}")
    with serve(app) as url:
        kept_alive = signed_in_browser(url, bitbucket, JANE)
        assert 30 * 60 < store.ttl(index) <= 31 * 60
        store.delete(index)  # as if it had expired while the session was in use
        clock.advance(61)
        assert is_signed_in(kept_alive, url)
        assert 30 * 60 < store.ttl(index) <= 31 * 60
        assert get_extension(app).sign_out_everywhere(JANE) == 1
        assert not is_signed_in(kept_alive, url)
