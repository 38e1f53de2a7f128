"""gunicorn's master reads the catalog for every worker of a host (``preload_app``).

The shipped ``gunicorn.conf.py`` names these functions as its server hooks. The master
creates the app (so the catalog is read once, not once per worker) and freezes Python's
garbage collector before each fork, so that the workers share the catalog's memory and never
walk it in a collection. A thread of the master looks at the catalog files every
``BITBUCKET_CATALOG_CHECK_INTERVAL`` (a ``stat`` per file); when one changed, it sends the
master a SIGHUP, on which gunicorn forks new workers and lets the old ones finish what they
serve. Before that fork, :func:`on_reload` reads the catalog again: the new workers start with
it, the old ones answer with the previous one until they stop, and no worker spends a moment
on a reload. Meanwhile the old workers run ``RETIRING_NICENESS`` steps nicer, so that on a busy
host the master's read (the moment the edit waits for) is not one process among many. A broken
edit keeps the previous catalog (and logs why), as everywhere.

Without ``preload_app``, or for an app whose WSGI callable is not a Flask app with the
extension, these hooks do nothing and each worker watches the files itself.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
from typing import Any

from .app_extension import EXTENSION_NAME
from .catalog import CatalogStore

logger = logging.getLogger(__name__)

# How much nicer the workers about to be replaced run while the master reads the edit. Measured
# (bench, figure 6: edits at 100,000 people, two workers kept busy on two cores): without it
# the master had a third of a core and an edit reached every worker in 2.8 s; at 5, in 1.7 s,
# and the page's p99 meanwhile stayed within 2 times its idle value either way (1.5-1.9).
RETIRING_NICENESS = 5


class CatalogWatcher:
    """The master's thread that asks for a reload (SIGHUP) when a catalog file changes."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store
        self._reload_asked = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._watch, name="catalog-watcher", daemon=True).start()

    def reload(self, retiring: Iterable[int] = ()) -> None:
        """In the master, before it forks new workers: the changed catalog, read again, while
        the ``retiring`` workers (process ids) step back.

        The garbage collector stays off until the new catalog is frozen (as :func:`pre_fork`
        freezes everything): its first passes after the load would walk every object of it.
        """
        if self.store.changed():
            for pid in retiring:
                step_back(pid)
            collecting = gc.isenabled()
            gc.disable()
            try:
                if self.store.reload():
                    gc.freeze()
            finally:
                if collecting:
                    gc.enable()
        self._reload_asked.clear()

    def _watch(self) -> None:
        while True:
            time.sleep(self.store.check_interval)
            if not self._reload_asked.is_set() and self.store.changed():
                self._reload_asked.set()  # once, until the master has reloaded
                os.kill(os.getpid(), signal.SIGHUP)


_watcher: list[CatalogWatcher] = []  # this master's, once the app is preloaded


def when_ready(server: Any) -> None:
    """gunicorn hook, in the master before the first workers: watch the preloaded catalog."""
    store = _preloaded_store(server)
    if store is not None:
        _watcher[:] = [CatalogWatcher(store)]
        _watcher[0].start()


def on_reload(server: Any) -> None:
    """gunicorn hook, in the master on SIGHUP, before it forks the new workers."""
    for watcher in _watcher:
        watcher.reload(retiring=list(server.WORKERS))


def step_back(pid: int) -> None:
    """Make every thread of process ``pid`` ``RETIRING_NICENESS`` steps nicer (up to 19).

    Linux keeps a niceness per thread, and a gthread worker answers from its threads; elsewhere
    the process's own is the one. A process that has gone meanwhile is left alone.
    """
    try:
        threads = [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    for thread in threads:
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to change
            niceness = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(niceness + RETIRING_NICENESS, 19))


def pre_fork(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master before each fork: what exists now is never collected,
    so the workers' collections never walk (and copy) the catalog's pages."""
    if _watcher:
        gc.freeze()


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn hook, in a new worker: the master watches the files for it."""
    for watcher in _watcher:
        watcher.store.watching = False


def _preloaded_store(server: Any) -> CatalogStore | None:
    """The catalog store of the preloaded app, if it is a Flask app with the extension."""
    if not server.cfg.preload_app:
        return None
    extension = getattr(server.app.wsgi(), "extensions", {}).get(EXTENSION_NAME)
    if extension is None:
        logger.info("no %s extension in the preloaded app: workers watch the catalog", __name__)
        return None
    store: CatalogStore = extension.catalog_store
    return store
