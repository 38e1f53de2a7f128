"""Prometheus metrics for operators (the ``metrics`` extra), served at ``BITBUCKET_METRICS_PATH``.

One set of metrics per process, in a registry of its own (the host app's default registry is
left alone). Under gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set, every worker writes its
values there and any worker's answer adds them all up (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any

from flask import Flask, Response, g, request

from .catalog import CatalogStore
from .errors import ConfigError, SignInError
from .signals import SUCCESS, outcome_of, sign_in_failed, sign_in_rate_limited, signed_in
from .transport import observe_calls

try:
    import prometheus_client
    from prometheus_client import multiprocess
except ImportError:  # pragma: no cover - the metrics extra is not installed
    prometheus_client = None  # type: ignore[assignment]

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
_CALLBACK_STARTED = "_bitbucket_callback_started"
CALLBACK_ENDPOINTS = frozenset({"bitbucket_signin.callback", "bitbucket_signin.server_callback"})
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Each call to Bitbucket is labelled by what it is, told by how its URL path ends, and never
# by the path itself: next-page links come from Bitbucket's answers, and each new label
# value would be a new series for as long as the process lives.
# Bitbucket Data Center's calls: the token, whoami, the user search, and one user by slug (our
# client quotes the slug into one path segment, so any slug is one ``user`` call).
CALL_KINDS = (
    ("token", re.compile(r"/access_token$|/rest/oauth2/latest/token$")),
    ("emails", re.compile(r"/user/emails$")),
    ("workspaces", re.compile(r"/user/workspaces$")),
    ("user", re.compile(r"/user$|/rest/api/latest/users/[^/]+$")),
    ("whoami", re.compile(r"/plugins/servlet/applinks/whoami$")),
    ("user search", re.compile(r"/rest/api/latest/users$")),
)
OTHER_CALL = "other"


class Metrics:
    """The metrics of this process."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.sign_ins = prometheus_client.Counter(
            "bitbucket_signin_sign_ins",
            "Sign-ins that ended, by outcome (success, refused, failed) and reason.",
            ["outcome", "reason"],
            registry=registry,
        )
        self.callback_seconds = prometheus_client.Histogram(
            "bitbucket_signin_callback_seconds",
            "Time to answer Bitbucket's redirect back (token, profile, resolvers).",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.bitbucket_call_seconds = prometheus_client.Histogram(
            "bitbucket_signin_bitbucket_call_seconds",
            "Time of each call to Bitbucket (the whole call, body included), by kind: "
            "token, user, emails, workspaces, whoami, user search (Data Center) or other.",
            ["call"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.rate_limited = prometheus_client.Counter(
            "bitbucket_signin_rate_limited",
            "Sign-in attempts refused by the rate limit.",
            registry=registry,
        )
        self.catalog_users = prometheus_client.Gauge(
            "bitbucket_signin_catalog_users",
            "Users in the catalog.",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self.catalog_age_seconds = prometheus_client.Gauge(
            "bitbucket_signin_catalog_age_seconds",
            "Seconds since the catalog was last loaded.",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )

    def observe_call(self, path: str, seconds: float) -> None:
        self.bitbucket_call_seconds.labels(call=call_kind(path)).observe(seconds)

    def exposition(self, store: CatalogStore) -> bytes:
        """The text format of every metric, across workers in multiprocess mode."""
        catalog = store.current()
        self.catalog_users.set(len(catalog.users))
        if store.loaded_at is not None:
            self.catalog_age_seconds.set(max(0.0, time.time() - store.loaded_at))
        if os.environ.get(MULTIPROCESS_DIRECTORY):
            combined = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            return bytes(prometheus_client.generate_latest(combined))
        return bytes(prometheus_client.generate_latest(self.registry))


def call_kind(path: str) -> str:
    """What a call to the URL path ``path`` is: a kind of :data:`CALL_KINDS`, else ``other``."""
    return next((kind for kind, ending in CALL_KINDS if ending.search(path)), OTHER_CALL)


_lock = threading.Lock()
_metrics: Metrics | None = None


def process_metrics() -> Metrics:
    """This process's metrics, made on first use (a metric name may be registered once)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = Metrics()
        return _metrics


def install_metrics(app: Flask, path: str, store: CatalogStore) -> Metrics:
    """Count sign-ins and time callbacks of ``app``, and serve the metrics at ``path``."""
    if prometheus_client is None:
        raise ConfigError(
            "BITBUCKET_METRICS_PATH needs the metrics extra: "
            "pip install 'bitbucket-signin[metrics]'"
        )
    metrics = process_metrics()
    observe_calls(metrics.observe_call)

    def count_success(sender: Flask, **extra: Any) -> None:
        metrics.sign_ins.labels(outcome=SUCCESS, reason="").inc()

    def count_failure(sender: Flask, *, error: SignInError, **extra: Any) -> None:
        outcome, reason = outcome_of(error)
        metrics.sign_ins.labels(outcome=outcome, reason=reason).inc()

    def count_rate_limited(sender: Flask, **extra: Any) -> None:
        metrics.rate_limited.inc()

    signed_in.connect(count_success, sender=app, weak=False)
    sign_in_rate_limited.connect(count_rate_limited, sender=app, weak=False)
    sign_in_failed.connect(count_failure, sender=app, weak=False)

    @app.before_request
    def start_timing() -> None:
        if request.endpoint in CALLBACK_ENDPOINTS:
            g.setdefault(_CALLBACK_STARTED, time.perf_counter())

    @app.after_request
    def stop_timing(response: Response) -> Response:
        started = g.pop(_CALLBACK_STARTED, None)
        if started is not None:
            metrics.callback_seconds.observe(time.perf_counter() - started)
        return response

    def serve_metrics() -> Response:
        return Response(
            metrics.exposition(store), content_type=prometheus_client.CONTENT_TYPE_LATEST
        )

    app.add_url_rule(path, "bitbucket_signin_metrics", serve_metrics)
    return metrics
