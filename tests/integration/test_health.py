"""``GET /healthz`` for load balancers: ready or not, and nothing personal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import requests
from flask import Flask

from ..processes import free_port, redis_process
from ..support import serve


def test_ready_with_cookie_sessions(live_app: str) -> None:
    health = requests.get(f"{live_app}/healthz", timeout=10)
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["catalog"]["loaded"] is True
    assert body["catalog"]["users"] > 0
    datetime.fromisoformat(body["catalog"]["loaded_at"])
    assert body["sessions"] == {"store": "cookie", "reachable": True}
    assert health.headers["Cache-Control"] == "no-store"
    for personal in ("jane", "example.com", "user:default"):
        assert personal not in health.text.lower()


def test_unavailable_while_redis_is_down_and_back_when_it_returns(
    make_app: Callable[..., Flask],
) -> None:
    port = free_port()
    with redis_process(port) as redis_url:
        app = make_app(BITBUCKET_SESSION_REDIS_URL=redis_url)
    with serve(app) as url:
        down = requests.get(f"{url}/healthz", timeout=10)
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable"
        assert down.json()["sessions"] == {"store": "redis", "reachable": False}
        with redis_process(port):
            assert requests.get(f"{url}/healthz", timeout=10).status_code == 200


def test_path_is_configurable_or_off(make_app: Callable[..., Flask]) -> None:
    moved = make_app(BITBUCKET_HEALTH_PATH="/-/ready").test_client()
    assert moved.get("/-/ready").status_code == 200
    assert moved.get("/healthz").status_code == 404
    off = make_app(BITBUCKET_HEALTH_PATH="").test_client()
    assert off.get("/healthz").status_code == 404
