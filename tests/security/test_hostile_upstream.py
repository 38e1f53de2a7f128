"""A hostile Bitbucket: answers that drip, redirect elsewhere, never end, or page through
ever new paths.

Each test starts a small hostile upstream (``hostile.py``) in place of one Bitbucket endpoint,
the emulator playing the others, and signs Jane in over real HTTP. The sign-in must end in
time with a clear page (504 or 502, never 500), follow no redirect, read no more than the
body cap, and leave no trace of the upstream's paths in the metrics.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests
from flask import Flask

from bitbucket_signin.config import DEFAULTS
from bitbucket_signin.emulator import EmulatorServer

from ..support import JANE, TOKEN_PATH, call_counts, docs_page, samples, serve, set_fault, sign_in
from .hostile import (
    JSON,
    Answer,
    Upstream,
    by_path,
    drip,
    flood,
    hostile,
    http_answer,
    json_body,
    whole,
)

TIMEOUT = 1.0
SLACK = 3.0  # seconds beyond a deadline that a loaded machine may take to answer
MiB = 1024 * 1024
TOKEN = {"access_token": "a-token", "token_type": "bearer", "expires_in": 7200, "scope": "account"}
USER = {"type": "user", "uuid": JANE, "account_id": "5c65cab48bcc9e016aeece31"}
# endpoint → the setting that sends it to an upstream (and the path that setting names),
# the path it is then called at, and a valid answer of Bitbucket's
ENDPOINTS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "token": ("BITBUCKET_TOKEN_URL", TOKEN_PATH, TOKEN_PATH, TOKEN),
    "user": ("BITBUCKET_API_BASE_URL", "/2.0", "/2.0/user", USER),
}


def settings_for(endpoint: str, upstream: Upstream) -> dict[str, str]:
    """The setting that sends ``endpoint``'s calls to ``upstream``."""
    setting, named_path, _, _ = ENDPOINTS[endpoint]
    return {setting: upstream.url + named_path}


def timed_sign_in(app: Flask, bitbucket: EmulatorServer) -> tuple[requests.Response, float]:
    """Jane's sign-in against ``app`` on a live server, and how long the callback took."""
    with serve(app) as url, requests.Session() as http:
        began = time.monotonic()
        response = sign_in(http, url, bitbucket.url, JANE)
        return response, time.monotonic() - began


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("dripping", ["from the status line", "the body only"])
def test_a_dripping_answer_ends_at_the_deadline(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer, endpoint: str, dripping: str
) -> None:
    """One byte every 50 ms never trips a read timeout; the call's deadline still ends it."""
    valid = ENDPOINTS[endpoint][3]
    answer = http_answer(200, json_body(valid, padded_to=4000), JSON)  # 200 s at that pace
    after = 0 if dripping == "from the status line" else answer.index(b"\r\n\r\n") + 4
    with hostile(drip(answer, after=after)) as upstream:
        app = make_app(BITBUCKET_TIMEOUT=TIMEOUT, **settings_for(endpoint, upstream))
        response, seconds = timed_sign_in(app, bitbucket)
        finished, sent = upstream.answers_finished, upstream.bytes_sent
    assert response.status_code == 504
    assert "did not answer in time" in response.text
    assert seconds < TIMEOUT + SLACK
    assert finished == 0  # the upstream was still dripping when the sign-in page came
    assert after < sent < len(answer)


def test_the_sign_in_as_a_whole_has_a_deadline(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    """Two calls each well within BITBUCKET_TIMEOUT, together beyond the callback's deadline."""
    set_fault(bitbucket.url, "token", latency=1.0)
    set_fault(bitbucket.url, "user", latency=1.0)
    app = make_app(BITBUCKET_TIMEOUT=5, BITBUCKET_CALLBACK_TIMEOUT=1.5)
    response, seconds = timed_sign_in(app, bitbucket)
    assert response.status_code == 504
    assert "did not answer in time (user)" in response.text
    assert seconds < 1.5 + SLACK


def test_the_callback_deadline_defaults_to_two_calls() -> None:
    assert DEFAULTS["TIMEOUT"] == 10.0
    assert DEFAULTS["CALLBACK_TIMEOUT"] is None
    assert (
        "| `BITBUCKET_CALLBACK_TIMEOUT` | Seconds one sign-in may wait on Bitbucket in all "
        "(the token call, then the profile calls); at most a day. | twice `BITBUCKET_TIMEOUT` |"
    ) in docs_page("configuration")


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_redirect_is_not_followed(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer, endpoint: str, status: int
) -> None:
    """A redirect to another origin serving a valid answer: 502, and that origin hears nothing
    (307 would replay the token request, code and PKCE verifier included)."""
    _, _, path, valid = ENDPOINTS[endpoint]
    with hostile(whole(http_answer(200, json_body(valid), JSON))) as elsewhere:
        redirect = whole(http_answer(status, b"", {"Location": elsewhere.url + path}))
        with hostile(redirect) as upstream:
            app = make_app(**settings_for(endpoint, upstream))
            response, _ = timed_sign_in(app, bitbucket)
    assert response.status_code == 502
    assert "redirect, which is not followed" in response.text
    assert len(upstream.requests) == 1
    assert elsewhere.requests == []


HUGE = 200 * MiB
EMAIL = b'{"email": "jane@example.com", "is_primary": true, "is_confirmed": true}, '
FLOODS: dict[str, tuple[Callable[[Upstream], dict[str, Any]], Answer]] = {
    "token": (
        lambda upstream: {"BITBUCKET_TOKEN_URL": upstream.url + TOKEN_PATH},
        flood(HUGE, b'{"access_token": "', b"a"),
    ),
    "emails": (
        lambda upstream: {
            "BITBUCKET_API_BASE_URL": upstream.url + "/2.0",
            "BITBUCKET_FETCH_EMAILS": True,
        },
        by_path(
            {
                "/2.0/user": whole(http_answer(200, json_body(USER), JSON)),
                "/2.0/user/emails": flood(HUGE, b'{"values": [', EMAIL),
            }
        ),
    ),
}


@pytest.mark.parametrize("endpoint", FLOODS)
def test_a_huge_answer_is_cut_at_the_cap(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer, endpoint: str
) -> None:
    """A 200 MB answer, made as it is sent: 502 at once, after reading about the cap (1 MiB);
    what else was sent sits in the loopback's socket buffers (a few MiB)."""
    settings, answer = FLOODS[endpoint]
    with hostile(answer) as upstream:
        app = make_app(BITBUCKET_TIMEOUT=30, **settings(upstream))
        response, seconds = timed_sign_in(app, bitbucket)
        assert upstream.wait_until_idle(10)
    assert response.status_code == 502
    assert "larger answer than this site accepts" in response.text
    assert seconds < SLACK
    assert upstream.bytes_sent < 32 * MiB


def test_the_cap_is_a_setting(make_app: Callable[..., Flask], bitbucket: EmulatorServer) -> None:
    """Bitbucket's own token answer is longer than 64 bytes."""
    response, _ = timed_sign_in(make_app(BITBUCKET_MAX_RESPONSE_BYTES=64), bitbucket)
    assert response.status_code == 502
    assert "larger answer than this site accepts (token exchange)" in response.text
    assert DEFAULTS["MAX_RESPONSE_BYTES"] == MiB
    assert (
        "| `BITBUCKET_MAX_RESPONSE_BYTES` | The longest answer read from Bitbucket, in bytes "
        "(beyond it: a 502 page). | `1048576` |"
    ) in docs_page("configuration")


def test_next_page_links_never_become_metric_labels(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    """Next-page links come from the answer (only their origin is checked): an API that pages
    ``/user/emails`` through fresh random paths must not add a series per path to
    ``bitbucket_signin_bitbucket_call_seconds``, which would grow for as long as the process
    lives. Every call is counted under one of seven fixed kinds."""
    next_pages = 4

    def emails_through_new_paths(upstream: Upstream, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.partition("?")[0]
        if path == "/2.0/user":
            upstream.send(handler, http_answer(200, json_body(USER), JSON))
            return
        # the first page, then /2.0/user/emails/<random>/<page number>
        page = 0 if path == "/2.0/user/emails" else int(path.rpartition("/")[2])
        body: dict[str, Any] = {"values": []}
        if page < next_pages:
            body["next"] = f"{upstream.url}/2.0/user/emails/{secrets.token_hex(8)}/{page + 1}"
        upstream.send(handler, http_answer(200, json_body(body), JSON))

    with hostile(emails_through_new_paths) as upstream:
        app = make_app(
            BITBUCKET_API_BASE_URL=f"{upstream.url}/2.0",
            BITBUCKET_FETCH_EMAILS=True,
            BITBUCKET_METRICS_PATH="/metrics",
        )
        with serve(app) as url:
            before = samples(requests.get(f"{url}/metrics", timeout=10).text)
            for _ in range(3):
                with requests.Session() as http:
                    assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
            after = samples(requests.get(f"{url}/metrics", timeout=10).text)
    labels = {
        labels for name, labels in after if name == "bitbucket_signin_bitbucket_call_seconds_count"
    }
    kinds = ("token", "user", "emails", "workspaces", "whoami", "user search", "other")
    assert labels <= {(("call", kind),) for kind in kinds}
    calls = call_counts(after) - call_counts(before)
    assert calls == {"token": 3, "user": 3, "emails": 3, "other": 3 * next_pages}
