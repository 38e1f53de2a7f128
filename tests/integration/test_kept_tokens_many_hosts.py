"""Kept tokens on two hosts (two gunicorn instances of two workers each, one Redis): one
refresh per expiry, whichever worker of whichever host the requests reach."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ..processes import two_hosts as hosts
from ..support import DATA, JANE, sign_in

APP = "tests.person_app:app"
CONCURRENT = 20
DUE_AT_ONCE = 60  # seconds: within the app's refresh margin, so the token is due at once
LIFETIME = 7200


@pytest.fixture(scope="module")
def two_hosts(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[str, ...]]:
    catalog = tmp_path_factory.mktemp("kept") / "catalog.yaml"
    shutil.copy(DATA / "catalog.yaml", catalog)
    with hosts(catalog, redis_url, app=APP, KEEP_TOKENS="true") as urls:
        yield urls


def token_lifetime(emulator_url: str, seconds: int) -> None:
    requests.put(
        f"{emulator_url}/_emulator/token-lifetime", json={"seconds": seconds}, timeout=5
    ).raise_for_status()


def refreshes(emulator_url: str) -> list[int]:
    """The status of each refresh call the emulator answered."""
    log = requests.get(f"{emulator_url}/_emulator/requests?endpoint=token", timeout=5).json()
    return [e["status"] for e in log["requests"] if e["grant_type"] == "refresh_token"]


def signed_in_with_a_token_due(host: str, emulator_url: str) -> dict[str, str]:
    """Jane's session cookie, signed in on ``host`` with an access token already due."""
    token_lifetime(emulator_url, DUE_AT_ONCE)
    with requests.Session() as browser:
        assert sign_in(browser, host, emulator_url, JANE).status_code == 302
        cookies = dict(browser.cookies)
    token_lifetime(emulator_url, LIFETIME)
    requests.delete(f"{emulator_url}/_emulator/requests", timeout=5).raise_for_status()
    return cookies


def all_at_once(urls: list[str], cookies: dict[str, str]) -> list[requests.Response]:
    """GET every URL at the same moment, each on a new connection (so any worker answers)."""
    start = threading.Barrier(len(urls))

    def get(url: str) -> requests.Response:
        start.wait(10)
        return requests.get(url, cookies=cookies, allow_redirects=False, timeout=30)

    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(get, urls))


def test_twenty_requests_past_expiry_on_two_hosts_make_one_refresh(
    two_hosts: tuple[str, ...],
) -> None:
    host_a, host_b, emulator_url = two_hosts
    cookies = signed_in_with_a_token_due(host_a, emulator_url)
    urls = [f"{(host_a, host_b)[i % 2]}/bitbucket/me" for i in range(CONCURRENT)]

    answers = all_at_once(urls, cookies)

    assert [a.status_code for a in answers] == [200] * CONCURRENT
    assert {(a.json()["status"], a.json()["user"]["uuid"]) for a in answers} == {(200, JANE)}
    assert refreshes(emulator_url) == [200]
    assert all_at_once(urls[:4], cookies)[0].status_code == 200
    assert refreshes(emulator_url) == [200]  # the new token is fresh: no more refreshes


def test_a_revoked_refresh_token_signs_the_person_out_on_both_hosts(
    two_hosts: tuple[str, ...],
) -> None:
    host_a, host_b, emulator_url = two_hosts
    cookies = signed_in_with_a_token_due(host_b, emulator_url)
    revoked = requests.post(f"{emulator_url}/_emulator/revoke/{JANE}", timeout=5)
    assert revoked.json()["revoked"] >= 2

    answers = all_at_once([f"{host_a}/bitbucket/me", f"{host_b}/bitbucket/me"] * 3, cookies)

    statuses = [a.status_code for a in answers]
    assert 401 in statuses  # the request that tried the refresh (the rest: 401 or signed out)
    assert set(statuses) <= {302, 401}
    assert refreshes(emulator_url) == [400]
    for host in (host_a, host_b):
        home = requests.get(f"{host}/", cookies=cookies, allow_redirects=False, timeout=10)
        assert home.status_code == 302
        assert "/signin" in home.headers["Location"]
