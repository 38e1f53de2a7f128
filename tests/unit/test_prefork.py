"""The master's step back of the workers it replaces (``bitbucket_signin/prefork.py``), on a
real process with threads; the hooks under a real gunicorn are in tests/integration."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from bitbucket_signin import prefork

THREADS = 3
WORKER = f"""
import sys, threading, time
for _ in range({THREADS}):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def worker() -> Iterator[int]:
    """A process with a main thread and three more, as a gthread worker has; its pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        yield process.pid
    finally:
        process.kill()
        process.wait()


def niceness_of_threads(pid: int) -> dict[int, int]:
    tasks = [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    return {task: os.getpriority(os.PRIO_PROCESS, task) for task in tasks}


def test_every_thread_of_a_retiring_worker_steps_back(worker: int) -> None:
    """Every thread of the worker, and no other process (here: the test, as the master)."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    before = niceness_of_threads(worker)
    assert len(before) == THREADS + 1
    prefork.step_back(worker)
    after = niceness_of_threads(worker)
    assert after == {
        task: min(niceness + prefork.RETIRING_NICENESS, 19) for task, niceness in before.items()
    }
    assert os.getpriority(os.PRIO_PROCESS, 0) == own


def test_stepping_back_twice_stops_at_the_nicest(worker: int) -> None:
    for _ in range(19 // prefork.RETIRING_NICENESS + 2):
        prefork.step_back(worker)
    assert set(niceness_of_threads(worker).values()) == {19}


def test_a_worker_gone_meanwhile_is_left_alone() -> None:
    process_gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    prefork.step_back(int(process_gone.stdout))  # no error: it has exited
