"""Prometheus metrics at ``BITBUCKET_METRICS_PATH``: in one process and across gunicorn workers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer

from ..processes import app_environment, emulator_process, gunicorn_app
from ..support import DATA, JANE, VAL, Samples, call_counts, samples, serve, sign_in


def sign_ins(values: Samples, outcome: str) -> float:
    return sum(
        value
        for (name, labels), value in values.items()
        if name == "bitbucket_signin_sign_ins_total" and ("outcome", outcome) in labels
    )


def test_off_by_default(app: Flask) -> None:
    assert app.test_client().get("/metrics").status_code == 404


def test_sign_ins_latency_and_catalog(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    app = make_app(BITBUCKET_METRICS_PATH="/metrics")
    with serve(app) as url:
        before = samples(requests.get(f"{url}/metrics", timeout=10).text)
        with requests.Session() as browser:
            assert sign_in(browser, url, bitbucket.url, JANE).status_code == 302
        with requests.Session() as browser:
            assert sign_in(browser, url, bitbucket.url, VAL).status_code == 403
        answer = requests.get(f"{url}/metrics", timeout=10)
    assert answer.headers["Content-Type"].startswith("text/plain")
    after = samples(answer.text)
    assert sign_ins(after, "success") - sign_ins(before, "success") == 1
    refused = (
        "bitbucket_signin_sign_ins_total",
        (("outcome", "refused"), ("reason", "UserNotInCatalogError")),
    )
    assert after[refused] - before.get(refused, 0) == 1
    count = ("bitbucket_signin_callback_seconds_count", ())
    assert after[count] - before.get(count, 0) == 2
    calls, calls_before = call_counts(after), call_counts(before)
    assert calls["token"] - calls_before["token"] == 2
    assert calls["user"] - calls_before["user"] == 2
    assert set(calls) <= {"token", "user", "emails", "workspaces", "whoami", "user search", "other"}
    assert after[("bitbucket_signin_catalog_users", ())] == 5
    assert 0 <= after[("bitbucket_signin_catalog_age_seconds", ())] < 600
    assert "jane" not in answer.text.lower()


def test_rate_limited_attempts_are_counted(make_app: Callable[..., Flask]) -> None:
    app = make_app(BITBUCKET_METRICS_PATH="/metrics", BITBUCKET_RATE_LIMIT="2 per minute")
    key = ("bitbucket_signin_rate_limited_total", ())
    with serve(app) as url:
        before = samples(requests.get(f"{url}/metrics", timeout=10).text).get(key, 0)
        statuses = [
            requests.get(f"{url}/api/auth/bitbucket/start", allow_redirects=False).status_code
            for _ in range(4)
        ]
        after = samples(requests.get(f"{url}/metrics", timeout=10).text)[key]
    assert statuses == [302, 302, 429, 429]
    assert after - before == 2


@pytest.mark.slow
def test_counts_add_up_across_gunicorn_workers(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    shutil.copy(DATA / "catalog.yaml", catalog)
    directory = tmp_path / "prometheus"
    directory.mkdir()
    stale = directory / "counter_4242.db"  # left by an earlier run: gunicorn.conf.py clears it
    stale.write_bytes(b"stale")
    with emulator_process(DATA / "accounts.yaml") as emulator_url:
        environment = app_environment(emulator_url, catalog, METRICS_PATH="/metrics")
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
        with gunicorn_app(environment, workers=3) as url:
            for _ in range(12):
                with requests.Session() as browser:  # a new connection: any worker answers
                    assert sign_in(browser, url, emulator_url, JANE).status_code == 302
            scrapes = [samples(requests.get(f"{url}/metrics", timeout=10).text) for _ in range(6)]
    assert {sign_ins(values, "success") for values in scrapes} == {12}
    assert not stale.exists()
    assert len(list(directory.glob("*.db"))) >= 2  # more than one worker wrote metrics
