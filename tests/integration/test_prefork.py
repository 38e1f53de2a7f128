"""gunicorn's master reads the catalog for all its workers (``gunicorn.conf.py`` and
``bitbucket_signin/prefork.py``), over real HTTP against a real gunicorn."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from ..processes import app_environment, emulator_process, gunicorn_master
from ..support import DATA, JANE, replace_file, sign_in

WORKERS = 2


@pytest.fixture(scope="module")
def host(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, int, Path, dict[str, str]]]:
    """A gunicorn host with two workers, its master's pid, its catalog and Jane's cookies."""
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    shutil.copy(DATA / "catalog.yaml", catalog)
    with emulator_process(DATA / "accounts.yaml") as emulator_url:
        environment = app_environment(emulator_url, catalog, CATALOG_CHECK_INTERVAL="0.05")
        with gunicorn_master(environment, WORKERS) as (url, master), requests.Session() as browser:
            assert sign_in(browser, url, emulator_url, JANE).status_code == 302
            yield url, master, catalog, dict(browser.cookies)


def names_served(url: str, cookies: dict[str, str], answers: int = 8) -> set[str]:
    """Whom the home page says is signed in, over new connections (so every worker answers)."""
    names = set()
    for _ in range(answers):
        page = requests.get(f"{url}/", cookies=cookies, allow_redirects=False, timeout=10).text
        names.add(page.split("Signed in as ", 1)[1].split("<", 1)[0].strip())
    return names


def workers_of(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text()
    return {int(pid) for pid in children.split()}


def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.05)


def replaced(master: int, before: set[int]) -> bool:
    """Whether the master has replaced every worker of ``before`` with as many new ones."""
    now = workers_of(master)
    return len(now) == WORKERS and not now & before


def test_the_master_reads_an_edit_for_every_worker(
    host: tuple[str, int, Path, dict[str, str]],
) -> None:
    """While the master is stopped, no worker reads the edit, though each would look at the
    files every 0.05 s if it watched them itself; once it runs again, the master reads the
    edit and replaces its workers with ones that have it."""
    url, master, catalog, cookies = host
    assert names_served(url, cookies) == {"Jane Doe"}
    before = workers_of(master)
    os.kill(master, signal.SIGSTOP)
    try:
        replace_file(catalog, catalog.read_text().replace("Jane Doe", "Jane Q. Doe"))
        time.sleep(0.2)  # four check intervals of a worker (real time, in other processes)
        assert names_served(url, cookies) == {"Jane Doe"}
    finally:
        os.kill(master, signal.SIGCONT)
    until(lambda: replaced(master, before))
    assert names_served(url, cookies, answers=12) == {"Jane Q. Doe"}


def test_a_broken_edit_keeps_the_last_good_catalog_in_every_worker(
    host: tuple[str, int, Path, dict[str, str]],
) -> None:
    url, master, catalog, cookies = host
    good = catalog.read_text()
    shown = names_served(url, cookies)
    assert len(shown) == 1
    before = workers_of(master)
    replace_file(catalog, good + "\n---\nkind: User\nmetadata: {name: 'j doe'}\n")
    until(lambda: replaced(master, before))
    assert names_served(url, cookies, answers=12) == shown
    before = workers_of(master)
    replace_file(catalog, good.replace("Jane", "Janet"))
    until(lambda: replaced(master, before))
    assert names_served(url, cookies, answers=12) == {shown.pop().replace("Jane", "Janet")}
