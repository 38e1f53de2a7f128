"""Per-request cost of knowing who is signed in, for catalogs of 100, 10,000 and 100,000 users.

On every request the user loader reads the profile kept in the session, takes the current
catalog from the store and runs the resolver chain. Those are indexed lookups, so the cost
should not grow with the catalog (ratio ~1). Loading the catalog does grow, linearly.

Run: ``.venv/bin/python bench/user_loader.py [--sizes 100 10000 100000]``
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bitbucket_signin.catalog import CatalogStore
from bitbucket_signin.emulator import generated_account
from bitbucket_signin.profile import BitbucketProfile, profile_from_api
from bitbucket_signin.resolvers import build_chain, resolve
from tests.support import write_generated_catalog

SAMPLE = 1000  # different people looked up, spread over the whole catalog
LOOKUPS = 20_000  # per timed round
ROUNDS = 5  # the best round counts


def session_profile(number: int) -> dict[str, Any]:
    """What the session keeps for generated account ``number`` after signing in."""
    account = generated_account(number)
    user = {**account, "links": {"avatar": {"href": f"https://avatars.test/{number}"}}}
    workspaces = [
        {"workspace": {"slug": w["slug"], "uuid": w["uuid"]}, "administrator": w["administrator"]}
        for w in account["workspaces"]
    ]
    return profile_from_api(user, account["emails"], workspaces).to_dict()


def best_of(rounds: int, action: Callable[[], object]) -> float:
    """The shortest of ``rounds`` timed runs of ``action``, in seconds."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(size: int, folder: Path) -> tuple[float, float]:
    """(seconds to load the catalog, seconds per resolved request) for ``size`` users."""
    root = write_generated_catalog(folder, size, lambda number: f"team-{number % 5}")
    store = CatalogStore(root)
    load_seconds = best_of(1 if size > 10_000 else 3, store.load)
    chain = build_chain(["userIdMatchingUserEntityAnnotation"])
    numbers = random.Random(size).sample(range(1, size + 1), min(SAMPLE, size))
    sessions = [session_profile(number) for number in numbers]
    for number, data in zip(numbers, sessions, strict=True):
        identity = resolve(chain, BitbucketProfile.from_dict(data), store.current())
        assert identity.user_entity_ref == f"user:default/user{number:04d}", identity
    work = [sessions[index % len(sessions)] for index in range(LOOKUPS)]

    def requests() -> None:
        for data in work:
            resolve(chain, BitbucketProfile.from_dict(data), store.current())

    return load_seconds, best_of(ROUNDS, requests) / LOOKUPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000])
    sizes = parser.parse_args().sizes
    print(f"user loader: profile from the session + store.current() + resolve, best of {ROUNDS}")
    print(f"{'users':>8} {'µs/request':>11} {'vs first':>9} {'load s':>8} {'load µs/user':>13}")
    first: float | None = None
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            load_seconds, per_request = measure(size, Path(folder))
        first = first or per_request
        print(
            f"{size:>8} {per_request * 1e6:>11.2f} {per_request / first:>8.2f}x "
            f"{load_seconds:>8.3f} {load_seconds / size * 1e6:>13.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
