"""Catalog load time and memory at 1,000, 10,000 and 100,000 users, JSON and YAML.

Each figure is a ratio taken in one run, side by side, so the machine's speed and load cancel;
the targets (issue 8) apply to the largest catalog:

- load: ``CatalogStore.load()`` as an app starts (read, parse, validate, index, and the memo a
  reload reuses, :mod:`bitbucket_signin.catalog.memo`) over the parse alone of the same file
  (``json.load``; PyYAML's C loader, ``yaml.load_all(..., Loader=yaml.CSafeLoader)``), best of
  alternating rounds; targets 2.0 (JSON) and 1.3 (YAML). The parse with the garbage collector
  paused is shown too: the loader pauses it, ``json.load`` does not;
- memory: resident memory (RSS) of a process that created the standalone app with that catalog, as a
  worker does, beside one that only parsed the file; target 250 MB per worker;
- shared, the other way to that target: the app created once, ``gc.freeze()``, then four forked
  workers that each resolve people, as ``gunicorn --preload`` does: the proportional set size
  (PSS) of the four workers and their parent together over the RSS of one worker alone, when
  each resolves 1,000 people and when each resolves everyone; target 1.5;
- lookup: resolving a signed-in person (``userIdMatchingUserEntityAnnotation``) at the largest
  size over the smallest; target 1.2.

Run: ``.venv/bin/python bench/catalog_load.py [--sizes 1000 10000 100000]`` (about 6 minutes);
it exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from bitbucket_signin.app_extension import get_extension
from bitbucket_signin.catalog import Catalog, CatalogStore, load_catalog
from bitbucket_signin.emulator import generated_account
from bitbucket_signin.profile import BitbucketProfile
from bitbucket_signin.resolvers import build_chain, resolve
from bitbucket_signin.standalone import create_app
from tests.support import CLIENT_ID, CLIENT_SECRET, SECRET_KEY, generated_user

TARGETS = {"json": 2.0, "yaml": 1.3, "memory_mb": 250, "shared": 1.5, "lookup": 1.2}
FORMATS = ("json", "yaml")
WORKERS = 4
SAMPLE = 1000  # different people looked up, spread over the catalog
LOOKUPS = 20_000  # per timed round of lookups
TEAMS_PER_DEPARTMENT = 9
_YAML_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def catalog_entities(users: int, groups: int | None = None) -> Iterator[dict[str, Any]]:
    """Users ``user0001…`` (the emulator's generated accounts) and ``groups`` groups.

    Every user has the ``bitbucket.org/user-id`` annotation of its account, a profile (display
    name, email, picture) and is ``memberOf`` one team; a tenth of the groups are departments
    that list their members (everyone in their teams) in ``spec.members``. Without ``groups``:
    one group per 100 users, as in the 100,000-user, 1,000-group catalog of issue 8.
    """
    groups = groups or max(users // 100, TEAMS_PER_DEPARTMENT + 1)
    departments = max(groups // (TEAMS_PER_DEPARTMENT + 1), 1)
    teams = groups - departments
    for number in range(1, users + 1):
        user = generated_user(number, f"team-{number % teams:04d}")
        account_id = generated_account(number)["account_id"]
        user["spec"]["profile"]["picture"] = f"https://avatars.example.com/u/{account_id}.png"
        yield user
    for department in range(departments):
        spec = {
            "type": "department",
            "children": [f"team-{team:04d}" for team in range(department, teams, departments)],
            "members": [
                f"user{n:04d}" for n in range(1, users + 1) if n % teams % departments == department
            ],
        }
        yield group(f"department-{department:03d}", f"Department {department}", spec)
    for team in range(teams):
        parent = {"type": "team", "parent": f"department-{team % departments:03d}"}
        yield group(f"team-{team:04d}", f"Team {team}", {**parent, "children": []})


def group(name: str, display_name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": name},
        "spec": {"profile": {"displayName": display_name}, **spec},
    }


def write_catalog(path: Path, users: int, groups: int | None = None) -> Path:
    """One catalog file: ``{"items": […]}`` for ``.json``, else YAML documents. Returns it."""
    entities = catalog_entities(users, groups)
    with path.open("w", encoding="utf-8") as file:
        if path.suffix == ".json":
            json.dump({"items": list(entities)}, file)
        else:
            yaml.dump_all(entities, file, Dumper=_YAML_DUMPER, sort_keys=False)
    return path


def parse(path: Path) -> Any:
    """The reference: the file parsed into Python objects, nothing else."""
    with path.open("rb") as file:
        if path.suffix == ".json":
            return json.load(file)
        return list(yaml.load_all(file.read().decode(), Loader=_YAML_LOADER))


def paused_gc(action: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        gc.disable()
        try:
            return action()
        finally:
            gc.enable()

    return run


def load_times(path: Path, rounds: int) -> dict[str, float]:
    """Best of ``rounds`` alternating runs of the parse, the parse with the GC paused, the load."""
    actions: dict[str, Callable[[], Any]] = {
        "parse_s": lambda: parse(path),
        "parse_gc_paused_s": paused_gc(lambda: parse(path)),
        "load_s": lambda: CatalogStore(path).load(),
    }
    best = dict.fromkeys(actions, float("inf"))
    for _ in range(rounds):
        for name, action in actions.items():
            started = time.perf_counter()
            result = action()
            best[name] = min(best[name], time.perf_counter() - started)
            del result
            gc.collect()
    return best


def profiles(users: int, people: int | None = SAMPLE) -> list[BitbucketProfile]:
    """The Bitbucket profiles of ``people`` of the generated accounts 1…users (default all)."""
    every = range(1, users + 1)
    numbers = every if people is None else random.Random(users).sample(every, min(people, users))
    return [
        BitbucketProfile(
            uuid=account["uuid"],
            account_id=account["account_id"],
            display_name=account["display_name"],
            username=account["username"],
            email=account["emails"][0]["email"],
        )
        for account in map(generated_account, numbers)
    ]


def lookup_seconds(catalogs: dict[int, Catalog], rounds: int = 7) -> dict[int, float]:
    """Seconds per resolved sign-in (by the user-id annotation) in each catalog (by its
    number of users), best of ``rounds`` taken in turns."""
    chain = build_chain(["userIdMatchingUserEntityAnnotation"])
    work = {}
    for users in catalogs:
        sample = profiles(users)
        work[users] = [sample[index % len(sample)] for index in range(LOOKUPS)]
    best = dict.fromkeys(catalogs, float("inf"))
    for _ in range(rounds):
        for users, catalog in catalogs.items():
            started = time.perf_counter()
            for profile in work[users]:
                resolve(chain, profile, catalog)
            best[users] = min(best[users], time.perf_counter() - started)
    return {users: seconds / LOOKUPS for users, seconds in best.items()}


# --- memory, measured in child processes ---------------------------------------------------


def app_config(catalog: Path) -> dict[str, Any]:
    return {
        "SECRET_KEY": SECRET_KEY,
        "BITBUCKET_CLIENT_ID": CLIENT_ID,
        "BITBUCKET_CLIENT_SECRET": CLIENT_SECRET,
        "BITBUCKET_CATALOG": str(catalog),
    }


def memory_of(pid: int | str = "self") -> dict[str, float]:
    """RSS, peak RSS, PSS and USS (private memory) of a process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    kilobytes = {
        line.split(":")[0]: int(line.split()[1]) for line in status + rollup if line.endswith("kB")
    }
    return {
        "rss_mb": kilobytes["VmRSS"] / 1024,
        "peak_mb": kilobytes["VmHWM"] / 1024,
        "pss_mb": kilobytes["Pss"] / 1024,
        "uss_mb": (kilobytes["Private_Clean"] + kilobytes["Private_Dirty"]) / 1024,
    }


def child(kind: str, path: Path, users: int) -> dict[str, Any]:
    """What one child process measures: ``parse``, ``worker`` or ``shared``."""
    if kind == "parse":
        parsed = parse(path)
        gc.collect()
        return memory_of() | {"entities": len(parsed)}
    app = create_app(app_config(path))
    gc.collect()
    if kind == "worker":
        return memory_of() | {"users": len(get_extension(app).catalog_store.current().users)}
    gc.freeze()  # what a gunicorn.conf.py does before forking its workers (preload_app)
    return {"sample": shared_workers(app, users, SAMPLE), "everyone": shared_workers(app, users)}


def shared_workers(app: Any, users: int, people: int | None = None) -> dict[str, float]:
    """Fork WORKERS workers that each resolve ``people`` (default: everyone); their memory."""
    people_profiles = profiles(users, people)
    extension = get_extension(app)
    pids, ready = [], []
    for _ in range(WORKERS):
        done, finished = os.pipe()
        go_on, proceed = os.pipe()
        pid = os.fork()
        if pid == 0:  # a worker: resolve, say so, wait to be measured
            for profile in people_profiles:
                extension.resolve(profile)
            os.write(finished, b"x")
            os.read(go_on, 1)
            os._exit(0)
        pids.append(pid)
        ready.append((done, proceed))
    for done, _ in ready:
        os.read(done, 1)
    workers = [memory_of(pid) for pid in pids]
    parent = memory_of()
    for pid, (_, proceed) in zip(pids, ready, strict=True):
        os.write(proceed, b"x")
        os.waitpid(pid, 0)
    return {
        "workers_pss_mb": sum(worker["pss_mb"] for worker in workers),
        "parent_pss_mb": parent["pss_mb"],
        "worker_uss_mb": max(worker["uss_mb"] for worker in workers),
    }


def in_child(kind: str, path: Path, users: int) -> dict[str, Any]:
    """Run :func:`child` in a fresh interpreter; its figures."""
    command = [sys.executable, __file__, "--child", kind, str(path), str(users)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# --- the whole benchmark -------------------------------------------------------------------


def measure(sizes: list[int], folder: Path) -> dict[str, Any]:
    """Every figure of this benchmark for catalogs of ``sizes`` users, in ``folder``."""
    figures: dict[str, Any] = {"targets": TARGETS, "load": [], "memory": []}
    for users in sizes:
        for form in FORMATS:
            path = write_catalog(folder / f"catalog-{users}.{form}", users)
            times = load_times(path, rounds=3 if users >= 100_000 else 5)
            figures["load"].append(
                {"users": users, "format": form, "mb": path.stat().st_size / 1e6, **times}
                | {"ratio": times["load_s"] / times["parse_s"]}
                | {"target": TARGETS[form] if users == max(sizes) else None}
            )
            worker, parsed = in_child("worker", path, users), in_child("parse", path, users)
            figures["memory"].append(
                {"users": users, "format": form, "worker": worker, "parse_only": parsed}
            )
    largest, smallest = max(sizes), min(sizes)
    for form in FORMATS:
        path = folder / f"catalog-{largest}.{form}"
        worker = next(m["worker"] for m in figures["memory"] if m["users"] == largest)
        figures.setdefault("shared", {})[form] = {
            kind: shares | {"ratio": total(shares) / worker["rss_mb"]}
            for kind, shares in in_child("shared", path, largest).items()
        } | {"one_worker_rss_mb": worker["rss_mb"]}
    per_lookup = lookup_seconds(
        {users: load_catalog(folder / f"catalog-{users}.json") for users in (smallest, largest)}
    )
    figures["lookup"] = {
        "small_users": smallest,
        "large_users": largest,
        "small_us": per_lookup[smallest] * 1e6,
        "large_us": per_lookup[largest] * 1e6,
        "ratio": per_lookup[largest] / per_lookup[smallest],
    }
    return figures


def total(shares: dict[str, float]) -> float:
    return shares["workers_pss_mb"] + shares["parent_pss_mb"]


def missed_targets(figures: dict[str, Any]) -> list[str]:
    """The targets the figures miss (memory: per worker, or else shared by four)."""
    largest = max(row["users"] for row in figures["load"])
    missed = [
        f"load {row['format']} {row['ratio']:.2f}x > {row['target']}x"
        for row in figures["load"]
        if row["target"] and row["ratio"] > row["target"]
    ]
    for row in figures["memory"]:
        rss, shared = row["worker"]["rss_mb"], figures["shared"][row["format"]]["sample"]["ratio"]
        too_big = rss > TARGETS["memory_mb"] and shared > TARGETS["shared"]
        if row["users"] == largest and too_big:
            missed.append(f"memory {row['format']} {rss:.0f} MB, shared {shared:.2f}x")
    if figures["lookup"]["ratio"] > TARGETS["lookup"]:
        missed.append(f"lookup {figures['lookup']['ratio']:.2f}x > {TARGETS['lookup']}x")
    return missed


def report(figures: dict[str, Any]) -> str:
    """The figures as text tables."""
    lines = [
        "catalog load: CatalogStore.load() (read, parse, validate, index, memo) over the parse",
        f"{'users':>8} {'format':>6} {'MB':>6} {'parse s':>8} {'GC off':>7} {'load s':>7} "
        f"{'ratio':>6} {'target':>6}",
    ]
    for row in figures["load"]:
        lines.append(
            f"{row['users']:>8} {row['format']:>6} {row['mb']:>6.1f} {row['parse_s']:>8.3f} "
            f"{row['parse_gc_paused_s']:>7.3f} {row['load_s']:>7.3f} {row['ratio']:>5.2f}x "
            + (f"{row['target']:>5.1f}x" if row["target"] else f"{'':>6}")
        )
    lines += [
        "",
        "memory: RSS of a process with the demo app and the catalog (peak) vs the parse alone, MB",
        f"{'users':>8} {'format':>6} {'worker':>7} {'peak':>6} {'parse':>6} {'peak':>6}",
    ]
    for row in figures["memory"]:
        worker, parsed = row["worker"], row["parse_only"]
        lines.append(
            f"{row['users']:>8} {row['format']:>6} {worker['rss_mb']:>7.0f} "
            f"{worker['peak_mb']:>6.0f} {parsed['rss_mb']:>6.0f} {parsed['peak_mb']:>6.0f}"
        )
    lines += ["", f"shared: {WORKERS} forked workers after gc.freeze(), PSS of all over one worker"]
    for form, shared in figures.get("shared", {}).items():
        for kind in ("sample", "everyone"):
            row = shared[kind]
            lines.append(
                f"{form:>6} {kind:>9}: workers {row['workers_pss_mb']:.0f} MB + parent "
                f"{row['parent_pss_mb']:.0f} MB = {total(row):.0f} MB over one worker "
                f"{shared['one_worker_rss_mb']:.0f} MB: {row['ratio']:.2f}x (target "
                f"{TARGETS['shared']}x); private per worker {row['worker_uss_mb']:.0f} MB"
            )
    lookup = figures["lookup"]
    lines += [
        "",
        f"lookup: {lookup['large_us']:.2f} µs at {lookup['large_users']} users over "
        f"{lookup['small_us']:.2f} µs at {lookup['small_users']}: {lookup['ratio']:.2f}x "
        f"(target {TARGETS['lookup']}x)",
    ]
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        kind, path, users = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(child(kind, path, users)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    sizes = parser.parse_args().sizes
    with tempfile.TemporaryDirectory() as folder:
        figures = measure(sizes, Path(folder))
    print(report(figures))
    missed = missed_targets(figures)
    print("\ntargets: " + ("; ".join(missed) + " missed" if missed else "all met"))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
