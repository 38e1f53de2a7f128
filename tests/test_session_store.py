"""Server-side sessions in a real Redis (``SESSION_REDIS_URL``): logout ends every copy."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
import requests
from flask import Flask

from bitbucket_signin.demo import create_app
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.errors import ConfigError

from .support import JANE, csrf_token, serve, sign_in

COOKIE = "session"


@pytest.fixture
def redis_app(make_app: Callable[..., Flask], redis_url: str) -> Iterator[str]:
    redis.Redis.from_url(redis_url).flushdb()
    with serve(make_app(SESSION_REDIS_URL=redis_url)) as url:
        yield url


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
    values = b"".join(store.get(key) or b"" for key in store.keys("bitbucket-signin:*"))
    assert values
    assert b"Jane Doe" in values
    issued = [*bitbucket.state.access_tokens, *bitbucket.state.refresh_tokens]
    assert issued
    assert not any(token.encode() in values for token in issued)


def test_unreachable_redis_stops_start_up(app_config: dict[str, object]) -> None:
    from .processes import free_port

    with pytest.raises(ConfigError, match=r"^SESSION_REDIS_URL: cannot use Redis"):
        create_app({**app_config, "SESSION_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
