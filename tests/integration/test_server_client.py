"""Finding the Data Center account behind a token, over real HTTP against the emulator (and
against a hostile upstream where the emulator would not misbehave)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from bitbucket_signin.emulator import EmulatorServer, datacenter_from_dict, load_accounts
from bitbucket_signin.errors import SignInError, UpstreamError
from bitbucket_signin.server_client import DataCenterClient
from bitbucket_signin.server_profile import ServerProfile
from bitbucket_signin.waiting import Deadline

from ..security.hostile import JSON, by_path, hostile, http_answer, json_body, whole
from ..support import DATA, emulator_requests, set_fault

LINK = {
    "client_id": "dc-client-id",
    "redirect_uri": "http://127.0.0.1:7007/api/auth/bitbucketServer/handler/frame",
    "response_type": "code",
}


def client(base_url: str, timeout: float = 2.0) -> DataCenterClient:
    return DataCenterClient(
        base_url, base_url, timeout=timeout, max_body_bytes=100_000, user_agent="test"
    )


def access_token(emulator: EmulatorServer, who: str) -> str:
    """A token for ``who``, straight from the emulator (no PKCE: the lookup is the subject)."""
    assert emulator.datacenter_url is not None
    granted = requests.get(
        f"{emulator.url}/_emulator/datacenter/authorize-as/{who}",
        params=LINK,
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(granted.headers["Location"]).query)["code"][0]
    answer = requests.post(
        f"{emulator.datacenter_url}/rest/oauth2/latest/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": LINK["redirect_uri"],
            "client_id": "dc-client-id",
            "client_secret": "dc-client-secret",
        },
        timeout=5,
    )
    token: str = answer.json()["access_token"]
    return token


def lookup(emulator: EmulatorServer, who: str) -> ServerProfile:
    assert emulator.datacenter_url is not None
    return client(emulator.datacenter_url).fetch_profile(access_token(emulator, who), Deadline(5))


def test_the_account_is_the_exact_name_never_the_decoy_listed_first(
    bitbucket: EmulatorServer,
) -> None:
    profile = lookup(bitbucket, "jane@example.com")
    assert profile == ServerProfile(
        id=101,
        name="jane@example.com",
        slug="jane_example.com",
        display_name="Jane Doe",
        email="jane@example.com",
        avatar_url=f"{bitbucket.url}/bitbucket/users/jane_example.com/avatar.png?s=64",
    )
    paths = [entry["path"] for entry in emulator_requests(bitbucket)]
    assert "/bitbucket/rest/api/latest/users/jane_example.com" in paths
    assert "/bitbucket/rest/api/latest/users/jane@example.com" not in paths  # never name as slug
    assert "/bitbucket/rest/api/latest/users/mallory" not in paths  # never the first result


@pytest.mark.parametrize(
    ("who", "message"),
    [("gone", "deactivated"), ("ci-bot", "Service accounts")],
)
def test_inactive_and_service_accounts_never_sign_in(
    bitbucket: EmulatorServer, who: str, message: str
) -> None:
    with pytest.raises(SignInError, match=message) as raised:
        lookup(bitbucket, who)
    assert raised.value.status == 403


def test_an_account_beyond_the_first_page_is_found() -> None:
    """150 decoys whose display names hold the name, listed before the account itself."""
    decoys = [
        {"id": i, "name": f"decoy{i}", "display_name": f"pat{i} pat@example.com"}
        for i in range(1, 151)
    ]
    section = {
        "consumers": [{"key": "dc-client-id", "secret": "dc-client-secret", **_link()}],
        "users": [*decoys, {"id": 999, "name": "pat@example.com", "display_name": "Pat"}],
    }
    datacenter = datacenter_from_dict(section)
    with EmulatorServer(load_accounts(DATA / "accounts.yaml"), datacenter=datacenter) as emulator:
        profile = lookup(emulator, "pat@example.com")
        searches = [e for e in emulator_requests(emulator) if e["endpoint"] == "dc-users"]
    assert (profile.id, profile.slug) == (999, "pat_example.com")
    assert len(searches) == 2


def _link() -> dict[str, str]:
    return {"redirect_url": LINK["redirect_uri"]}


@pytest.mark.parametrize("endpoint", ["dc-whoami", "dc-users", "dc-user"])
@pytest.mark.parametrize(("fault", "status"), [(503, 503), (429, 503), (500, 502), (404, 502)])
def test_each_call_failing_is_an_upstream_status(
    bitbucket: EmulatorServer, endpoint: str, fault: int, status: int
) -> None:
    token = access_token(bitbucket, "jane@example.com")
    set_fault(bitbucket.url, endpoint, status=fault)
    assert bitbucket.datacenter_url is not None
    with pytest.raises(UpstreamError) as raised:
        client(bitbucket.datacenter_url).fetch_profile(token, Deadline(5))
    assert raised.value.status == status


@pytest.mark.parametrize("endpoint", ["dc-whoami", "dc-users", "dc-user"])
def test_each_call_hanging_is_a_504(bitbucket: EmulatorServer, endpoint: str) -> None:
    token = access_token(bitbucket, "jane@example.com")
    set_fault(bitbucket.url, endpoint, hang=True)
    assert bitbucket.datacenter_url is not None
    with pytest.raises(UpstreamError) as raised:
        client(bitbucket.datacenter_url, timeout=0.3).fetch_profile(token, Deadline(5))
    assert raised.value.status == 504


def test_a_token_whoami_does_not_know_is_refused(bitbucket: EmulatorServer) -> None:
    assert bitbucket.datacenter_url is not None
    with pytest.raises(UpstreamError, match="nobody signed in") as raised:
        client(bitbucket.datacenter_url).fetch_profile("forged", Deadline(5))
    assert raised.value.status == 502


JANE = {"name": "jane@example.com", "id": 101, "slug": "jane_example.com", "active": True}
WHOAMI = "/plugins/servlet/applinks/whoami"
USERS = "/rest/api/latest/users"


def _upstream(listing: Any, profile: Any, whoami: bytes = b"jane@example.com\n") -> Any:
    kind = "text/html" if whoami.startswith(b"<") else "text/plain;charset=UTF-8"
    return by_path(
        {
            WHOAMI: whole(http_answer(200, whoami, {"Content-Type": kind})),
            USERS: whole(http_answer(200, json_body(listing), JSON)),
            f"{USERS}/jane_example.com": whole(http_answer(200, json_body(profile), JSON)),
            f"{USERS}/..%2Fadmin": whole(http_answer(200, json_body(profile), JSON)),
        }
    )


NORMAL = {"type": "NORMAL", "displayName": "Jane"}


@pytest.mark.parametrize(
    ("listing", "profile", "whoami", "message"),
    [
        ({"values": [{**JANE, **NORMAL}, {**JANE, **NORMAL}]}, JANE, None, "two listed users"),
        ({"values": [{**JANE, "name": "JANE@example.com"}]}, JANE, None, "did not list"),
        ({"values": "x"}, JANE, None, "wrong shape"),
        ({"values": [{**JANE, **NORMAL}]}, {**JANE, **NORMAL, "id": 66}, None, "another account"),
        (
            {"values": [{**JANE, **NORMAL}]},
            {**JANE, **NORMAL, "name": "mallory"},
            None,
            "another account",
        ),
        (
            {"values": [{**JANE, **NORMAL, "slug": "../admin"}]},
            {**JANE, **NORMAL, "id": "101"},
            None,
            "another account",
        ),
        ({"values": [{**JANE, **NORMAL}]}, JANE, b"<html>login</html>", "malformed"),
        ({"values": [{**JANE, **NORMAL}]}, JANE, b"jane\x00@example.com", "malformed"),
    ],
)
def test_a_hostile_instance_cannot_pick_the_account(
    listing: Any, profile: Any, whoami: bytes | None, message: str
) -> None:
    answer = _upstream(listing, profile, whoami or b"jane@example.com\n")
    with hostile(answer) as upstream, pytest.raises(UpstreamError, match=message):
        client(upstream.url).fetch_profile("token", Deadline(5))
    assert not any("/users/jane@example.com" in request for request in upstream.requests)


def test_the_slug_is_one_path_segment() -> None:
    listing = {"values": [{**JANE, **NORMAL, "slug": "../admin"}]}
    with hostile(_upstream(listing, {**JANE, **NORMAL, "slug": "../admin"})) as upstream:
        profile = client(upstream.url).fetch_profile("t", Deadline(5))
    assert profile.slug == "../admin"
    assert f"GET {USERS}/..%2Fadmin?avatarSize=64" in upstream.requests


def test_data_centers_error_message_is_logged_on_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """Its ``{"errors": [{"message"}]}`` reaches the log as one printable line: an instance
    (or whoever controls the text) cannot forge log lines."""
    forged = {
        "errors": [{"message": "User x does not exist.\n2026-01-01 INFO signed in: admin\u2028"}]
    }
    answer = by_path(
        {
            WHOAMI: whole(http_answer(200, b"jane@example.com", {"Content-Type": "text/plain"})),
            USERS: whole(http_answer(404, json_body(forged), JSON)),
        }
    )
    with hostile(answer) as upstream, pytest.raises(UpstreamError) as raised:
        client(upstream.url).fetch_profile("token", Deadline(5))
    assert raised.value.status == 502
    (record,) = [r for r in caplog.records if r.name == "bitbucket_signin.server_client"]
    assert record.getMessage().endswith(
        "user search: User x does not exist. 2026-01-01 INFO signed in: admin"
    )
    assert "does not exist" not in raised.value.message  # the page never shows it
