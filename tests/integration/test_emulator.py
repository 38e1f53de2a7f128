"""The Bitbucket Cloud emulator, exercised over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bitbucket_signin.emulator import (
    AccountsError,
    EmulatorServer,
    FaultError,
    config_from_dict,
    generated_account,
    generated_accounts,
    load_accounts,
    parse_fault_spec,
)

from ..support import JANE, clear_faults, reset_emulator, set_fault

ACCOUNTS_FILE = Path(__file__).parent.parent / "emulator_accounts.yaml"
CALLBACK = "http://localhost:7007/api/auth/bitbucket"
DEMO = ("demo-client-id", "demo-client-secret")
LEGACY = ("legacy-client-id", "legacy-client-secret")
LIMITED = ("limited-client-id", "limited-client-secret")
MAX_UUID = "{0e4a5f1c-2d3b-4c5d-8e9f-a0b1c2d3e4f5}"
INVALID_TOKEN = {
    "type": "error",
    "error": {"message": "Token is invalid, expired, or not supported for this endpoint."},
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(load_accounts(ACCOUNTS_FILE, generate=3)) as emulator:
        yield emulator


@pytest.fixture
def bb(server: EmulatorServer) -> Iterator[str]:
    """The emulator's base URL, reset before and after each test."""
    reset_emulator(server.url)
    yield server.url
    reset_emulator(server.url)


def authorize_query(client: tuple[str, str] = DEMO, **extra: str) -> dict[str, str]:
    return {"client_id": client[0], "response_type": "code", "state": "st-1", **extra}


def redirect_params(response: requests.Response) -> tuple[str, dict[str, str]]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return location, query


def get_code(bb: str, who: str = "jdoe", client: tuple[str, str] = DEMO, **extra: str) -> str:
    response = requests.get(
        f"{bb}/_emulator/authorize-as/{who}",
        params=authorize_query(client, **extra),
        allow_redirects=False,
        timeout=5,
    )
    return redirect_params(response)[1]["code"]


def token_request(
    bb: str, data: dict[str, str], client: tuple[str, str] = DEMO
) -> requests.Response:
    return requests.post(f"{bb}/site/oauth2/access_token", data=data, auth=client, timeout=5)


def sign_in(bb: str, who: str = "jdoe", client: tuple[str, str] = DEMO) -> dict[str, Any]:
    code = get_code(bb, who, client)
    response = token_request(bb, {"grant_type": "authorization_code", "code": code}, client)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def api(bb: str, path: str, token: str, **params: str) -> requests.Response:
    return requests.get(
        f"{bb}/2.0{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


def faults(bb: str) -> dict[str, Any]:
    """The faults in place, by endpoint, as ``GET /_emulator/faults`` reports them."""
    found: dict[str, Any] = requests.get(f"{bb}/_emulator/faults", timeout=5).json()["faults"]
    return found


def logged(bb: str, endpoint: str) -> list[dict[str, Any]]:
    response = requests.get(f"{bb}/_emulator/requests", params={"endpoint": endpoint}, timeout=5)
    entries: list[dict[str, Any]] = response.json()["requests"]
    return entries


# --- authorize ----------------------------------------------------------------------------


def test_authorize_page_lists_accounts_and_deny(bb: str) -> None:
    response = requests.get(f"{bb}/site/oauth2/authorize", params=authorize_query(), timeout=5)
    assert response.status_code == 200
    page = response.text
    assert "Demo App" in page
    assert "Read your email addresses" in page
    assert "Grant access as Jane Doe" in page
    assert "Grant access as Max &lt;Mails&gt; &amp; Co" in page
    assert ">Deny</button>" in page
    assert page.count('<form method="post"') == 2 + 3 + 1  # file accounts, generated, deny
    assert '<input type="hidden" name="state" value="st-1">' in page
    assert "<script" not in page


def test_avatar_is_served_by_the_emulator(bb: str) -> None:
    response = requests.get(f"{bb}/avatar/5c65cab48bcc9e016aeece31.svg", timeout=5)
    assert response.headers["Content-Type"] == "image/svg+xml"
    assert ">JD</text>" in response.text


def test_unknown_client_gets_error_page(bb: str) -> None:
    response = requests.get(
        f"{bb}/site/oauth2/authorize",
        params=authorize_query(("nobody", "")),
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 400
    assert "Invalid client_id" in response.text


@pytest.mark.parametrize(
    ("redirect_uri", "status"),
    [
        (f"{CALLBACK}/handler/frame", 200),
        (CALLBACK, 200),
        ("http://localhost:7007/other", 400),
        ("https://evil.example/api/auth/bitbucket", 400),
    ],
)
def test_redirect_uri_must_extend_callback(bb: str, redirect_uri: str, status: int) -> None:
    query = authorize_query(redirect_uri=redirect_uri)
    page = requests.get(f"{bb}/site/oauth2/authorize", params=query, timeout=5)
    shortcut = requests.get(
        f"{bb}/_emulator/authorize-as/jdoe", params=query, allow_redirects=False, timeout=5
    )
    assert page.status_code == status
    if status == 400:
        assert "Invalid redirect_uri" in page.text
        assert "This integration is misconfigured" in page.text
        assert shortcut.status_code == 400
        assert "Location" not in shortcut.headers
    else:
        assert shortcut.headers["Location"].startswith(f"{redirect_uri}?code=")


@pytest.mark.parametrize(
    ("action", "answer"),
    [
        ("grant", {"state": "st-1", "code": r"[\w-]{21,}"}),
        ("deny", {"state": "st-1", "error": "access_denied", "error_description": r".+"}),
    ],
)
def test_consent_buttons_redirect_to_the_callback(
    bb: str, action: str, answer: dict[str, str]
) -> None:
    """Every field of the callback's query, each matching its pattern."""
    form = {**authorize_query(redirect_uri=f"{CALLBACK}/handler"), "account": JANE}
    response = requests.post(
        f"{bb}/site/oauth2/authorize",
        data={**form, "action": action},
        allow_redirects=False,
        timeout=5,
    )
    location, query = redirect_params(response)
    assert location.startswith(f"{CALLBACK}/handler?")
    assert set(query) == set(answer)
    assert all(re.fullmatch(pattern, query[key]) for key, pattern in answer.items()), query


@pytest.mark.parametrize(
    "who", ["jdoe", JANE, JANE.upper().strip("{}"), "5c65cab48bcc9e016aeece31"]
)
def test_authorize_as_accepts_uuid_username_or_account_id(bb: str, who: str) -> None:
    token = sign_in(bb, who)["access_token"]
    assert api(bb, "/user", token).json()["uuid"] == JANE


# --- token --------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["basic", "body"])
def test_client_auth_basic_or_body(bb: str, style: str) -> None:
    data = {"grant_type": "authorization_code", "code": get_code(bb)}
    if style == "basic":
        response = requests.post(f"{bb}/site/oauth2/access_token", data=data, auth=DEMO, timeout=5)
    else:
        data |= {"client_id": DEMO[0], "client_secret": DEMO[1]}
        response = requests.post(f"{bb}/site/oauth2/access_token", data=data, timeout=5)
    assert response.status_code == 200, response.text
    assert logged(bb, "token")[-1]["client_auth"] == style


UNAUTHORIZED_CLIENT = (
    401,
    "unauthorized_client",
    "Requests must be authenticated using OAuth client credentials",
)


@pytest.mark.parametrize(
    ("client", "body_as", "refusal"),
    [
        pytest.param((DEMO[0], "wrong"), "data", UNAUTHORIZED_CLIENT, id="wrong-secret"),
        pytest.param(("nobody", "x"), "data", UNAUTHORIZED_CLIENT, id="unknown-client"),
        pytest.param(None, "data", UNAUTHORIZED_CLIENT, id="no-credentials"),
        pytest.param(
            DEMO, "json", (400, "invalid_grant", "Unsupported grant type: None"), id="json-body"
        ),
    ],
)
def test_token_endpoint_refusals(
    bb: str, client: tuple[str, str] | None, body_as: str, refusal: tuple[int, str, str]
) -> None:
    body = {"grant_type": "authorization_code", "code": get_code(bb)}
    response = requests.post(
        f"{bb}/site/oauth2/access_token", **{body_as: body}, auth=client, timeout=5
    )
    status, error, description = refusal
    assert response.status_code == status
    assert response.json() == {"error": error, "error_description": description}


def test_token_response_and_single_use_code(bb: str) -> None:
    data = {"grant_type": "authorization_code", "code": get_code(bb)}
    first = token_request(bb, data)
    body = first.json()
    assert set(body) == {
        "access_token",
        "scope",
        "expires_in",
        "token_type",
        "state",
        "refresh_token",
    }
    assert body["scope"] == "account email"
    assert (body["expires_in"], body["token_type"], body["state"]) == (
        7200,
        "bearer",
        "authorization_code",
    )
    second = token_request(bb, data)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


def test_legacy_consumer_gets_scopes_field(bb: str) -> None:
    body = sign_in(bb, client=LEGACY)
    assert body["scopes"] == "account email"
    assert "scope" not in body


@pytest.mark.parametrize(
    ("client", "seconds_later"),
    [
        pytest.param(LEGACY, 0, id="bound-to-its-client"),
        pytest.param(DEMO, 601, id="expires-after-ten-minutes"),
    ],
)
def test_code_refused(bb: str, client: tuple[str, str], seconds_later: int) -> None:
    code = get_code(bb)
    advance = {"advance": seconds_later}
    requests.post(f"{bb}/_emulator/clock", json=advance, timeout=5).raise_for_status()
    response = token_request(bb, {"grant_type": "authorization_code", "code": code}, client)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(("sent", "status"), [(f"{CALLBACK}/x", 200), (CALLBACK, 400), (None, 400)])
def test_redirect_uri_must_be_repeated(bb: str, sent: str | None, status: int) -> None:
    data = {"grant_type": "authorization_code", "code": get_code(bb, redirect_uri=f"{CALLBACK}/x")}
    if sent is not None:
        data["redirect_uri"] = sent
    assert token_request(bb, data).status_code == status
    assert logged(bb, "token")[-1]["redirect_uri"] == sent


@pytest.mark.parametrize(
    ("verifier", "status"), [("right-verifier" * 4, 200), ("wrong-verifier" * 4, 400), (None, 200)]
)
def test_pkce_verifier_checked_only_when_sent(bb: str, verifier: str | None, status: int) -> None:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"right-verifier" * 4).digest())
    code = get_code(
        bb, code_challenge=challenge.rstrip(b"=").decode(), code_challenge_method="S256"
    )
    data = {"grant_type": "authorization_code", "code": code}
    if verifier is not None:
        data["code_verifier"] = verifier
    response = token_request(bb, data)
    assert response.status_code == status, response.text
    assert logged(bb, "token")[-1]["code_verifier"] is (verifier is not None)
    assert logged(bb, "authorize")[-1]["code_challenge"] is True


def test_refresh_tokens_rotate(bb: str) -> None:
    first = sign_in(bb)
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = token_request(bb, data)
    assert second.status_code == 200
    body = second.json()
    assert body["state"] == "refresh_token"
    assert body["refresh_token"] != first["refresh_token"]
    assert api(bb, "/user", body["access_token"]).status_code == 200
    reused = token_request(bb, data)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    garbage = token_request(bb, {"grant_type": "refresh_token", "refresh_token": "nope"})
    assert garbage.json()["error"] == "invalid_grant"


# --- API ----------------------------------------------------------------------------------


def test_user_object(bb: str) -> None:
    jane = api(bb, "/user", sign_in(bb)["access_token"]).json()
    assert jane["type"] == "user"
    assert (jane["uuid"], jane["account_id"], jane["username"]) == (
        JANE,
        "5c65cab48bcc9e016aeece31",
        "jdoe",
    )
    assert (jane["nickname"], jane["display_name"], jane["account_status"]) == (
        "jdoe",
        "Jane Doe",
        "active",
    )
    assert jane["created_on"]
    assert jane["links"]["avatar"]["href"] == f"{bb}/avatar/5c65cab48bcc9e016aeece31.svg"
    assert jane["links"]["html"]["href"].endswith("/%7B768f8c62-7f2a-4914-bf33-3f412fc1d3a4%7D/")
    max_ = api(bb, "/user", sign_in(bb, MAX_UUID)["access_token"]).json()
    assert "username" not in max_


def test_tokens_only_in_bearer_header(bb: str) -> None:
    token = sign_in(bb)["access_token"]
    in_query = requests.get(f"{bb}/2.0/user", params={"access_token": token}, timeout=5)
    assert (in_query.status_code, in_query.json()) == (401, INVALID_TOKEN)
    both = requests.get(
        f"{bb}/2.0/user",
        params={"access_token": token},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert both.status_code == 401
    assert requests.get(f"{bb}/2.0/user", timeout=5).status_code == 401
    unknown = api(bb, "/user", "not-a-token")
    assert (unknown.status_code, unknown.json()) == (401, INVALID_TOKEN)


def test_access_tokens_expire_after_two_hours(bb: str) -> None:
    token = sign_in(bb)["access_token"]
    requests.post(f"{bb}/_emulator/clock", json={"advance": 7200}, timeout=5).raise_for_status()
    response = api(bb, "/user", token)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Access token expired."


def test_token_lifetime_is_set_for_tokens_issued_from_then_on_until_reset(bb: str) -> None:
    before = sign_in(bb)
    set_to = requests.put(f"{bb}/_emulator/token-lifetime", json={"seconds": 60}, timeout=5)
    assert set_to.json() == {"seconds": 60}
    short = sign_in(bb)
    assert (before["expires_in"], short["expires_in"]) == (7200, 60)
    requests.post(f"{bb}/_emulator/clock", json={"advance": 60}, timeout=5).raise_for_status()
    assert api(bb, "/user", short["access_token"]).status_code == 401
    assert api(bb, "/user", before["access_token"]).status_code == 200
    for junk in (0, 1.5, True, "60", None):
        refused = requests.put(f"{bb}/_emulator/token-lifetime", json={"seconds": junk}, timeout=5)
        assert refused.status_code == 400
    reset_emulator(bb)
    assert sign_in(bb)["expires_in"] == 7200


def test_revoking_an_account_kills_its_access_and_refresh_tokens_only(bb: str) -> None:
    jane, jane_again, max_ = sign_in(bb), sign_in(bb), sign_in(bb, MAX_UUID)
    revoked = requests.post(f"{bb}/_emulator/revoke/{JANE}", timeout=5)
    assert revoked.json() == {"revoked": 4}
    for tokens in (jane, jane_again):
        assert api(bb, "/user", tokens["access_token"]).status_code == 401
        data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        refused = token_request(bb, data)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert api(bb, "/user", max_["access_token"]).status_code == 200
    assert requests.post(f"{bb}/_emulator/revoke/nobody", timeout=5).status_code == 400


def test_emails_paginate(bb: str) -> None:
    token = sign_in(bb, MAX_UUID)["access_token"]
    first = api(bb, "/user/emails", token).json()
    assert (first["pagelen"], first["page"], first["size"], len(first["values"])) == (10, 1, 12, 10)
    assert first["values"][0] == {
        "type": "email",
        "email": "max1@example.com",
        "is_primary": True,
        "is_confirmed": True,
    }
    second = requests.get(
        first["next"], headers={"Authorization": f"Bearer {token}"}, timeout=5
    ).json()
    assert second["page"] == 2
    assert [v["email"] for v in second["values"]] == ["max11@example.com", "max12@example.com"]
    assert "next" not in second
    everything = api(bb, "/user/emails", token, pagelen="500").json()
    assert (everything["pagelen"], len(everything["values"])) == (100, 12)
    assert "next" not in everything


def test_workspaces_shape(bb: str) -> None:
    body = api(bb, "/user/workspaces", sign_in(bb)["access_token"]).json()
    assert body["values"] == [
        {
            "type": "workspace_access",
            "administrator": False,
            "workspace": {
                "type": "workspace_base",
                "slug": "acme",
                "uuid": "{1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7a8b}",
            },
        }
    ]
    assert "next" not in body


def test_email_scope_required(bb: str) -> None:
    response = api(bb, "/user/emails", sign_in(bb, client=LIMITED)["access_token"])
    assert response.status_code == 200  # the account scope also grants emails


REMOVED = (410, "CHANGE-2770 - Functionality has been deprecated")


@pytest.mark.parametrize(
    ("path", "client", "refusal"),
    [
        pytest.param(
            "/user/workspaces",
            LEGACY,
            (403, "Your credentials lack one or more required privilege scopes."),
            id="workspace-permission-missing",
        ),
        pytest.param("/workspaces", DEMO, REMOVED, id="removed-workspaces"),
        pytest.param("/user/permissions/workspaces", DEMO, REMOVED, id="removed-permissions"),
        pytest.param("/repositories/acme", DEMO, (404, "Resource not found"), id="unknown-path"),
    ],
)
def test_api_error_answers(
    bb: str, path: str, client: tuple[str, str], refusal: tuple[int, str]
) -> None:
    response = api(bb, path, sign_in(bb, client=client)["access_token"])
    body = response.json()
    assert (response.status_code, body["type"], body["error"]["message"]) == (
        refusal[0],
        "error",
        refusal[1],
    )


def test_rate_limit_per_consumer(bb: str) -> None:
    token = sign_in(bb, client=LIMITED)["access_token"]
    other = sign_in(bb, "user0001", client=LIMITED)["access_token"]
    assert [api(bb, "/user", token).status_code for _ in range(2)] == [200, 200]
    assert api(bb, "/user", other).status_code == 200
    limited = api(bb, "/user", token)
    assert limited.status_code == 429
    assert limited.json()["error"]["message"] == "Rate limit for this resource has been exceeded."
    assert "Retry-After" not in limited.headers
    assert api(bb, "/user", sign_in(bb)["access_token"]).status_code == 200  # other consumer
    requests.post(f"{bb}/_emulator/clock", json={"advance": 3601}, timeout=5)
    assert api(bb, "/user", other).status_code == 200


# --- faults -------------------------------------------------------------------------------


def test_status_fault_per_endpoint_kind(bb: str) -> None:
    token = sign_in(bb)["access_token"]
    set_fault(bb, "*", status=503)
    user = api(bb, "/user", token)
    assert (user.status_code, user.json()) == (
        503,
        {"type": "error", "error": {"message": "Service Unavailable"}},
    )
    assert token_request(bb, {"grant_type": "refresh_token"}).json()["error"] == "server_error"
    page = requests.get(f"{bb}/site/oauth2/authorize", params=authorize_query(), timeout=5)
    assert page.status_code == 503
    assert page.headers["Content-Type"].startswith("text/html")


def test_body_fault_sends_raw_text(bb: str) -> None:
    set_fault(bb, "token", body='{"access_tok')
    response = token_request(bb, {"grant_type": "authorization_code", "code": "x"})
    assert (response.status_code, response.text) == (200, '{"access_tok')
    assert response.headers["Content-Type"] == "application/json"
    set_fault(bb, "user", status=502, body="<html>Bad gateway</html>", content_type="text/html")
    user = api(bb, "/user", "whatever")
    assert (user.status_code, user.text, user.headers["Content-Type"]) == (
        502,
        "<html>Bad gateway</html>",
        "text/html",
    )


def test_fault_times_clears_itself(bb: str) -> None:
    token = sign_in(bb)["access_token"]
    set_fault(bb, "emails", status=500, times=2)
    assert [api(bb, "/user/emails", token).status_code for _ in range(3)] == [500, 500, 200]
    assert faults(bb) == {}


def test_latency_fault(bb: str) -> None:
    token = sign_in(bb)["access_token"]
    set_fault(bb, "user", latency=0.3, times=1)
    started = time.monotonic()
    assert api(bb, "/user", token).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert faults(bb) == {}


def test_hang_fault_times_out_clients_and_ends_when_cleared(bb: str) -> None:
    set_fault(bb, "token", hang=True)
    assert faults(bb)["token"]["hang"] == 30
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{bb}/site/oauth2/access_token", data={}, auth=DEMO, timeout=0.3)
    requests.delete(f"{bb}/_emulator/faults/token", timeout=5).raise_for_status()
    deadline = time.monotonic() + 5
    while not logged(bb, "token") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged(bb, "token")[0]["status"] == 400  # answered normally once woken
    assert time.monotonic() - started < 5


def test_fault_api_validation(bb: str) -> None:
    for endpoint, body in [("nope", {"status": 500}), ("user", {"status": 42}), ("user", [1])]:
        response = requests.put(f"{bb}/_emulator/faults/{endpoint}", json=body, timeout=5)
        assert response.status_code == 400
        assert response.json()["error"]
    set_fault(bb, "user", status=500)
    set_fault(bb, "token", latency=0.1)
    assert set(faults(bb)) == {"user", "token"}
    clear_faults(bb)
    assert faults(bb) == {}


def test_fault_spec_syntax() -> None:
    endpoint, fault = parse_fault_spec('token:status=200,times=1,body={"a": 1, "b')
    assert (endpoint, fault.status, fault.times, fault.body) == ("token", 200, 1, '{"a": 1, "b')
    assert parse_fault_spec("*:hang=true")[1].hang == 30
    assert parse_fault_spec("user:latency=0.5")[1].latency == 0.5
    for bad in ["token", "token:", "bogus:status=500", "user:status", "user:colour=red"]:
        with pytest.raises(FaultError):
            parse_fault_spec(bad)


# --- request log --------------------------------------------------------------------------


def test_request_log_records_shape_not_secrets(bb: str) -> None:
    tokens = sign_in(bb)
    api(bb, "/user", tokens["access_token"])
    entries = requests.get(f"{bb}/_emulator/requests", timeout=5).json()["requests"]
    assert [e["endpoint"] for e in entries] == ["authorize", "token", "user"]
    token_entry = entries[1]
    assert token_entry["method"] == "POST"
    assert token_entry["path"] == "/site/oauth2/access_token"
    assert token_entry["form_fields"] == ["code", "grant_type"]
    assert token_entry["grant_type"] == "authorization_code"
    assert (token_entry["client_auth"], token_entry["code_verifier"]) == ("basic", False)
    assert entries[2]["bearer"] is True
    dump = json.dumps(entries)
    for secret in (DEMO[1], tokens["access_token"], tokens["refresh_token"]):
        assert secret not in dump
    requests.delete(f"{bb}/_emulator/requests", timeout=5).raise_for_status()
    assert requests.get(f"{bb}/_emulator/requests", timeout=5).json() == {"requests": []}


# --- accounts -----------------------------------------------------------------------------


def test_generated_accounts_are_deterministic(bb: str) -> None:
    assert generated_account(2) == generated_accounts(3)[1]
    second = generated_account(2)
    assert second["username"] == "user0002"
    assert second["emails"][0]["email"] == "user0002@example.com"
    user = api(bb, "/user", sign_in(bb, second["uuid"])["access_token"]).json()
    assert (user["uuid"], user["account_id"]) == (second["uuid"], second["account_id"])


VALID_CONSUMER = {"key": "k", "secret": "s", "callback_url": CALLBACK}
VALID_ACCOUNT = {"uuid": JANE, "account_id": "a1", "display_name": "A"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a mapping"),
        ({"accounts": []}, "'consumers' must be a non-empty list"),
        ({"consumers": [{"key": "k", "callback_url": CALLBACK}]}, "consumer 1 has no secret"),
        (
            {"consumers": [{**VALID_CONSUMER, "callback_url": "localhost"}]},
            "consumer 1: callback_url must be an http(s) URL",
        ),
        (
            {"consumers": [{**VALID_CONSUMER, "rate_limit": 0}]},
            "consumer 1: rate_limit must be a positive integer",
        ),
        (
            {"consumers": [VALID_CONSUMER], "accounts": [VALID_ACCOUNT, {"account_id": "x"}]},
            "account 2 has no uuid",
        ),
        (
            {"consumers": [VALID_CONSUMER], "accounts": [{**VALID_ACCOUNT, "uuid": "nope"}]},
            "account 1: uuid is not a UUID",
        ),
        (
            {"consumers": [VALID_CONSUMER], "accounts": [VALID_ACCOUNT, VALID_ACCOUNT]},
            "two accounts have uuid",
        ),
        (
            {"consumers": [VALID_CONSUMER], "accounts": [{**VALID_ACCOUNT, "emails": [{}]}]},
            "account 1 email 1 has no email",
        ),
    ],
)
def test_accounts_validation(document: Any, message: str) -> None:
    with pytest.raises(AccountsError, match=r"^accounts file x\.yaml: ") as error:
        config_from_dict(document, source="x.yaml")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_json_accounts_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"consumers": [VALID_CONSUMER], "accounts": [VALID_ACCOUNT]}))
    config = load_accounts(path, generate=2)
    assert [a.nickname for a in config.accounts] == ["A", "user0001", "user0002"]
    assert config.consumers["k"].scopes == ("account",)


# --- command line -------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bitbucket_signin.emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_serves_with_generated_accounts_and_faults() -> None:
    process = run_cli(
        "--port", "0", "--accounts", str(ACCOUNTS_FILE), "--generate-accounts", "5",
        "--fault", "user:status=503,times=1",
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "(3 consumers, 7 accounts)" in banner
        url = banner.split()[3]
        assert requests.get(f"{url}/_emulator/health", timeout=5).text == "ok"
        faults = requests.get(f"{url}/_emulator/faults", timeout=5).json()["faults"]
        assert faults["user"]["status"] == 503
        assert api(url, "/user", sign_in(url, "user0005")["access_token"]).status_code == 503
    finally:
        process.terminate()
        process.communicate(timeout=5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("consumers: [{key: k, secret: s, callback_url: 'http://x/cb'}]\naccounts: [{}, {}]\n",
         "account 1 has no uuid"),
        ("consumers: [\n", "invalid syntax"),
    ],
)  # fmt: skip
def test_cli_bad_accounts_file_exits_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    process = run_cli("--port", "0", "--accounts", str(path))
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"error: accounts file {path}: ")
    assert message in stderr
