"""Load: 200 people sign in at once through gunicorn's workers, and nobody becomes someone else;
a catalog edit under continuous requests reaches every worker within seconds, failing none.

Loopback only and bounded: the emulator runs as its own process with 200 generated accounts,
the app as ``gunicorn`` with three threaded workers. The test prints what it measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from bitbucket_signin.emulator import generated_account

from ..processes import app_environment, emulator_process, gunicorn_app
from ..support import (
    DATA,
    generated_display_name,
    percentiles,
    sign_in,
    write_generated_catalog,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

PEOPLE = 200
GROUPS = 5
THREADS = 32
HAMMERS = 16
MOVED, MOVED_TO = "team-3", "team-4"
SETTLE = 2.5  # seconds after an edit by which every worker must answer from the new catalog
XHR = {"X-Requested-With": "XMLHttpRequest"}


def team(number: int) -> str:
    return f"team-{number % GROUPS}"


def team_after_edit(number: int) -> str:
    return MOVED_TO if team(number) == MOVED else team(number)


def ref(number: int) -> str:
    return f"user:default/user{number:04d}"


def ownership(number: int, group: str) -> list[str]:
    return sorted([ref(number), f"group:default/{group}"])


@dataclass(frozen=True)
class Deployment:
    app_url: str
    emulator_url: str
    folder: Path


@dataclass(frozen=True)
class SignedIn:
    number: int
    status: int
    location: str | None
    cookies: dict[str, str]
    seconds: float


@dataclass(frozen=True)
class SignIns:
    people: list[SignedIn]
    seconds: float


@dataclass(frozen=True, eq=False)
class Answer:
    """One ``/refresh`` during the catalog edit: when it was sent and received, what it said."""

    number: int
    sent: float
    received: float
    status: int
    user_entity_ref: str | None
    ownership: list[str] | None


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("load")
    catalog = write_generated_catalog(folder, PEOPLE, team)
    accounts = DATA / "load_accounts.yaml"
    with (
        emulator_process(accounts, "--generate-accounts", str(PEOPLE)) as emulator_url,
        gunicorn_app(
            # every visitor comes from 127.0.0.1: a limit far above the default 30 a minute
            app_environment(emulator_url, catalog, RATE_LIMIT="100000 per minute"),
            workers=3,
        ) as app_url,
    ):
        yield Deployment(app_url, emulator_url, folder)


@pytest.fixture(scope="module")
def sign_ins(deployment: Deployment) -> SignIns:
    """Every generated account signs in, ``THREADS`` at a time, each in its own cookie jar."""

    def one(number: int) -> SignedIn:
        with requests.Session() as http:
            started = time.perf_counter()
            response = sign_in(
                http, deployment.app_url, deployment.emulator_url, generated_account(number)["uuid"]
            )
            seconds = time.perf_counter() - started
            return SignedIn(
                number,
                response.status_code,
                response.headers.get("Location"),
                http.cookies.get_dict(),
                seconds,
            )

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        people = list(pool.map(one, range(1, PEOPLE + 1)))
    return SignIns(people, time.perf_counter() - started)


def refresh(app_url: str, cookies: dict[str, str]) -> requests.Response:
    """Backstage's refresh call, on a new connection (so any worker may answer)."""
    return requests.get(
        f"{app_url}/api/auth/bitbucket/refresh", cookies=cookies, headers=XHR, timeout=10
    )


def report(capsys: pytest.CaptureFixture[str], *lines: str) -> None:
    with capsys.disabled():
        print("\n" + "\n".join(f"[load] {line}" for line in lines))


def test_concurrent_sign_ins_never_cross_identities(
    deployment: Deployment, sign_ins: SignIns, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = [(p.number, p.status, p.location) for p in sign_ins.people if p.status != 302]
    assert not failed
    assert {p.location for p in sign_ins.people} == {"/"}

    def mismatches(person: SignedIn) -> list[str]:
        number, account = person.number, generated_account(person.number)
        data = refresh(deployment.app_url, person.cookies).json()
        identity = data["backstageIdentity"]["identity"]
        home = requests.get(f"{deployment.app_url}/", cookies=person.cookies, timeout=10)
        problems = []
        if identity["userEntityRef"] != ref(number):
            problems.append(f"refresh userEntityRef {identity['userEntityRef']}")
        if identity["ownershipEntityRefs"] != ownership(number, team(number)):
            problems.append(f"ownership {identity['ownershipEntityRefs']}")
        if data["profile"]["displayName"] != account["display_name"]:
            problems.append(f"profile displayName {data['profile']['displayName']!r}")
        if f"Signed in as {generated_display_name(number)}<" not in home.text:
            problems.append(f"home page {home.status_code}")
        if account["uuid"] not in home.text:
            problems.append("home page shows another Bitbucket account")
        return [f"user{number:04d}: {problem}" for problem in problems]

    with ThreadPoolExecutor(THREADS) as pool:
        crossed = [problem for found in pool.map(mismatches, sign_ins.people) for problem in found]
    assert not crossed
    report(
        capsys,
        f"{PEOPLE} sign-ins, {THREADS} at a time: {PEOPLE / sign_ins.seconds:.0f} sign-ins/s "
        f"({sign_ins.seconds:.2f} s)",
        f"sign-in latency (start, consent, callback): "
        f"{percentiles([p.seconds for p in sign_ins.people])}",
    )


def test_catalog_edit_reaches_every_worker_without_failures(
    deployment: Deployment, sign_ins: SignIns, capsys: pytest.CaptureFixture[str]
) -> None:
    people = [person for person in sign_ins.people if person.status == 302]
    assert len(people) == PEOPLE
    answers: list[Answer] = []
    stop = threading.Event()

    def hammer(first: int) -> None:
        for index in range(first, 10**9, HAMMERS):
            if stop.is_set():
                return
            person = people[index % PEOPLE]
            sent = time.monotonic()
            response = refresh(deployment.app_url, person.cookies)
            identity = (
                response.json()["backstageIdentity"]["identity"]
                if response.status_code == 200
                else {}
            )
            answers.append(
                Answer(
                    person.number,
                    sent,
                    time.monotonic(),
                    response.status_code,
                    identity.get("userEntityRef"),
                    identity.get("ownershipEntityRefs"),
                )
            )

    with ThreadPoolExecutor(HAMMERS) as pool:
        hammers = [pool.submit(hammer, first) for first in range(HAMMERS)]
        time.sleep(1.0)
        edited_at = time.monotonic()
        write_generated_catalog(deployment.folder, PEOPLE, team_after_edit)
        time.sleep(SETTLE + 1.5)
        stop.set()
        for running in hammers:
            running.result()

    assert [a for a in answers if a.status != 200] == []
    assert [a for a in answers if a.user_entity_ref != ref(a.number)] == []
    before = {a: a.ownership == ownership(a.number, team(a.number)) for a in answers}
    after = {a: a.ownership == ownership(a.number, team_after_edit(a.number)) for a in answers}
    assert [a for a in answers if not before[a] and not after[a]] == []
    moved = [a for a in answers if team(a.number) == MOVED]
    stale = [a for a in moved if before[a]]
    fresh = [a for a in moved if after[a]]
    assert [a for a in stale if a.sent >= edited_at + SETTLE] == []
    assert [a for a in fresh if a.received < edited_at] == []
    assert [a for a in fresh if a.sent >= edited_at + SETTLE], "no answers after the settle time"
    seen_everywhere = max((a.sent for a in stale), default=edited_at) - edited_at
    first_seen = min(a.received for a in fresh) - edited_at
    duration = max(a.received for a in answers) - min(a.sent for a in answers)
    report(
        capsys,
        f"catalog edit under load: {len(answers)} refreshes in {duration:.1f} s "
        f"({len(answers) / duration:.0f}/s, {HAMMERS} clients, a new connection each), all 200",
        f"refresh latency: {percentiles([a.received - a.sent for a in answers])}",
        f"edit first seen after {first_seen:.2f} s; last old answer sent {seen_everywhere:.2f} s "
        f"after the edit (limit {SETTLE} s)",
    )
