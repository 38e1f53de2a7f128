"""End-to-end sign-ins per second through the real app, with Bitbucket's API 50 ms away.

The app runs under gunicorn (3 workers, 4 threads each), the emulator as its own process with
``latency`` faults on ``/2.0/user``, ``/2.0/user/emails`` and ``/2.0/user/workspaces``. Asked
for both lists, the callback fetches the profile with three concurrent calls: it should cost
about one call's latency, not three. The faults are then cleared to see what the latency added.

Run: ``.venv/bin/python bench/signin.py [--latency 0.05] [--people 200] [--threads 16]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from bitbucket_signin.emulator import generated_account
from tests.processes import app_environment, emulator_process, gunicorn_app
from tests.support import (
    DATA,
    grant_at_emulator,
    percentiles,
    start_sign_in,
    write_generated_catalog,
)

PROFILE_ENDPOINTS = ("user", "emails", "workspaces")
SEQUENTIAL = 20  # sign-ins one after another, for the callback's own duration


@dataclass(frozen=True)
class Timing:
    """One sign-in: the whole of it and the callback (code exchange, profile, session)."""

    total: float
    callback: float


@dataclass(frozen=True)
class Run:
    timings: list[Timing]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.timings) / self.seconds

    @property
    def callback(self) -> float:
        return statistics.median(t.callback for t in self.timings)


def timed_sign_in(app_url: str, emulator_url: str, number: int) -> Timing:
    """Sign in as generated account ``number`` in a new cookie jar, timing the callback."""
    with requests.Session() as http:
        started = time.perf_counter()
        authorize_url = start_sign_in(http, app_url)
        account = generated_account(number)["uuid"]
        callback_url = grant_at_emulator(emulator_url, authorize_url, account)
        called = time.perf_counter()
        response = http.get(callback_url, allow_redirects=False, timeout=30)
        done = time.perf_counter()
    if response.status_code != 302:
        raise RuntimeError(f"sign-in {number} answered {response.status_code}")
    return Timing(done - started, done - called)


def sign_ins(app_url: str, emulator_url: str, people: int, count: int, threads: int) -> Run:
    """``count`` sign-ins of the generated accounts in turn, ``threads`` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        timings = list(
            pool.map(
                lambda index: timed_sign_in(app_url, emulator_url, index % people + 1),
                range(count),
            )
        )
    return Run(timings, time.perf_counter() - started)


def api_call_seconds(emulator_url: str, calls: int = 20) -> float:
    """The median duration of one profile API call (the latency fault applies before auth)."""
    durations = []
    with requests.Session() as http:
        for _ in range(calls):
            started = time.perf_counter()
            http.get(f"{emulator_url}/2.0/user", headers={"Authorization": "Bearer x"}, timeout=10)
            durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def describe(name: str, run: Run) -> str:
    total = percentiles([t.total for t in run.timings])
    callback = percentiles([t.callback for t in run.timings])
    return f"{name:<36} {run.rate:6.1f} sign-ins/s; sign-in {total}; callback {callback}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per API call")
    parser.add_argument("--people", type=int, default=200, help="generated accounts")
    parser.add_argument("--threads", type=int, default=16, help="concurrent sign-ins")
    args = parser.parse_args()
    faults = [f"--fault={name}:latency={args.latency}" for name in PROFILE_ENDPOINTS]
    with tempfile.TemporaryDirectory() as folder:
        catalog = write_generated_catalog(Path(folder), args.people, lambda n: f"team-{n % 5}")
        with (
            emulator_process(
                DATA / "load_accounts.yaml", "--generate-accounts", str(args.people), *faults
            ) as emulator_url,
            # Both lists asked for, so that the callback makes all three profile calls.
            gunicorn_app(
                app_environment(
                    emulator_url,
                    catalog,
                    FETCH_EMAILS="true",
                    RATE_LIMIT="off",  # every visitor comes from 127.0.0.1
                    ALLOWED_WORKSPACES=generated_account(1)["workspaces"][0]["slug"],
                ),
                workers=3,
            ) as app_url,
        ):
            timed_sign_in(app_url, emulator_url, 1)  # warm up each side
            single = api_call_seconds(emulator_url)
            slow = sign_ins(app_url, emulator_url, args.people, SEQUENTIAL, 1)
            slow_busy = sign_ins(app_url, emulator_url, args.people, args.people, args.threads)
            requests.delete(f"{emulator_url}/_emulator/faults", timeout=5).raise_for_status()
            fast = sign_ins(app_url, emulator_url, args.people, SEQUENTIAL, 1)
            fast_busy = sign_ins(app_url, emulator_url, args.people, args.people, args.threads)
    added = slow.callback - fast.callback
    print(f"profile API call with the latency fault: {single * 1000:.1f} ms (median)")
    print(describe(f"{args.latency * 1000:.0f} ms API latency, 1 at a time", slow))
    print(
        describe(f"{args.latency * 1000:.0f} ms API latency, {args.threads} at a time", slow_busy)
    )
    print(describe("no added latency, 1 at a time", fast))
    print(describe(f"no added latency, {args.threads} at a time", fast_busy))
    print(
        f"callback p50 {slow.callback * 1000:.1f} ms vs 3 sequential calls "
        f"{3 * single * 1000:.1f} ms: ratio {slow.callback / (3 * single):.2f}"
    )
    print(
        f"latency added to the callback: {added * 1000:.1f} ms for 3 calls of "
        f"{args.latency * 1000:.0f} ms: {added / args.latency:.2f} call latencies "
        "(1 = fully concurrent, 3 = sequential)"
    )


if __name__ == "__main__":
    main()
