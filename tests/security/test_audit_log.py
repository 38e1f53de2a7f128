"""The audit log: one JSON record per sign-in attempt, over real HTTP against the emulator, for
a success and every kind of failure, holding the documented fields and never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from bitbucket_signin.audit import AUDIT_LOGGER
from bitbucket_signin.emulator import EmulatorServer

from ..frontend_support import APP_ORIGIN, FRONTEND, frontend_sign_in
from ..support import (
    CLIENT_ID,
    CLIENT_SECRET,
    JANE,
    OMAR,
    SECRET_KEY,
    VAL,
    deny_at_emulator,
    grant_at_emulator,
    serve,
    set_fault,
    sign_in,
    start_sign_in,
)
from .conftest import leaked, log_texts, secret_values

FIELDS = [
    "time",
    "outcome",
    "reason",
    "provider",
    "user_id",
    "uuid",
    "account_id",
    "resolver",
    "entity_ref",
    "client_address",
    "request_id",
    "flow",
]
ROOT = Path(__file__).parent.parent.parent


def audit_records(logs: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in logs.records if r.name == AUDIT_LOGGER]


def deny(http: requests.Session, authorize_url: str) -> requests.Response:
    denied = deny_at_emulator(authorize_url)
    return http.get(denied.headers["Location"], allow_redirects=False, timeout=10)


def test_one_record_per_attempt_with_every_field_and_no_secret(
    make_app: Callable[..., Flask],
    bitbucket: EmulatorServer,
    logs: pytest.LogCaptureFixture,
) -> None:
    app = make_app(
        BITBUCKET_RATE_LIMIT="5 per minute",  # callbacks and starts counted apart
        BITBUCKET_SIGNIN_RESOLVERS=[
            "userIdMatchingUserEntityAnnotation",
            "usernameMatchingUserEntityAnnotation",
        ],
    )
    codes: list[str] = []
    states: list[str] = []

    def attempt(http: requests.Session, url: str, account: str) -> requests.Response:
        authorize_url = start_sign_in(http, url)
        states.append(parse_qs(urlsplit(authorize_url).query)["state"][0])
        callback_url = grant_at_emulator(bitbucket.url, authorize_url, account)
        codes.append(parse_qs(urlsplit(callback_url).query)["code"][0])
        return http.get(callback_url, allow_redirects=False, timeout=30)

    with serve(app) as url, requests.Session() as http:
        http.headers["X-Request-ID"] = "req-42"
        assert attempt(http, url, JANE).status_code == 302  # success
        assert attempt(http, url, VAL).status_code == 403  # not in the catalog
        assert deny(http, start_sign_in(http, url)).status_code == 403  # pressed Deny
        stale = http.get(f"{url}/api/auth/bitbucket/handler/frame?state=x&code=y", timeout=10)
        assert stale.status_code == 400  # a link that is no sign-in of this browser
        set_fault(bitbucket.url, "token", status=503)
        del http.headers["X-Request-ID"]
        assert attempt(http, url, JANE).status_code == 503  # Bitbucket failing
        limited = http.get(f"{url}/api/auth/bitbucket/handler/frame?state=x&code=y", timeout=10)
        assert limited.status_code == 429  # the sixth callback this minute

    records = audit_records(logs)
    assert [(r["outcome"], r["reason"]) for r in records] == [
        ("success", ""),
        ("refused", "UserNotInCatalogError"),
        ("refused", "Denied"),
        ("refused", "StaleLink"),
        ("failed", "UpstreamError"),
        ("refused", "RateLimited"),
    ]
    assert all(list(record) == FIELDS for record in records)
    success, not_found = records[0], records[1]
    assert success["uuid"] == JANE
    assert success["account_id"] == "5c65cab48bcc9e016aeece31"
    assert success["resolver"] == "userIdMatchingUserEntityAnnotation"
    assert success["entity_ref"] == "user:default/jdoe"
    assert not_found["uuid"] == VAL
    assert not_found["entity_ref"] is None
    assert {r["client_address"] for r in records} == {"127.0.0.1"}
    assert [r["flow"] for r in records] == ["server"] * 5 + [None]  # refused before it was read
    assert [r["request_id"] for r in records[:4]] == ["req-42"] * 4
    assert len({r["request_id"] for r in records[4:]}) == 2  # made up when none is given
    assert all(r["uuid"] is None for r in records[2:])  # Bitbucket never said who
    assert all(r["time"].endswith("+00:00") for r in records)
    secrets = [*secret_values(bitbucket), *codes, *states, SECRET_KEY]
    audit_texts = [r.getMessage() for r in logs.records if r.name == AUDIT_LOGGER]
    assert leaked(audit_texts, secrets) == []
    assert leaked(log_texts(logs), secret_values(bitbucket)) == []


def test_a_workspace_refusal_names_the_account(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer, logs: pytest.LogCaptureFixture
) -> None:
    app = make_app(BITBUCKET_ALLOWED_WORKSPACES=["elsewhere"])
    with serve(app) as url, requests.Session() as http:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 403
    (record,) = audit_records(logs)
    assert (record["outcome"], record["reason"], record["uuid"]) == (
        "refused",
        "WorkspaceNotAllowed",
        JANE,
    )


def test_a_frontends_flow_is_recorded(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer, logs: pytest.LogCaptureFixture
) -> None:
    app = make_app(**FRONTEND)
    with serve(app) as url, requests.Session() as http:
        assert frontend_sign_in(http, url, bitbucket.url, JANE).status_code == 200
        redirected = frontend_sign_in(
            http, url, bitbucket.url, VAL, "redirect", redirectUrl=f"{APP_ORIGIN}/catalog"
        )
        assert redirected.status_code == 302
    records = audit_records(logs)
    assert [(r["flow"], r["outcome"], r["entity_ref"]) for r in records] == [
        ("popup", "success", "user:default/jdoe"),
        ("redirect", "refused", None),
    ]
    texts = [r.getMessage() for r in logs.records if r.name == AUDIT_LOGGER]
    assert leaked(texts, secret_values(bitbucket)) == []


def test_a_hostile_request_id_is_replaced(
    app: Flask, live_app: str, logs: pytest.LogCaptureFixture
) -> None:
    hostile = '"} {"outcome": "success" ' + "x" * 200
    requests.get(
        f"{live_app}/api/auth/bitbucket/handler/frame?state=x&code=y",
        headers={"X-Request-ID": hostile},
        timeout=10,
    )
    (record,) = audit_records(logs)
    assert record["outcome"] == "refused"
    assert len(record["request_id"]) == 32
    assert hostile not in record["request_id"]


def test_the_standalone_app_writes_the_records_to_standard_error(catalog_file: Path) -> None:
    """``wsgi.py`` (and ``create_app``) send the audit log to standard error, one JSON line
    each, when nobody configured logging."""
    script = (
        "import wsgi\n"
        "wsgi.app.test_client().get('/api/auth/bitbucket/handler/frame?state=x&code=y')\n"
    )
    env = {
        **os.environ,
        "FLASK_SECRET_KEY": SECRET_KEY + "-and-more-bytes",
        "FLASK_BITBUCKET_CLIENT_ID": CLIENT_ID,
        "FLASK_BITBUCKET_CLIENT_SECRET": CLIENT_SECRET,
        "FLASK_BITBUCKET_CATALOG": str(catalog_file),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (line,) = result.stderr.splitlines()
    record = json.loads(line)
    assert list(record) == FIELDS
    assert (record["outcome"], record["reason"]) == ("refused", "StaleLink")


def test_the_other_refusals_and_failures(
    make_app: Callable[..., Flask],
    catalog_file: Path,
    bitbucket: EmulatorServer,
    logs: pytest.LogCaptureFixture,
) -> None:
    """No code, an error Bitbucket sent back, and two users sharing the email that matched."""
    with catalog_file.open("a", encoding="utf-8") as catalog:
        catalog.write(
            "---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: omar2}\n"
            "spec: {profile: {email: omar@example.com}}\n"
        )
    app = make_app(BITBUCKET_SIGNIN_RESOLVERS=["emailMatchingUserEntityProfileEmail"])
    with serve(app) as url, requests.Session() as http:
        for query, status in [("", 400), ("&error=server_error", 502)]:
            state = parse_qs(urlsplit(start_sign_in(http, url)).query)["state"][0]
            callback = f"{url}/api/auth/bitbucket/handler/frame?state={state}{query}"
            assert http.get(callback, timeout=10).status_code == status
        assert sign_in(http, url, bitbucket.url, OMAR).status_code == 403
    assert [(r["outcome"], r["reason"], r["uuid"]) for r in audit_records(logs)] == [
        ("refused", "IncompleteCallback", None),
        ("failed", "ProviderError", None),
        ("refused", "ConflictError", OMAR),
    ]
