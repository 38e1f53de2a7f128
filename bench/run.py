"""Every benchmark in one run: a table, ``BENCHMARKS.md``, a chart, and a failing exit on a miss.

Each figure is a ratio of two things measured side by side in this run, so most of the
machine's noise cancels. Servers run under gunicorn, Bitbucket is the emulator (its own
process), and the load comes from ``bench/load.py`` in a process of its own, over loopback.

Run: ``./scripts/bench.sh`` (or ``.venv/bin/python -m bench.run [--quick]``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import matplotlib
import requests

matplotlib.use("Agg")
from matplotlib import pyplot

from bitbucket_signin.config import DEFAULTS
from bitbucket_signin.emulator import generated_account
from tests.processes import (
    ROOT,
    app_environment,
    emulator_process,
    gunicorn_app,
    redis_process,
)
from tests.support import (
    CLIENT_ID,
    CLIENT_SECRET,
    DATA,
    grant_at_emulator,
    replace_file,
    start_sign_in,
    write_generated_catalog,
)

from . import catalog_load

LATENCY = 0.05  # seconds the emulator adds to every Bitbucket request in figures 3 and 5
BITBUCKET_ENDPOINTS = ("token", "user", "emails", "workspaces")
RATE_LIMIT_OFF = {"RATE_LIMIT": "off"}  # every load client comes from 127.0.0.1
RELOAD_LIMIT = 3.0  # seconds: figure 6's target for an edit to reach every worker
POLL_SECONDS = 0.01  # how often figure 6 asks whether every worker has the edit
SHIPPED_WORKERS = 2  # one per core, as README's deployment runs it: gunicorn -w 2


@dataclass(frozen=True)
class Figure:
    """One line of the table: what was compared, the value, and the limit it must keep.

    ``at_most`` says which side of ``limit`` passes; without a limit the value is reported.
    """

    number: str
    name: str
    measured: str
    value: float
    limit: float | None = None
    at_most: bool = True
    unit: str = ""

    @property
    def met(self) -> bool | None:
        if self.limit is None:
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    @property
    def target(self) -> str:
        if self.limit is None:
            return "reported"
        return f"{'<=' if self.at_most else '>='} {self.limit:g}{self.unit}"

    @property
    def share_of_limit(self) -> float:
        """How much of its allowance the figure uses: 1 is the limit, below 1 is met."""
        assert self.limit is not None
        return self.value / self.limit if self.at_most else self.limit / self.value

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "-"}[self.met]


@dataclass(frozen=True)
class Options:
    people: int
    seconds: float
    rounds: int
    signins: int
    edits: int  # figure 6's catalog edits


def load(*arguments: str) -> dict[str, float]:
    """``bench/load.py`` in its own process; its JSON answer."""
    command = [sys.executable, "-m", "bench.load", *arguments]
    output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    result: dict[str, float] = json.loads(output.stdout)
    return result


def page_load(url: str, cookie: str, seconds: float) -> dict[str, float]:
    return load("page", url, "--cookie", cookie, "--clients", "4", "--seconds", str(seconds))


def session_cookie(app_url: str, emulator_url: str, number: int = 1) -> str:
    """Sign generated account ``number`` in; its ``Cookie`` header."""
    with requests.Session() as browser:
        account = generated_account(number)["uuid"]
        callback = grant_at_emulator(emulator_url, start_sign_in(browser, app_url), account)
        answer = browser.get(callback, allow_redirects=False, timeout=60)
        if answer.status_code != 302:
            raise RuntimeError(f"sign-in answered {answer.status_code}: {answer.text[:200]}")
        return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


def alternate(
    first: Callable[[], dict[str, float]], second: Callable[[], dict[str, float]], rounds: int
) -> tuple[float, float, float]:
    """Throughput of ``first`` over ``second``, measured in turns (ABBA: the order swaps each
    round, so neither side always goes first); the medians and the median of each round's
    ratio."""
    ones, twos, ratios = [], [], []
    for round_number in range(rounds):
        if round_number % 2:
            two, one = second()["per_second"], first()["per_second"]
        else:
            one, two = first()["per_second"], second()["per_second"]
        ones.append(one)
        twos.append(two)
        ratios.append(one / two)
    return statistics.median(ones), statistics.median(twos), statistics.median(ratios)


def protected_pages(
    first: tuple[str, str], second: tuple[str, str], options: Options
) -> tuple[float, float, float]:
    """``/protected`` of two (app, cookie) pairs under the same load, in turns (``alternate``)."""
    return alternate(
        lambda: page_load(f"{first[0]}/protected", first[1], options.seconds),
        lambda: page_load(f"{second[0]}/protected", second[1], options.seconds),
        options.rounds,
    )


@contextmanager
def bitbucket(*faults: str, people: int = 200) -> Iterator[str]:
    arguments = ["--generate-accounts", str(people), *(f"--fault={f}" for f in faults)]
    with emulator_process(DATA / "load_accounts.yaml", *arguments) as url:
        yield url


def protected_page(options: Options, folder: Path) -> Figure:
    """1. The real user loader at 100,000 users against a constant-user Flask-Login app."""
    catalog = write_generated_catalog(folder, options.people, lambda n: f"team-{n % 5}")
    with bitbucket() as emulator_url:
        environment = app_environment(emulator_url, catalog, **RATE_LIMIT_OFF)
        with (
            gunicorn_app(environment, 2, app="bench.apps:our_app()") as ours,
            gunicorn_app(environment, 2, app="bench.apps:constant_app()") as floor,
        ):
            cookie = session_cookie(ours, emulator_url)
            mine, constant, ratio = protected_pages((ours, cookie), (floor, cookie), options)
    return Figure(
        "1",
        f"protected page, real loader at {options.people:,} users / constant loader",
        f"{mine:.0f} / {constant:.0f} req/s",
        ratio,
        limit=0.9,
        at_most=False,
    )


def redis_sessions(options: Options, folder: Path) -> Figure:
    """4. The protected page with Redis sessions against signed-cookie sessions."""
    catalog = write_generated_catalog(folder, 1000, lambda n: f"team-{n % 5}")
    with bitbucket() as emulator_url, redis_process() as redis_url:
        cookies = app_environment(emulator_url, catalog, **RATE_LIMIT_OFF)
        in_redis = {**cookies, "FLASK_BITBUCKET_SESSION_REDIS_URL": redis_url}
        with (
            gunicorn_app(cookies, 2, app="bench.apps:our_app()") as cookie_app,
            gunicorn_app(in_redis, 2, app="bench.apps:our_app()") as redis_app,
        ):
            signed = session_cookie(cookie_app, emulator_url)
            stored = session_cookie(redis_app, emulator_url)
            with_redis, with_cookie, ratio = protected_pages(
                (redis_app, stored), (cookie_app, signed), options
            )
    return Figure(
        "4",
        "protected page, Redis sessions / signed-cookie sessions",
        f"{with_redis:.0f} / {with_cookie:.0f} req/s",
        ratio,
        limit=0.8,
        at_most=False,
    )


def callbacks(options: Options, folder: Path) -> list[Figure]:
    """3. The callback with Bitbucket ``LATENCY`` away on every call, token call included."""
    catalog = write_generated_catalog(folder, 200, lambda n: f"team-{n % 5}")
    faults = [f"{endpoint}:latency={LATENCY}" for endpoint in BITBUCKET_ENDPOINTS]
    with bitbucket(*faults) as emulator_url:
        environment = app_environment(emulator_url, catalog, **RATE_LIMIT_OFF)
        with gunicorn_app(environment, 2) as app_url:
            session_cookie(app_url, emulator_url)  # warm up both sides
            ours = [timed_callback(app_url, emulator_url, n) for n in range(1, options.signins)]
            peer = [sequential_peer(emulator_url, app_url, n) for n in range(1, options.signins)]
    mine, theirs = statistics.median(ours), statistics.median(peer)
    limit = 2 * LATENCY + 0.015
    latency_ms = LATENCY * 1000
    return [
        Figure(
            "3",
            f"callback with Bitbucket {latency_ms:.0f} ms away (L), p50",
            f"{mine * 1000:.1f} ms = {mine / LATENCY:.2f} L",
            mine / LATENCY,
            limit=round(limit / LATENCY, 2),
            unit=" L (2 L + 15 ms)",
        ),
        Figure(
            "3'",
            "  beside: token + 3 profile calls in turn, a new connection each",
            f"{theirs * 1000:.1f} ms = {theirs / LATENCY:.2f} L",
            theirs / LATENCY,
        ),
    ]


def timed_callback(app_url: str, emulator_url: str, number: int) -> float:
    """Seconds our callback took for a sign-in of generated account ``number``."""
    with requests.Session() as browser:
        account = generated_account(number)["uuid"]
        callback = grant_at_emulator(emulator_url, start_sign_in(browser, app_url), account)
        started = time.perf_counter()
        answer = browser.get(callback, allow_redirects=False, timeout=60)
        elapsed = time.perf_counter() - started
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in answered {answer.status_code}")
    return elapsed


def sequential_peer(emulator_url: str, app_url: str, number: int) -> float:
    """Seconds for what a typical peer's callback does: the token call, then the user, emails
    and workspaces, one after another, each over a new connection."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = f"{app_url}/api/auth/bitbucket/handler/frame"
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "state": secrets.token_urlsafe(16),
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
    )
    account = generated_account(number)["uuid"]
    callback = grant_at_emulator(
        emulator_url, f"{emulator_url}/site/oauth2/authorize?{query}", account
    )
    code = callback.split("code=", 1)[1].split("&", 1)[0]
    started = time.perf_counter()
    token = requests.post(
        f"{emulator_url}/site/oauth2/access_token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=30,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/2.0/user", "/2.0/user/emails", "/2.0/user/workspaces"):
        requests.get(f"{emulator_url}{path}", headers=headers, timeout=30).raise_for_status()
    return time.perf_counter() - started


def signins_per_second(options: Options, folder: Path) -> Figure:
    """5. Sign-ins per second, 50 clients at once, under the shipped ``gunicorn.conf.py``."""
    catalog = write_generated_catalog(folder, 1000, lambda n: f"team-{n % 5}")
    faults = [f"{endpoint}:latency={LATENCY}" for endpoint in BITBUCKET_ENDPOINTS]
    with bitbucket(*faults, people=1000) as emulator_url:
        environment = app_environment(emulator_url, catalog, **RATE_LIMIT_OFF)
        with gunicorn_app(environment, SHIPPED_WORKERS, as_shipped=True) as url:
            session_cookie(url, emulator_url)
            result = load(
                "signin", url, emulator_url, "--people", "1000", "--clients", "50",
                "--seconds", str(options.seconds * 2),
            )  # fmt: skip
    attempts = result["requests"] + result["refused"]
    return Figure(
        "5",
        f"sign-ins/s, 50 clients, Bitbucket {LATENCY * 1000:.0f} ms away, gunicorn.conf.py "
        f"with -w {SHIPPED_WORKERS}",
        f"p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, "
        f"{result['refused']:.0f} of {attempts:.0f} turned away (503)",
        result["per_second"],
    )


def catalog_figures(options: Options, folder: Path) -> list[Figure]:
    """2. Catalog load, memory and lookups (``bench/catalog_load.py``)."""
    sizes = sorted({1000, options.people // 10, options.people})
    figures = catalog_load.measure(sizes, folder)
    targets = catalog_load.TARGETS
    rows = []
    for load in figures["load"]:
        if load["users"] == options.people:
            parser = "json.load" if load["format"] == "json" else "PyYAML's C parser"
            rows.append(
                Figure(
                    "2",
                    f"catalog load ({load['format'].upper()}, {load['users']:,} users) / {parser}",
                    f"{load['load_s']:.2f} s / {load['parse_s']:.2f} s",
                    load["ratio"],
                    limit=targets[load["format"]],
                )
            )
    for memory in figures["memory"]:
        if memory["users"] == options.people:
            shared = figures["shared"][memory["format"]]["sample"]["ratio"]
            rss = memory["worker"]["rss_mb"]
            rows.append(
                Figure(
                    "2",
                    f"resident memory per worker ({memory['format'].upper()}, "
                    f"{memory['users']:,} users), MB",
                    f"parse alone {memory['parse_only']['rss_mb']:.0f} MB; 4 forked: {shared:.2f}x",
                    rss,
                    limit=targets["memory_mb"],
                    unit=" MB",
                )
            )
    lookup = figures["lookup"]
    rows.append(
        Figure(
            "2",
            f"lookup at {lookup['large_users']:,} users / at {lookup['small_users']:,}",
            f"{lookup['large_us']:.2f} µs / {lookup['small_us']:.2f} µs",
            lookup["ratio"],
            limit=targets["lookup"],
        )
    )
    CATALOG_REPORT.append(catalog_load.report(figures))
    return rows


def catalog_reload(options: Options, folder: Path) -> list[Figure]:
    """6. Catalog edits at 100,000 users: how soon every worker has each, and the protected
    page's p99 while the workers reload, against its p99 when idle just before; the median of
    ``options.edits`` edits."""
    catalog = catalog_load.write_catalog(folder / "catalog.json", options.people)
    with bitbucket() as emulator_url:
        environment = app_environment(emulator_url, catalog, **RATE_LIMIT_OFF)
        with gunicorn_app(
            environment, SHIPPED_WORKERS, as_shipped=True, app="bench.apps:our_app(True)"
        ) as url:
            cookie = session_cookie(url, emulator_url)
            edits = [
                edit_under_load(url, cookie, catalog, number, options)
                for number in range(1, options.edits + 1)
            ]
    seconds = [edit.seconds for edit in edits]
    ratios = [edit.ratio for edit in edits]
    middle = sorted(edits, key=lambda edit: edit.ratio)[options.edits // 2]
    return [
        Figure(
            "6",
            f"catalog edit at {options.people:,} users reaches every worker, s",
            f"{SHIPPED_WORKERS} workers (gunicorn.conf.py: the master reloads), check "
            f"interval {DEFAULTS['CATALOG_CHECK_INTERVAL']:g} s; median of {options.edits} edits, "
            f"{min(seconds):.2f}-{max(seconds):.2f} s",
            statistics.median(seconds),
            limit=RELOAD_LIMIT,
            unit=" s",
        ),
        Figure(
            "6",
            "protected page p99 while the workers reload / idle",
            f"median edit {middle.during_p99_ms:.1f} ms / {middle.idle_p99_ms:.1f} ms; "
            f"{min(ratios):.2f}-{max(ratios):.2f}",
            statistics.median(ratios),
            limit=2,
        ),
    ]


@dataclass(frozen=True)
class Edit:
    seconds: float  # from the edit in place until every worker serves it
    idle_p99_ms: float  # the protected page's, just before
    during_p99_ms: float  # the protected page's, from shortly before the edit

    @property
    def ratio(self) -> float:
        return self.during_p99_ms / self.idle_p99_ms


def edit_under_load(url: str, cookie: str, catalog: Path, number: int, options: Options) -> Edit:
    """Edit ``number``: person 1's display name becomes ``Person 0001 (edit N)`` while the
    protected page is under load, from shortly before the edit until the reload's limit after
    it (``RELOAD_LIMIT``); the idle p99 is that of as long a load just before."""
    window = options.seconds / 4 + RELOAD_LIMIT
    idle = page_load(f"{url}/protected", cookie, window)
    previous = "Person 0001" if number == 1 else f"Person 0001 (edit {number - 1})"
    edited_name = f"Person 0001 (edit {number})"
    # Edited as the docs advise: the new file written beside the catalog, then moved over it.
    staged = catalog.with_name(f"staged-{catalog.name}")
    replace_file(staged, catalog.read_text().replace(f'"{previous}"', f'"{edited_name}"', 1))
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(page_load, f"{url}/protected", cookie, window)
        time.sleep(options.seconds / 4)  # the load is under way before the edit
        os.replace(staged, catalog)
        edited = time.perf_counter()
        seconds = every_worker_answers(url, cookie, edited_name, edited)
        during = busy.result()
    return Edit(seconds, idle["p99_ms"], during["p99_ms"])


def every_worker_answers(url: str, cookie: str, text: str, since: float) -> float:
    """Seconds from ``since`` until every worker serves ``text``: answers from as many
    workers (by pid) as there are, all with ``text`` since the last answer without it.
    (Workers may be new ones: gunicorn's master replaces them after a reload.)

    One question every ``POLL_SECONDS``: asking nonstop would make this loop one more
    process competing for the two cores, beside the load it measures under."""
    since_last_miss: set[str] = set()
    deadline = since + 60
    while time.perf_counter() < deadline:
        time.sleep(POLL_SECONDS)
        # A new connection each time, so that every worker gets asked.
        answer = requests.get(f"{url}/protected", headers={"Cookie": cookie}, timeout=30)
        if text not in answer.text:
            since_last_miss.clear()
            continue
        since_last_miss.add(answer.headers["X-Worker-Pid"])
        if len(since_last_miss) == SHIPPED_WORKERS:
            return time.perf_counter() - since
    raise RuntimeError("the edit did not reach every worker within a minute")


STEPS: dict[str, Callable[[Options, Path], Figure | list[Figure]]] = {
    "protected-page": protected_page,
    "catalog": catalog_figures,
    "callback": callbacks,
    "redis": redis_sessions,
    "signins": signins_per_second,
    "reload": catalog_reload,
}
CATALOG_REPORT: list[str] = []  # catalog_load's own tables, for BENCHMARKS.md


def table(figures: list[Figure]) -> str:
    lines = [
        "| # | figure | measured | value | target | |",
        "|---|---|---|---:|---|---|",
    ]
    lines += [
        f"| {f.number} | {f.name} | {f.measured} | {f.value:.2f} | {f.target} | {f.verdict} |"
        for f in figures
    ]
    return "\n".join(lines)


def write_report(figures: list[Figure], chart: Path, seconds: float) -> str:
    machine = f"{platform.machine()}, Python {platform.python_version()}, {os.cpu_count()} cores"
    return (
        "# Benchmarks\n\n"
        f"One run of `./scripts/bench.sh` on {datetime.now(UTC):%Y-%m-%d} ({machine}), "
        f"{seconds:.0f} s. Each ratio compares two things measured side by side in this run; "
        "`bench/README.md` says what each figure measures.\n\n"
        f"{table(figures)}\n\n![The ratios against their targets](bench/{chart.name})\n"
        + "".join(f"\n## Catalog details\n\n```text\n{text}\n```\n" for text in CATALOG_REPORT)
    )


def draw(figures: list[Figure], path: Path) -> None:
    """Each figure with a limit as the share of its allowance it uses (1 = the limit)."""
    shown = [f for f in figures if f.limit is not None]
    figure, axes = pyplot.subplots(figsize=(10, 0.6 + 0.45 * len(shown)))
    shares = [f.share_of_limit for f in shown]
    colors = ["#2e7d32" if f.met else "#c62828" for f in shown]
    axes.barh([f"{f.number} {f.name.strip()}"[:72] for f in shown], shares, color=colors)
    for index, f in enumerate(shown):
        label = f"  {f.value:.2f} (target {f.target})"
        axes.text(shares[index], index, label, va="center", fontsize=8)
    axes.axvline(1, color="#444444", linewidth=1)
    axes.set_xlim(0, max(2.0, max(shares) * 1.6))
    axes.invert_yaxis()
    axes.set_xlabel("share of the target's allowance used (left of 1: met, in green)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)


def _servers_to_log(path: Path) -> Callable[[str], None]:
    """Send this process's output, and so every server's it starts, to ``path``; returns how
    to print to the terminal still."""
    path.parent.mkdir(exist_ok=True)
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    with path.open("w") as log:
        os.dup2(log.fileno(), sys.stdout.fileno())
        os.dup2(log.fileno(), sys.stderr.fileno())
    print(f"[bench] servers' output: {path}", file=terminal)
    return lambda text: print(text, file=terminal)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller and shorter: a smoke run")
    parser.add_argument("--only", choices=sorted(STEPS), nargs="+", default=sorted(STEPS))
    args = parser.parse_args()
    options = (
        Options(people=10_000, seconds=1.5, rounds=1, signins=6, edits=1)
        if args.quick
        else Options(people=100_000, seconds=3.0, rounds=6, signins=21, edits=5)
    )
    say = _servers_to_log(ROOT / "test-artifacts" / "bench-servers.log")
    started = time.perf_counter()
    figures: list[Figure] = []
    for name in STEPS:
        if name not in args.only:
            continue
        say(f"[bench] {name} …")
        with tempfile.TemporaryDirectory() as folder:
            result = STEPS[name](options, Path(folder))
        figures.extend(result if isinstance(result, list) else [result])
    figures.sort(key=lambda f: f.number)
    say(table(figures))
    chart = ROOT / "bench" / "benchmarks.png"
    draw(figures, chart)
    (ROOT / "BENCHMARKS.md").write_text(write_report(figures, chart, time.perf_counter() - started))
    missed = [f for f in figures if f.met is False]
    for figure in missed:
        say(f"[bench] MISSED: {figure.number} {figure.name}: {figure.value:.2f}, {figure.target}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
