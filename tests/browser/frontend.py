"""The real Backstage frontend for the browser tests: pinned npm packages and an esbuild bundle.

``tests/browser/backstage/package.json`` and its lockfile pin ``@backstage/core-app-api``, what
it needs and ``esbuild``. They are installed with ``npm ci`` into a cache outside the
repository, one directory per pin set (``…/bitbucket-signin/backstage-<hash of the pins>``),
and reused while the pins stay the same. ``scripts/setup.sh --test`` installs them
(``python -m tests.browser.frontend``); the tests only read the cache and bundle
``backstage/app.js`` with esbuild into a page of static files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).parent / "backstage"
PINS = ("package.json", "package-lock.json")
PAGE = ("index.html",)
ENTRY = "app.js"


def cache_dir() -> Path:
    """Where this pin set is (or will be) installed."""
    digest = hashlib.sha256()
    for name in PINS:
        digest.update((SOURCE / name).read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "bitbucket-signin" / f"backstage-{digest.hexdigest()[:16]}"


def install() -> Path:
    """Install the pins into :func:`cache_dir` unless they are there; returns that directory.

    ``npm ci`` runs in a temporary directory beside it that is renamed into place when
    complete, so an interrupted install leaves nothing that looks installed.
    """
    target = cache_dir()
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: ./scripts/setup.sh --test installs it")
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".install-"))
    try:
        for name in PINS:
            shutil.copy(SOURCE / name, work)
        command = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        subprocess.run(command, cwd=work, check=True)
        work.rename(target)
    except OSError:
        if not target.is_dir():  # unless another install finished first
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)  # already gone when renamed into place
    return target


def bundle(out: Path) -> Path:
    """The test page (``index.html`` and the bundled ``app.js``) in ``out``; returns ``out``."""
    installed = cache_dir()
    esbuild = installed / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        raise RuntimeError(
            f"the Backstage packages are not installed in {installed}: "
            "run ./scripts/setup.sh --test"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name in PAGE:
        shutil.copy(SOURCE / name, out)
    command = [
        str(esbuild),
        str(SOURCE / ENTRY),
        "--bundle",
        "--format=esm",
        "--target=es2022",
        "--define:process.env.NODE_ENV='production'",
        "--log-level=warning",
        f"--outfile={out / ENTRY}",
    ]
    environment = {**os.environ, "NODE_PATH": str(installed / "node_modules")}
    subprocess.run(command, env=environment, check=True, timeout=120)
    return out


if __name__ == "__main__":
    print(f"Backstage frontend packages: {install()}", file=sys.stderr)
