"""The emulator and the app as real processes (gunicorn with several workers), on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import requests

from .support import DATA, signin_config

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_answers(url: str) -> Callable[[], bool]:
    """A check that ``url`` answers below 500."""

    def check() -> bool:
        try:
            return requests.get(url, timeout=1, allow_redirects=False).status_code < 500
        except requests.RequestException:  # refused, or too busy to answer yet
            return False

    return check


def wait_until_up(
    is_up: Callable[[], bool], process: subprocess.Popen[bytes], seconds: float = 20
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if is_up():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{process.args!r} did not come up within {seconds} s")


@contextmanager
def running(
    command: list[str], is_up: Callable[[], bool], env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; ``is_up`` must say so first."""
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **(env or {})}, start_new_session=True
    )
    try:
        wait_until_up(is_up, process)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def emulator_process(accounts: Path, *arguments: str) -> Iterator[str]:
    """``python -m bitbucket_signin.emulator`` on a free port; yields its URL."""
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        sys.executable,
        "-m",
        "bitbucket_signin.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        url.rsplit(":", 1)[1],
        "--accounts",
        str(accounts),
        *arguments,
    ]
    with running(command, http_answers(f"{url}/_emulator/health")):
        yield url


def app_environment(emulator_url: str, catalog: Path, **settings: str) -> dict[str, str]:
    """``FLASK_*`` variables for ``wsgi:app`` against the emulator; ``settings`` add more."""
    environment = {
        f"FLASK_{key}": value for key, value in signin_config(emulator_url, catalog).items()
    }
    environment.update({f"FLASK_BITBUCKET_{key}": value for key, value in settings.items()})
    return environment


@contextmanager
def gunicorn_app(environment: Mapping[str, str], workers: int = 3, **options: Any) -> Iterator[str]:
    """:func:`gunicorn_master`, yielding its URL only."""
    with gunicorn_master(environment, workers, **options) as (url, _):
        yield url


@contextmanager
def gunicorn_master(
    environment: Mapping[str, str],
    workers: int = 3,
    *,
    as_shipped: bool = False,
    app: str = "wsgi:app",
    chdir: Path | None = None,
    url: str | None = None,
) -> Iterator[tuple[str, int]]:
    """``gunicorn wsgi:app`` (or ``app``, found in ``chdir``) with several workers on a free
    port (or ``url``'s); yields its URL and the process id of gunicorn's master.

    ``as_shipped``: no options but the workers and the address, the rest from the
    repository's ``gunicorn.conf.py`` (gunicorn reads it from the working directory; without
    ``as_shipped`` too, where the options given override it).
    """
    url = url or f"http://127.0.0.1:{free_port()}"
    options = [] if as_shipped else ["--threads", "4", "--graceful-timeout", "5"]
    options += ["--chdir", str(chdir)] if chdir else []
    command = [
        str(BIN / "gunicorn"),
        "--workers",
        str(workers),
        "--bind",
        url.removeprefix("http://"),
        *options,
        app,
    ]
    with running(command, http_answers(f"{url}/signin"), environment) as master:
        yield url, master.pid


@contextmanager
def two_hosts(
    catalog: Path, redis_url: str, *, app: str = "wsgi:app", **settings: str
) -> Iterator[tuple[str, str, str]]:
    """Two hosts as one: the emulator, and two gunicorn instances of ``app`` (two workers
    each) sharing the secret, ``catalog`` and the Redis at ``redis_url`` (emptied first);
    ``settings`` add more. Yields both hosts' URLs and the emulator's."""
    redis.Redis.from_url(redis_url).flushdb()
    with emulator_process(DATA / "accounts.yaml") as emulator_url:
        environment = app_environment(
            emulator_url, catalog, SESSION_REDIS_URL=redis_url, **settings
        )
        with (
            gunicorn_app(environment, workers=2, app=app) as host_a,
            gunicorn_app(environment, workers=2, app=app) as host_b,
        ):
            yield host_a, host_b, emulator_url


@contextmanager
def redis_process(port: int | None = None) -> Iterator[str]:
    """A throwaway ``redis-server`` on a loopback port (default: a free one), no persistence;
    yields its URL."""
    port = port or free_port()
    command = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
    command += ["--appendonly", "no"]
    client = redis.Redis(port=port, socket_connect_timeout=1)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    with running(command, answers):
        yield f"redis://127.0.0.1:{port}/0"


def run_wsgi(environment: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -c "import wsgi"`` with only ``environment`` (and a PATH): how gunicorn starts."""
    return subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env={**environment, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
