"""Two hosts as one: two gunicorn instances sharing the secret, the catalog and Redis."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..frontend_support import AUTH, PREFIX, XHR, published_keys, verify
from ..processes import two_hosts as hosts
from ..support import DATA, JANE, csrf_token, replace_file, sign_in


@pytest.fixture(scope="module")
def two_hosts(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[tuple[str, str, str, Path]]:
    catalog = tmp_path_factory.mktemp("shared") / "catalog.yaml"
    shutil.copy(DATA / "catalog.yaml", catalog)
    with hosts(catalog, redis_url, CATALOG_CHECK_INTERVAL="0.1") as (host_a, host_b, emulator):
        yield host_a, host_b, emulator, catalog


def page(browser: requests.Session, url: str) -> requests.Response:
    return browser.get(f"{url}/", allow_redirects=False, timeout=10)


def test_signed_in_on_one_host_is_signed_in_on_the_other_and_signs_out_on_both(
    two_hosts: tuple[str, str, str, Path],
) -> None:
    host_a, host_b, emulator_url, _ = two_hosts
    with requests.Session() as browser:
        assert sign_in(browser, host_a, emulator_url, JANE).status_code == 302
        on_b = page(browser, host_b)
        assert "Signed in as Jane Doe" in on_b.text

        browser.post(
            f"{host_b}/api/auth/bitbucket/logout", data={"csrf_token": csrf_token(on_b.text)}
        )

        assert page(browser, host_a).status_code == 302
        assert page(browser, host_b).status_code == 302


def test_a_catalog_edit_applies_on_both_hosts(two_hosts: tuple[str, str, str, Path]) -> None:
    host_a, host_b, emulator_url, catalog = two_hosts
    with requests.Session() as browser:
        sign_in(browser, host_a, emulator_url, JANE)
        replace_file(catalog, catalog.read_text().replace("Jane Doe", "Jane Q. Doe"))
        deadline = time.monotonic() + 10
        seen: dict[str, bool] = {}
        while time.monotonic() < deadline and not all(seen.get(h) for h in (host_a, host_b)):
            for host in (host_a, host_b):
                # A new connection each time, so that every worker of each host answers.
                answer = requests.get(f"{host}/", cookies=browser.cookies, timeout=10)
                seen[host] = seen.get(host, False) or "Signed in as Jane Q. Doe" in answer.text
        assert seen == {host_a: True, host_b: True}


def test_health_of_each_host(two_hosts: tuple[str, str, str, Path]) -> None:
    for host in two_hosts[:2]:
        health = requests.get(f"{host}/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json()["sessions"] == {"store": "redis", "reachable": True}


def test_every_worker_of_every_host_signs_tokens_the_published_keys_verify(
    two_hosts: tuple[str, str, str, Path],
) -> None:
    """No key file: every worker of both hosts derives one key from the shared secret, so
    the JWKS is the same wherever it is fetched and verifies a token from any of them."""
    host_a, host_b, emulator_url, _ = two_hosts
    with requests.Session() as browser:
        sign_in(browser, host_a, emulator_url, JANE)
        # New connections each time, so that both workers of each host answer.
        key_sets = [published_keys(host) for host in (host_a, host_b) for _ in range(6)]
        assert all(keys == key_sets[0] for keys in key_sets)
        for host in (host_a, host_b):
            for _ in range(6):
                answer = requests.get(
                    f"{host}{PREFIX}/refresh", cookies=browser.cookies, headers=XHR, timeout=10
                )
                token = answer.json()["backstageIdentity"]["token"]
                claims = verify(token, key_sets[0], issuer=f"{host}{AUTH}", now=time.time())
                assert claims.claims["sub"] == "user:default/jdoe"
