"""Sign-in attempts are limited per client address (Flask-Limiter), so that nobody can spend the
consumer's Bitbucket quota for everyone: a burst from one address gets 429 pages with
``Retry-After`` and costs Bitbucket nothing, while other addresses sign in as usual. The count
lives in memory by default, or in Redis so that every worker and host shares it. A host app's
own Flask-Limiter keeps its limits and settings."""

from __future__ import annotations

import collections
import ipaddress
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

import limits.storage.memory
import limits.strategies
import pytest
import redis
import requests
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from bitbucket_signin import BitbucketSignIn
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.errors import ConfigError
from bitbucket_signin.standalone import create_app
from bitbucket_signin.views import PENDING_STATE_PREFIX

from ..processes import free_port, redis_process
from ..support import (
    JANE,
    VAL,
    client_at,
    emulator_requests,
    grant_at_emulator,
    serve,
    session_contents,
    sign_in,
    start_sign_in,
    token_calls,
)

START = "/api/auth/bitbucket/start"
REFUSAL = "Too many sign-in attempts from your network address."


class LimiterClock(types.SimpleNamespace):
    """``time`` as Flask-Limiter's memory storage sees it: real time plus what the test adds."""

    def __init__(self) -> None:
        super().__init__(offset=0.0)

    def time(self) -> float:
        return time.time() + self.offset

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def attempt(http: requests.Session, url: str, **params: str) -> requests.Response:
    return http.get(f"{url}{START}", params=params, allow_redirects=False, timeout=10)


def statuses(http: requests.Session, url: str, count: int) -> list[int]:
    return [attempt(http, url).status_code for _ in range(count)]


def assert_refusal_page(response: requests.Response, *, at_most: int) -> None:
    """A readable sign-in page with 429, when to retry, and no way on to Bitbucket."""
    assert response.status_code == 429
    assert response.headers["Content-Type"].startswith("text/html")
    assert 1 <= int(response.headers["Retry-After"]) <= at_most
    assert REFUSAL in response.text
    assert f"Please try again in {response.headers['Retry-After']} seconds." in response.text
    assert "Sign in with Bitbucket" in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Location" not in response.headers


def pending_states(app: Flask, http: requests.Session) -> set[str]:
    contents = session_contents(app, http.cookies.get("session"))
    return {key for key in contents if key.startswith(PENDING_STATE_PREFIX)}


def test_a_burst_from_one_address_is_limited_by_default_and_another_address_is_not(
    app: Flask, live_app: str
) -> None:
    """The default: 30 sign-in starts a minute from one address."""
    with client_at("127.0.0.1") as busy, client_at("127.0.0.2") as other:
        assert statuses(busy, live_app, 30) == [302] * 30
        pending = pending_states(app, busy)
        refused = attempt(busy, live_app, next="/reports")
        assert_refusal_page(refused, at_most=60)
        assert pending_states(app, busy) == pending  # nothing new to send to Bitbucket
        assert 'name="next" value="/reports"' in refused.text
        assert attempt(busy, live_app).status_code == 429
        assert statuses(other, live_app, 30) == [302] * 30
        assert busy.get(f"{live_app}/signin", timeout=10).status_code == 200
        assert busy.get(f"{live_app}/", allow_redirects=False, timeout=10).status_code == 302


def test_refused_callbacks_cost_bitbucket_nothing(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    """The attack the callback limit stops: one start, many codes granted for its state, the
    callback replayed with a copy of the cookie; each would cost a token and three API calls."""
    with serve(make_app(BITBUCKET_RATE_LIMIT="3 per minute")) as url:
        with client_at("127.0.0.1") as attacker:
            authorize_url = start_sign_in(attacker, url)
            cookie = {"session": attacker.cookies["session"]}
        callbacks = [grant_at_emulator(bitbucket.url, authorize_url, JANE) for _ in range(6)]
        answers = [replay(callback, cookie, "127.0.0.1") for callback in callbacks[:5]]
        assert [a.status_code for a in answers] == [302, 302, 302, 429, 429]
        assert_refusal_page(answers[3], at_most=60)
        assert token_calls(bitbucket) == 3
        assert replay(callbacks[5], cookie, "127.0.0.2").status_code == 302
        assert token_calls(bitbucket) == 4


def replay(callback: str, cookie: dict[str, str], source: str) -> requests.Response:
    """The callback URL with a copy of the session cookie, from ``source``."""
    with client_at(source) as http:
        return http.get(callback, cookies=cookie, allow_redirects=False, timeout=10)


@pytest.mark.parametrize(
    ("limit", "allowed"),
    [("2 per minute", 2), ("5/hour; 3/minute", 3), ("off", 40), (False, 40), ("", 30)],
)
def test_the_limit_is_configurable_and_can_be_switched_off(
    make_app: Callable[..., Flask], limit: object, allowed: int
) -> None:
    """Only ``off`` or false switch it off; empty (an unset template variable) is the default."""
    with serve(make_app(BITBUCKET_RATE_LIMIT=limit)) as url, requests.Session() as http:
        assert statuses(http, url, allowed) == [302] * allowed
        if allowed < 40:
            assert_refusal_page(attempt(http, url), at_most=60)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("RATE_LIMIT", "lots", "BITBUCKET_RATE_LIMIT: cannot read 'lots' as a rate limit"),
        ("RATE_LIMIT", "0 per minute", "BITBUCKET_RATE_LIMIT: cannot read '0 per minute'"),
        ("RATE_LIMIT", 30, "BITBUCKET_RATE_LIMIT: cannot read 30 as a rate limit"),
        ("RATE_LIMIT", "0", "BITBUCKET_RATE_LIMIT: cannot read '0' as a rate limit"),
        ("RATE_LIMIT", "no", "BITBUCKET_RATE_LIMIT: cannot read 'no' as a rate limit"),
        ("RATE_LIMIT_STORAGE_URL", "mongodb://x", "BITBUCKET_RATE_LIMIT_STORAGE_URL: expected"),
    ],
)
def test_bad_settings_stop_start_up_in_one_line(
    app_config: dict[str, Any], setting: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        create_app({**app_config, f"BITBUCKET_{setting}": value})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_unreachable_redis_stops_start_up_without_showing_the_password(
    app_config: dict[str, Any],
) -> None:
    url = f"redis://:hunter2-password@127.0.0.1:{free_port()}/0"
    with pytest.raises(ConfigError) as error:
        create_app({**app_config, "BITBUCKET_RATE_LIMIT_STORAGE_URL": url})
    assert str(error.value) == (
        "BITBUCKET_RATE_LIMIT_STORAGE_URL: the rate-limit storage does not answer"
    )


def test_redis_storage_without_the_redis_extra_stops_start_up(app_config: dict[str, Any]) -> None:
    program = (
        "import json, sys\n"
        "sys.modules['redis'] = None  # not installed\n"
        "from bitbucket_signin.standalone import create_app\n"
        "create_app(json.loads(sys.argv[1]))\n"
    )
    config = {**app_config, "BITBUCKET_RATE_LIMIT_STORAGE_URL": "redis://127.0.0.1:1/0"}
    run = subprocess.run(
        [sys.executable, "-c", program, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "bitbucket_signin.errors.ConfigError: BITBUCKET_RATE_LIMIT_STORAGE_URL: Redis needs the "
        "redis extra: pip install 'bitbucket-signin[redis]'"
    )


@pytest.mark.parametrize(
    ("storage", "shared"), [("redis", True), ("session-redis", True), ("memory", False)]
)
def test_redis_gives_every_instance_one_count(
    make_app: Callable[..., Flask], redis_url: str, storage: str, shared: bool
) -> None:
    """Two app instances (two workers or hosts), served separately, one client address;
    the session store's Redis counts too when no other storage is named."""
    redis.Redis.from_url(redis_url).flushdb()
    settings = {
        "redis": {"BITBUCKET_RATE_LIMIT_STORAGE_URL": redis_url},
        "session-redis": {"BITBUCKET_SESSION_REDIS_URL": redis_url},
        "memory": {"BITBUCKET_RATE_LIMIT_STORAGE_URL": "memory://"},
    }[storage] | {"BITBUCKET_RATE_LIMIT": "4 per minute"}
    with ExitStack() as stack, requests.Session() as http:
        first, second = (stack.enter_context(serve(make_app(**settings))) for _ in range(2))
        assert [attempt(http, url).status_code for url in (first, second) * 2] == [302] * 4
        assert attempt(http, first).status_code == (429 if shared else 302)
        assert attempt(http, second).status_code == (429 if shared else 302)


def test_redis_going_away_keeps_sign_in_answering_and_limited(
    make_app: Callable[..., Flask],
) -> None:
    """Each process then counts on its own (Flask-Limiter's in-memory fallback)."""
    with ExitStack() as stack:
        url = stack.enter_context(redis_process())
        app = make_app(BITBUCKET_RATE_LIMIT="3 per minute", BITBUCKET_RATE_LIMIT_STORAGE_URL=url)
        with requests.Session() as http, serve(app) as site:
            assert statuses(http, site, 1) == [302]
            stack.close()  # redis-server stops
            assert statuses(http, site, 4) == [302, 302, 302, 429]


def statuses_from(url: str, clients: Iterable[str]) -> list[int]:
    """One start from each client address in turn, as a proxy forwards it (X-Forwarded-For)."""
    with requests.Session() as http:
        return [
            http.get(
                f"{url}{START}",
                headers={"X-Forwarded-For": client},
                allow_redirects=False,
                timeout=10,
            ).status_code
            for client in clients
        ]


@pytest.mark.parametrize(("proxy_fix", "separate"), [(0, False), (1, True)])
def test_the_key_is_the_address_flask_sees(
    make_app: Callable[..., Flask], proxy_fix: int, separate: bool
) -> None:
    """Without ProxyFix a forged X-Forwarded-For dodges nothing; behind a proxy that
    ProxyFix trusts, each forwarded client has its own count."""
    with serve(make_app(BITBUCKET_RATE_LIMIT="2 per minute", PROXY_FIX=proxy_fix)) as url:
        answers = statuses_from(url, ["198.51.100.1", "198.51.100.1", "198.51.100.2"])
    assert answers[-1] == (302 if separate else 429)


def test_an_ipv6_client_is_counted_by_its_64_network(make_app: Callable[..., Flask]) -> None:
    """One IPv6 subscriber or host usually owns a whole /64 (2**64 addresses): 200 starts
    from 200 addresses spread over one /64, however written, are limited like one address;
    the next /64 has a count of its own; an IPv4-mapped address counts as its IPv4."""
    network = ipaddress.IPv6Network("2001:db8:1:2::/64")
    spread = [str(network[i * (network.num_addresses // 199 - 1)]) for i in range(199)]
    one_network = [*spread, "2001:0DB8:0001:0002:FFFF:FFFF:FFFF:FFFF"]
    with serve(make_app(BITBUCKET_RATE_LIMIT="30 per minute", PROXY_FIX=1)) as url:
        assert statuses_from(url, one_network) == [302] * 30 + [429] * 170
        assert statuses_from(url, ["2001:db8:1:3::1", "2001:db8:1:2:abcd::1"]) == [302, 429]
        assert statuses_from(url, ["198.51.100.7"] * 30) == [302] * 30
        assert statuses_from(url, ["::ffff:198.51.100.7", "198.51.100.8"]) == [429, 302]


def host_app(config: dict[str, Any]) -> tuple[Flask, Limiter]:
    """A host app with its own Flask-Limiter: ``/ping`` limited by it, ``/open`` not."""
    app = Flask("host")
    app.config.update(config)
    host = Limiter(get_remote_address, app=app, storage_uri="memory://")
    BitbucketSignIn(app)
    app.add_url_rule("/ping", "ping", host.limit("5 per minute")(lambda: "pong"))
    app.add_url_rule("/open", "open", lambda: "open")
    return app, host


def test_a_host_limiter_and_ours_live_side_by_side(app_config: dict[str, Any]) -> None:
    app, host = host_app({**app_config, "BITBUCKET_RATE_LIMIT": "2 per minute"})
    limiters = app.extensions["limiter"]
    assert len(limiters) == 2
    assert host in limiters
    with serve(app) as url, requests.Session() as http:
        opens = [http.get(f"{url}/open", timeout=10).status_code for _ in range(8)]
        pings = [http.get(f"{url}/ping", timeout=10) for _ in range(6)]
        assert opens == [200] * 8  # ours limits none of the host's routes
        assert [p.status_code for p in pings] == [200] * 5 + [429]  # the host's limit holds
        assert REFUSAL not in pings[-1].text
        assert statuses(http, url, 2) == [302, 302]
        assert_refusal_page(attempt(http, url), at_most=60)


def test_ours_neither_reads_nor_writes_the_hosts_ratelimit_settings(
    app_config: dict[str, Any],
) -> None:
    """``RATELIMIT_*`` configure the host's Limiter only: a host that switches its own off
    (``enabled=False`` after us) keeps it off, and its defaults never become ours."""
    host_settings = {"RATELIMIT_DEFAULT": "1 per minute", "RATELIMIT_APPLICATION": "1/minute"}
    config = {**app_config, "BITBUCKET_RATE_LIMIT": "3 per minute"}
    app = Flask("host")
    app.config.update(config, **host_settings)
    BitbucketSignIn(app)
    assert {k: v for k, v in app.config.items() if k.startswith("RATELIMIT_")} == host_settings
    host = Limiter(get_remote_address, app=app, storage_uri="memory://", enabled=False)
    app.add_url_rule("/open", "open", lambda: "open")
    assert host.enabled is False
    with serve(app) as url, requests.Session() as http:
        assert [http.get(f"{url}/open", timeout=10).status_code for _ in range(3)] == [200] * 3
        assert statuses(http, url, 4) == [302, 302, 302, 429]


def test_one_address_cannot_spend_the_hourly_quota_at_the_default_limit(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour of sign-ins from one address, as fast as the default limit lets them through
    (each 429 waited out on the limiter's clock), stays under the consumer's quota of about
    1,000 API calls an hour: Bitbucket never refuses, and Jane, elsewhere, signs in."""
    clock = LimiterClock()
    monkeypatch.setattr(limits.storage.memory, "time", clock)
    monkeypatch.setattr(limits.strategies, "time", clock)
    app = make_app()  # the default BITBUCKET_RATE_LIMIT
    answers: collections.Counter[int] = collections.Counter()
    with serve(app) as url, client_at("127.0.0.2") as attacker:
        began = clock.time()
        while clock.time() - began < 3600:  # one hour on the limiter's clock
            start = attempt(attacker, url)
            if start.status_code == 429:
                clock.offset += 61
                continue
            callback = grant_at_emulator(bitbucket.url, start.headers["Location"], VAL)
            answers[attacker.get(callback, allow_redirects=False, timeout=10).status_code] += 1
        with client_at("127.0.0.3") as jane:
            assert sign_in(jane, url, bitbucket.url, JANE).status_code == 302
    assert set(answers) == {403}  # not in the catalog; never "Bitbucket is limiting requests"
    assert sum(answers.values()) == 100
    api_calls = [entry for entry in emulator_requests(bitbucket) if entry["endpoint"] == "user"]
    assert len(api_calls) == 101  # the attacker's hundred and Jane's one
