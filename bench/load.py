"""The load generator: its own process, talking to the servers over loopback.

``python -m bench.load page URL --cookie session=… --clients 4 --seconds 5`` keeps ``clients``
keep-alive connections busy with GETs of ``URL`` for ``seconds``;
``python -m bench.load signin APP EMULATOR --people 200 --clients 50 --seconds 10`` runs whole
sign-ins (start, the emulator's consent, the callback) of generated accounts, each in a new
cookie jar. Either prints one JSON line: requests, seconds, per second and latency percentiles.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from bitbucket_signin.emulator import generated_account
from tests.support import grant_at_emulator, start_sign_in

CLOSED_KEEP_ALIVE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def page_worker(url: str, cookie: str, stop: float) -> Callable[[], list[float]]:
    """GET ``url`` with ``cookie`` over one keep-alive connection until ``stop``."""
    parts = urlsplit(url)

    def run() -> list[float]:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        headers = {"Cookie": cookie} if cookie else {}
        durations = []
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                response = get(connection, parts.path or "/", headers)
            except CLOSED_KEEP_ALIVE:
                # A worker that stops (gunicorn replacing it) closes its idle connections:
                # like a browser, ask again over a new one; the wait counts.
                connection.close()
                response = get(connection, parts.path or "/", headers)
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
            durations.append(time.perf_counter() - started)
        connection.close()
        return durations

    return run


def get(
    connection: http.client.HTTPConnection, path: str, headers: dict[str, str]
) -> http.client.HTTPResponse:
    """GET ``path``, its response read."""
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    return response


def signin_worker(
    app_url: str, emulator_url: str, people: int, first: int, step: int, stop: float
) -> Callable[[], list[float]]:
    """Whole sign-ins of generated accounts ``first``, ``first + step``, … until ``stop``.

    A sign-in the app turns away for now (503: too many already wait on Bitbucket) counts
    as refused, with its duration negated."""

    def run() -> list[float]:
        durations = []
        number = first
        while time.perf_counter() < stop:
            account = generated_account(number % people + 1)["uuid"]
            with requests.Session() as browser:
                started = time.perf_counter()
                callback = grant_at_emulator(emulator_url, start_sign_in(browser, app_url), account)
                answer = browser.get(callback, allow_redirects=False, timeout=30)
                if answer.status_code not in (302, 503):
                    raise RuntimeError(f"sign-in answered {answer.status_code}")
                elapsed = time.perf_counter() - started
                durations.append(elapsed if answer.status_code == 302 else -elapsed)
            number += step
        return durations

    return run


def run_workers(workers: list[Callable[[], list[float]]], seconds: float) -> dict[str, float]:
    """Run the workers in threads; their durations summed up."""
    results: list[list[float]] = [[] for _ in workers]
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            results[index] = workers[index]()
        except BaseException as error:  # reported by the parent process
            errors.append(error)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(workers))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    durations = sorted(d for result in results for d in result if d >= 0)
    refused = sum(1 for result in results for d in result if d < 0)
    cuts = statistics.quantiles(durations, n=100, method="inclusive")
    return {
        "requests": len(durations),
        "refused": refused,
        "seconds": elapsed,
        "per_second": len(durations) / min(elapsed, seconds),
        "p50_ms": statistics.median(durations) * 1000,
        "p99_ms": cuts[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    page = modes.add_parser("page")
    page.add_argument("url")
    page.add_argument("--cookie", default="")
    signin = modes.add_parser("signin")
    signin.add_argument("app")
    signin.add_argument("emulator")
    signin.add_argument("--people", type=int, default=200)
    for mode in (page, signin):
        mode.add_argument("--clients", type=int, default=4)
        mode.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    stop = time.perf_counter() + args.seconds
    if args.mode == "page":
        workers = [page_worker(args.url, args.cookie, stop) for _ in range(args.clients)]
    else:
        workers = [
            signin_worker(args.app, args.emulator, args.people, i, args.clients, stop)
            for i in range(args.clients)
        ]
    print(json.dumps(run_workers(workers, args.seconds)))


if __name__ == "__main__":
    main()
