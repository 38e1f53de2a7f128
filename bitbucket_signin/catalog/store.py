"""The catalog as sign-in uses it, with Bitbucket's annotation rules: :func:`load_catalog`
reads it once, :class:`CatalogStore` holds the current catalog and reloads it when its files
change.
"""

from __future__ import annotations

import logging
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import DEFAULTS
from ..errors import CatalogError
from .bitbucket import BitbucketAnnotations
from .loader import DEFAULT_MAX_BYTES, Loader, Stamp
from .memo import FileMemo
from .model import Catalog

LOGGER_NAME = "bitbucket_signin.catalog"
STEP_ASIDE_EVERY = 100  # entities (about half a millisecond of loading)
BITBUCKET_RULES = BitbucketAnnotations()
DEFAULT_CHECK_INTERVAL: float = DEFAULTS["CATALOG_CHECK_INTERVAL"]


def load_catalog(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Catalog:
    """Read, validate and index a catalog file; raises :class:`CatalogError` and nothing else."""
    return Loader(Path(path), max_bytes, BITBUCKET_RULES).load()


class CatalogStore:
    """The current catalog, reloaded (at most once per ``check_interval``) when its files change.

    What a caller sees, the one rule: :meth:`current` returns the newest catalog whose load has
    finished, never one half-built. The call that notices a change reloads inline and returns
    the result, unless the last load took ``inline_reload_limit`` seconds or more (0: always):
    then the reload runs in a background thread, so that no request waits for it, and every
    call returns the previous catalog, the one that started it included, until the new one
    replaces it in one step when the load ends. :meth:`wait_for_reload` waits for that.

    A reload that fails keeps the last good catalog and logs the error once. ``clock`` (seconds)
    paces the checks and times the loads.

    When something else watches the files (gunicorn's master, :mod:`bitbucket_signin.prefork`),
    ``watching`` is ``False``: :meth:`current` never looks at the files, and that watcher
    calls :meth:`changed` and :meth:`reload`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        inline_reload_limit: float = 0.2,
    ) -> None:
        self.path = Path(path)
        self.check_interval = check_interval
        self.inline_reload_limit = inline_reload_limit
        self._clock = clock
        self._logger = logger or logging.getLogger(LOGGER_NAME)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._no_background_reload = threading.Event()
        self._no_background_reload.set()
        self._catalog: Catalog | None = None
        self.loaded_at: float | None = None  # wall-clock time of the last successful load
        self._stamps: dict[Path, Stamp] = {}
        self._next_check = 0.0
        self._load_seconds = 0.0
        self._memos: dict[Path, FileMemo] = {}  # what the last load made of its JSON files
        self.watching = True

    def load(self) -> Catalog:
        """Load the catalog now; raises :class:`CatalogError` (start-up must fail)."""
        with self._lock:
            return self._reload()

    def current(self) -> Catalog:
        """The current catalog; cheap enough to call on every request."""
        catalog = self._catalog
        if catalog is None:
            raise RuntimeError("CatalogStore.load() must be called first")
        if (
            not self.watching
            or self._clock() < self._next_check
            or not self._lock.acquire(blocking=False)
        ):
            return catalog
        if not self._changed():
            self._lock.release()
            return catalog
        if self._load_seconds >= self.inline_reload_limit:
            self._no_background_reload.clear()
            threading.Thread(
                target=self._reload_and_release,
                kwargs={"step_aside": True},
                name="catalog-reload",
                daemon=True,
            ).start()
            return catalog
        self._reload_and_release()
        return self._catalog or catalog

    def changed(self) -> bool:
        """Whether a file of the catalog changed since the last load (a ``stat`` per file)."""
        return any(_stamp(path) != seen for path, seen in self._stamps.items())

    def reload(self) -> bool:
        """Reload now, in this thread; ``True`` when a new catalog is in place. A failure keeps
        the previous catalog and is logged, as when :meth:`current` reloads."""
        self._lock.acquire()
        previous = self._catalog
        self._reload_and_release()
        return self._catalog is not previous

    def wait_for_reload(self, timeout: float | None = None) -> bool:
        """Wait until no background reload runs; ``False`` if one still does after ``timeout``."""
        return self._no_background_reload.wait(timeout)

    def _changed(self) -> bool:
        """With the lock held: whether a file changed since the last attempt (if time to look)."""
        if self._clock() < self._next_check:
            return False
        self._next_check = self._clock() + self.check_interval
        return self.changed()

    def _reload_and_release(self, *, step_aside: bool = False) -> None:
        """Reload (the lock is held), log a failure, and release the lock."""
        try:
            self._reload(previous=self._catalog, step_aside=step_aside)
        except CatalogError as error:
            self._logger.error("catalog reload failed, keeping the previous catalog: %s", error)
        finally:
            self._no_background_reload.set()  # before the release: a new reload may clear it
            self._lock.release()

    def _reload(self, previous: Catalog | None = None, *, step_aside: bool = False) -> Catalog:
        # Stepping aside, the reload pauses now and then, so that requests served meanwhile (in
        # this process or another) wait for the CPU a fraction of a millisecond, not a slice.
        loader = Loader(
            self.path,
            self._max_bytes,
            BITBUCKET_RULES,
            pause_every=STEP_ASIDE_EVERY if step_aside else 0,
            remembered=self._memos,
        )
        started = self._clock()
        try:
            catalog = loader.load()
        finally:
            self._load_seconds = self._clock() - started
            self._stamps = loader.stamps
            self._next_check = self._clock() + self.check_interval
        if previous is not None and previous.users and not catalog.users:
            # Most likely a file caught half-written (truncated, not yet filled): signing
            # everyone out for it would be worse than waiting for the next change.
            raise CatalogError(
                f"{self.path.name}: the catalog now has no users; restart the app "
                "if that is intended"
            )
        for warning in catalog.warnings:
            self._logger.warning("catalog: %s", warning)
        self._catalog = catalog
        self._memos = loader.memos or {}
        self.loaded_at = time.time()
        self._logger.info(
            "catalog loaded from %s: %d users, %d groups (%d entities unchanged, not read again)",
            self.path,
            len(catalog.users),
            len(catalog.groups),
            loader.reused,
        )
        return catalog


def _stamp(path: Path) -> Stamp:
    try:
        info = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)
