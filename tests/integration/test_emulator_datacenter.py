"""The emulator playing Bitbucket Data Center, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bitbucket_signin.emulator import (
    AccountsError,
    EmulatorServer,
    datacenter_from_dict,
    load_accounts,
    load_datacenter,
)

from ..support import DATA

ACCOUNTS = DATA / "accounts.yaml"
CLIENT = ("dc-client-id", "dc-client-secret")
REDIRECT = "http://127.0.0.1:7007/api/auth/bitbucketServer/handler/frame"
VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(load_accounts(ACCOUNTS), datacenter=load_datacenter(ACCOUNTS)) as emulator:
        yield emulator


@pytest.fixture
def dc(server: EmulatorServer) -> Iterator[str]:
    """The instance's base URL (with its context path), the emulator reset around the test."""
    requests.post(f"{server.url}/_emulator/reset", timeout=5).raise_for_status()
    assert server.datacenter_url is not None
    yield server.datacenter_url
    requests.post(f"{server.url}/_emulator/reset", timeout=5).raise_for_status()


def query(**extra: str) -> dict[str, str]:
    return {
        "client_id": CLIENT[0],
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "st-1",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **extra,
    }


def control(dc: str) -> str:
    return dc.rsplit("/bitbucket", 1)[0] + "/_emulator"


def get_code(dc: str, who: str = "jane@example.com") -> str:
    response = requests.get(
        f"{control(dc)}/datacenter/authorize-as/{who}",
        params=query(),
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == ["st-1"]
    return params["code"][0]


def token(dc: str, **form: str) -> requests.Response:
    body = {"client_id": CLIENT[0], "client_secret": CLIENT[1], "redirect_uri": REDIRECT, **form}
    return requests.post(f"{dc}/rest/oauth2/latest/token", data=body, timeout=5)


def sign_in(dc: str, who: str = "jane@example.com") -> dict[str, Any]:
    response = token(
        dc, grant_type="authorization_code", code=get_code(dc, who), code_verifier=VERIFIER
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get(dc: str, path: str, access_token: str | None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    return requests.get(f"{dc}{path}", headers=headers, params=params, timeout=5)


def advance(dc: str, seconds: float) -> None:
    requests.post(f"{control(dc)}/clock", json={"advance": seconds}, timeout=5).raise_for_status()


def test_consent_page_lists_users_and_deny_sends_access_denied(dc: str) -> None:
    page = requests.get(f"{dc}/rest/oauth2/latest/authorize", params=query(), timeout=5)
    assert page.status_code == 200
    for shown in ("Allow as Jane Doe", "(inactive)", "(service)"):
        assert shown in page.text
    denied = requests.post(
        f"{dc}/rest/oauth2/latest/authorize",
        data={**query(), "action": "deny"},
        allow_redirects=False,
        timeout=5,
    )
    assert parse_qs(urlsplit(denied.headers["Location"]).query)["error"] == ["access_denied"]


@pytest.mark.parametrize(
    ("change", "title"),
    [
        ({"client_id": "nobody"}, "Invalid client_id"),
        ({"redirect_uri": REDIRECT + "/more"}, "Invalid redirect_uri"),
        ({"redirect_uri": REDIRECT.replace("7007", "7008")}, "Invalid redirect_uri"),
        ({"code_challenge_method": "plain"}, "Unsupported code_challenge_method"),
        ({"response_type": "token"}, "Unsupported response_type"),
    ],
)
def test_authorize_refuses_anything_but_the_registered_link(
    dc: str, change: dict[str, str], title: str
) -> None:
    response = requests.get(f"{dc}/rest/oauth2/latest/authorize", params=query(**change), timeout=5)
    assert response.status_code == 400
    assert title in response.text


def test_whoami_then_filter_then_slug(dc: str) -> None:
    access = sign_in(dc)["access_token"]
    whoami = get(dc, "/plugins/servlet/applinks/whoami", access)
    assert (whoami.status_code, whoami.text) == (200, "jane@example.com\n")
    assert whoami.headers["X-AUSERNAME"] == "jane@example.com"
    listed = get(dc, "/rest/api/latest/users", access, filter="jane@example.com").json()
    assert [user["name"] for user in listed["values"]] == ["mallory", "jane@example.com"]
    assert listed["isLastPage"] is True
    assert get(dc, "/rest/api/latest/users/jane@example.com", access).status_code == 404
    jane = get(dc, "/rest/api/latest/users/jane_example.com", access, avatarSize=64).json()
    assert jane | {"links": None} == {
        "name": "jane@example.com",
        "emailAddress": "jane@example.com",
        "id": 101,
        "displayName": "Jane Doe",
        "active": True,
        "slug": "jane_example.com",
        "type": "NORMAL",
        "links": None,
        "avatarUrl": "/bitbucket/users/jane_example.com/avatar.png?s=64",
    }
    avatar = requests.get(dc.rsplit("/bitbucket", 1)[0] + jane["avatarUrl"], timeout=5)
    assert avatar.headers["Content-Type"] == "image/svg+xml"


def test_not_signed_in_whoami_is_empty_and_the_api_answers_401(dc: str) -> None:
    for access in (None, "not-a-token"):
        whoami = get(dc, "/plugins/servlet/applinks/whoami", access)
        assert (whoami.status_code, whoami.text) == (200, "")
        assert "X-AUSERNAME" not in whoami.headers
        users = get(dc, "/rest/api/latest/users", access, filter="jane")
        assert users.status_code == 401
        assert users.json()["errors"][0]["message"].startswith("Authentication failed")


def test_users_filter_pages(dc: str) -> None:
    access = sign_in(dc)["access_token"]
    first = get(dc, "/rest/api/latest/users", access, filter="example", limit=2).json()
    assert (first["size"], first["isLastPage"], first["nextPageStart"]) == (2, False, 2)
    rest = get(dc, "/rest/api/latest/users", access, filter="example", start=2, limit=100).json()
    assert rest["isLastPage"] is True
    names = [u["name"] for u in first["values"] + rest["values"]]
    assert names == ["mallory", "jane@example.com", "lchen", "omar", "gone", "ci-bot", "val"]


def test_token_answer_and_single_use_code(dc: str) -> None:
    code = get_code(dc)
    first = token(dc, grant_type="authorization_code", code=code, code_verifier=VERIFIER)
    assert first.status_code == 200
    assert set(first.json()) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "created_at",
    }
    assert first.headers["Cache-Control"] == "no-store"
    again = token(dc, grant_type="authorization_code", code=code, code_verifier=VERIFIER)
    assert again.json()["error"] == "invalid_grant"


def test_codes_live_ten_seconds_on_the_emulator_clock(dc: str) -> None:
    fresh = get_code(dc)
    advance(dc, 9.5)
    ok = token(dc, grant_type="authorization_code", code=fresh, code_verifier=VERIFIER)
    assert ok.status_code == 200
    stale = get_code(dc)
    advance(dc, 10)
    expired = token(dc, grant_type="authorization_code", code=stale, code_verifier=VERIFIER)
    assert expired.status_code == 400
    assert expired.json() == {
        "error": "invalid_grant",
        "error_description": "Authorization code expired",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"code_verifier": "w" * 50},
        {"code_verifier": ""},
        {"redirect_uri": REDIRECT + "?x=1"},
        {"client_secret": "wrong"},
    ],
)
def test_token_needs_the_verifier_the_identical_redirect_uri_and_the_secret(
    dc: str, change: dict[str, str]
) -> None:
    form = {"grant_type": "authorization_code", "code": get_code(dc), "code_verifier": VERIFIER}
    response = token(dc, **{**form, **change})
    assert response.status_code in (400, 401)
    assert "access_token" not in response.json()


def test_client_credentials_only_in_a_form_body(dc: str) -> None:
    code = get_code(dc)
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": VERIFIER}
    basic = requests.post(
        f"{dc}/rest/oauth2/latest/token",
        data={**form, "redirect_uri": REDIRECT},
        auth=CLIENT,
        timeout=5,
    )
    assert basic.status_code == 401
    as_json = requests.post(
        f"{dc}/rest/oauth2/latest/token",
        json={**form, "redirect_uri": REDIRECT, "client_id": CLIENT[0], "client_secret": CLIENT[1]},
        timeout=5,
    )
    assert as_json.status_code == 400


def test_refresh_rotates_and_ends_the_old_tokens(dc: str) -> None:
    first = sign_in(dc)
    second = token(dc, grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert get(dc, "/rest/api/latest/users", first["access_token"]).status_code == 401
    assert get(dc, "/rest/api/latest/users", second["access_token"]).status_code == 200
    reused = token(dc, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"
    other_uri = token(
        dc,
        grant_type="refresh_token",
        refresh_token=second["refresh_token"],
        redirect_uri=REDIRECT + "x",
    )
    assert other_uri.status_code == 400


@pytest.mark.parametrize(
    ("endpoint", "path", "kind"),
    [
        ("dc-whoami", "/plugins/servlet/applinks/whoami", "rest"),
        ("dc-users", "/rest/api/latest/users", "rest"),
        ("dc-user", "/rest/api/latest/users/jane_example.com", "rest"),
        ("dc-authorize", "/rest/oauth2/latest/authorize", "page"),
    ],
)
def test_faults_answer_in_data_centers_shapes(dc: str, endpoint: str, path: str, kind: str) -> None:
    access = sign_in(dc)["access_token"]
    requests.put(
        f"{control(dc)}/faults/{endpoint}", json={"status": 503, "times": 1}, timeout=5
    ).raise_for_status()
    response = get(dc, path, access, **(query() if kind == "page" else {}))
    assert response.status_code == 503
    if kind == "rest":
        assert response.json() == {
            "errors": [{"context": None, "message": "Service Unavailable", "exceptionName": None}]
        }
    assert get(dc, path, access, **(query() if kind == "page" else {})).status_code == 200


def test_token_fault_and_request_log(dc: str) -> None:
    requests.put(f"{control(dc)}/faults/dc-token", json={"status": 500, "times": 1}, timeout=5)
    failed = token(dc, grant_type="authorization_code", code=get_code(dc), code_verifier=VERIFIER)
    assert failed.json()["error"] == "server_error"
    logged = requests.get(f"{control(dc)}/requests", params={"endpoint": "dc-token"}, timeout=5)
    (entry,) = logged.json()["requests"]
    assert entry["client_auth"] == "body"
    assert entry["code_verifier"] is True
    assert entry["path"] == "/bitbucket/rest/oauth2/latest/token"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("x", "'datacenter' must be a mapping"),
        ({"context_path": "bitbucket", "consumers": []}, "context_path"),
        ({"code_lifetime": 0, "consumers": []}, "code_lifetime"),
        ({"consumers": []}, "'consumers' must be a non-empty list"),
        (
            {"consumers": [{"key": "k", "secret": "s", "redirect_url": "ftp://x"}]},
            "redirect_url must be an http\\(s\\) URL",
        ),
        (
            {
                "consumers": [{"key": "k", "secret": "s", "redirect_url": "http://x"}],
                "users": [{"id": "1", "name": "a"}],
            },
            "id must be a positive integer",
        ),
        (
            {
                "consumers": [{"key": "k", "secret": "s", "redirect_url": "http://x"}],
                "users": [{"id": 1, "name": "a@b"}, {"id": 2, "name": "a_b"}],
            },
            "the same slug",
        ),
        (
            {
                "consumers": [{"key": "k", "secret": "s", "redirect_url": "http://x"}],
                "users": [{"id": 1, "name": "a", "type": "ADMIN"}],
            },
            "type must be NORMAL or SERVICE",
        ),
    ],
)
def test_datacenter_section_validation(section: Any, message: str) -> None:
    with pytest.raises(AccountsError, match=message):
        datacenter_from_dict(section, "x.yaml")


def test_cli_serves_data_center_under_its_context_path() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bitbucket_signin.emulator",
            "--port",
            "0",
            "--accounts",
            str(ACCOUNTS),
            "--context-path",
            "/git",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Bitbucket emulator on http://127.0.0.1:")
        line = process.stdout.readline()
        assert line.startswith("Bitbucket Data Center emulator on http://127.0.0.1:"), line
        base = line.split()[5]
        assert base.endswith("/git")
        page = requests.get(f"{base}/rest/oauth2/latest/authorize", params=query(), timeout=5)
        assert page.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_link_registered_at_run_time_until_the_reset(dc: str) -> None:
    other = "http://127.0.0.1:9999/cb"
    link = {"secret": "s2", "redirect_url": other}
    bad = requests.put(f"{control(dc)}/datacenter/links/k2", json={"secret": "s"}, timeout=5)
    assert bad.status_code == 400
    requests.put(f"{control(dc)}/datacenter/links/k2", json=link, timeout=5).raise_for_status()
    params = {**query(), "client_id": "k2", "redirect_uri": other}
    page = requests.get(f"{dc}/rest/oauth2/latest/authorize", params=params, timeout=5)
    assert page.status_code == 200
    requests.post(f"{control(dc)}/reset", timeout=5).raise_for_status()
    page = requests.get(f"{dc}/rest/oauth2/latest/authorize", params=params, timeout=5)
    assert page.status_code == 400


def test_cli_context_path_needs_a_datacenter_section() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bitbucket_signin.emulator",
            "--accounts",
            str(Path(__file__).parent.parent / "emulator_accounts.yaml"),
            "--context-path",
            "/git",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "has no 'datacenter' section" in result.stderr
