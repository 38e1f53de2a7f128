"""Fixtures around the app factory, the Bitbucket emulator and a live app server."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer, load_accounts, load_datacenter
from bitbucket_signin.standalone import create_app

from .datacenter import Site, register_link, served_later, server_config
from .processes import redis_process
from .support import (
    CATALOG_CHECK_INTERVAL,
    DATA,
    FakeClock,
    add_bitbucket_pages,
    reset_emulator,
    serve,
    signin_config,
)

pytest_plugins = ["bitbucket_signin.pytest_plugin"]


@pytest.fixture(scope="session")
def bitbucket_emulator_accounts() -> Path:
    """The emulator of ``bitbucket_signin.pytest_plugin`` knows the test accounts."""
    return DATA / "accounts.yaml"


@pytest.fixture(scope="session")
def bitbucket_emulator(bitbucket_emulator_accounts: Path) -> Iterator[EmulatorServer]:
    """The plugin's emulator, playing Data Center too (under ``datacenter_url``)."""
    accounts = bitbucket_emulator_accounts
    with EmulatorServer(load_accounts(accounts), datacenter=load_datacenter(accounts)) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real ``redis-server`` for the server-side session tests."""
    with redis_process() as url:
        yield url


@pytest.fixture
def store(redis_url: str) -> redis.Redis:
    """The Redis of the sessions, emptied."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return client


@pytest.fixture
def make_kept_app(
    make_app: Callable[..., Flask], redis_url: str, store: redis.Redis, clock: FakeClock
) -> Callable[..., Flask]:
    """Apps with sessions in Redis (emptied), tokens kept, on the test's clock, and pages that
    call Bitbucket as the person; keyword arguments set more."""

    def factory(**overrides: Any) -> Flask:
        app = make_app(
            BITBUCKET_SESSION_REDIS_URL=redis_url,
            BITBUCKET_KEEP_TOKENS=True,
            BITBUCKET_CLOCK=clock,
            **overrides,
        )
        add_bitbucket_pages(app)
        return app

    return factory


@pytest.fixture
def kept_app(make_kept_app: Callable[..., Flask]) -> Flask:
    """Tokens kept; Jane signs in by id, Li by username, Mani by email."""
    resolvers = [
        "userIdMatchingUserEntityAnnotation",
        "usernameMatchingUserEntityAnnotation",
        "emailMatchingUserEntityProfileEmail",
    ]
    return make_kept_app(BITBUCKET_SIGNIN_RESOLVERS=resolvers)


@pytest.fixture
def bitbucket(bitbucket_emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """The plugin's emulator, reset before and after the test (faults, codes, tokens, rate
    counters)."""
    reset_emulator(bitbucket_emulator.url)
    yield bitbucket_emulator
    reset_emulator(bitbucket_emulator.url)


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    """A copy of the test catalog that the test may edit."""
    path = tmp_path / "catalog.yaml"
    shutil.copy(DATA / "catalog.yaml", path)
    return path


@pytest.fixture
def app_config(bitbucket: EmulatorServer, catalog_file: Path) -> dict[str, Any]:
    return {
        **signin_config(bitbucket.url, catalog_file),
        "BITBUCKET_TIMEOUT": 2.0,
        "BITBUCKET_CATALOG_CHECK_INTERVAL": CATALOG_CHECK_INTERVAL,
    }


@pytest.fixture
def make_app(app_config: dict[str, Any]) -> Callable[..., Flask]:
    """Build an app from the test config with some keys overridden."""

    def factory(**overrides: Any) -> Flask:
        return create_app({**app_config, **overrides})

    return factory


@pytest.fixture
def clock() -> FakeClock:
    """The ``app`` fixture's time for session expiry and catalog checks; only the test moves it."""
    return FakeClock()


@pytest.fixture
def app(make_app: Callable[..., Flask], clock: FakeClock, request: pytest.FixtureRequest) -> Flask:
    """The app on the test clock; ``@pytest.mark.rate_limit("…")`` sets BITBUCKET_RATE_LIMIT
    for tests that sign in more often than the default allows."""
    marker = request.node.get_closest_marker("rate_limit")
    limit = {"BITBUCKET_RATE_LIMIT": marker.args[0]} if marker else {}
    return make_app(BITBUCKET_CLOCK=clock, **limit)


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def live_app(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on a free loopback port; yields its URL."""
    with serve(app) as url:
        yield url


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A browser-like cookie jar for talking to the live app."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def make_site(
    app_config: dict[str, Any], bitbucket: EmulatorServer, clock: FakeClock
) -> Iterator[Callable[..., Site]]:
    """``make_site(**overrides)``: an app with Bitbucket Cloud and the emulator's Data Center
    (``BITBUCKET_SERVER_…``; the test link's redirect URL is this app's callback), on the
    test clock, served over real HTTP on a free port."""
    with ExitStack() as stack:

        def factory(**overrides: Any) -> Site:
            url, late = stack.enter_context(served_later())
            register_link(bitbucket, url)
            config = {**app_config, **server_config(bitbucket), "BITBUCKET_CLOCK": clock}
            late.app = create_app(
                {key: value for key, value in {**config, **overrides}.items() if value is not None}
            )
            return Site(url, late.app)

        yield factory
