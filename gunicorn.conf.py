"""gunicorn's settings for ``gunicorn wsgi:app``; gunicorn reads this file from the working
directory by itself, and command-line options override it (``-w 4``, ``-b …``).

They keep the site answering while Bitbucket hangs: at most ``BITBUCKET_MAX_CONCURRENT_SIGN_INS``
(default 32) sign-ins of a worker wait on Bitbucket, each for ``BITBUCKET_CALLBACK_TIMEOUT`` at
most (default 20 s); the other threads serve everything else. Raising either setting means
raising ``threads`` or ``graceful_timeout`` here too.
"""

import os
from pathlib import Path
from typing import Any

from bitbucket_signin import prefork

# Threads, not one process per request: a sign-in waiting on Bitbucket holds a thread, not the
# whole worker, and the application's limit of waiting sign-ins is per process.
worker_class = "gthread"

# More threads than sign-ins may wait on Bitbucket (32 by default): the other 16 keep serving
# pages that do not need Bitbucket, and answer the sign-ins beyond the limit with a 503 at once.
# Measured (bench, figure 5): with Bitbucket 50 ms away, 50 people signing in at once on two
# such workers are all served; with 16 threads and a limit of 8, most of them were turned away.
threads = 48

# A gthread worker reports to the master from its own loop, not from request threads, so a
# long request does not make it "silent"; the limit only catches a worker that is stuck.
# Still longer than any sign-in (20 s by default) so that no reading of it can cut one short.
timeout = 60

# On a restart or shutdown, a sign-in that is waiting on Bitbucket may finish: longer than
# its deadline (BITBUCKET_CALLBACK_TIMEOUT, 20 s by default).
graceful_timeout = 30


# The master creates the app, so the catalog is read once for all workers, which share its
# memory; when a catalog file changes, the master reads it again and replaces its workers
# gracefully (as on SIGHUP), so no worker spends a moment on a reload
# (bitbucket_signin/prefork.py). A change to the app's code needs a restart (or SIGUSR2).
preload_app = True
when_ready = prefork.when_ready
on_reload = prefork.on_reload
pre_fork = prefork.pre_fork
post_fork = prefork.post_fork


# Whom to believe about https: ProxyFix alone (the app's FLASK_PROXY_FIX), which counts the
# proxies in front exactly. gunicorn by itself believes X-Forwarded-Proto from any process on
# this machine (127.0.0.1, ::1): behind a local proxy that passes a visitor's own header on,
# a request over plain http would count as https (Secure cookie, HSTS, an https redirect_uri).
# FORWARDED_ALLOW_IPS, when set, still decides.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")


# Metrics across workers (BITBUCKET_METRICS_PATH with PROMETHEUS_MULTIPROC_DIR set): each
# worker writes its values into that folder; start from an empty one, and drop a dead
# worker's live gauges.
def on_starting(server: object) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for stale in Path(folder).glob("*.db"):
            stale.unlink()


def child_exit(server: object, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
