"""client.py: the profile from Bitbucket's API, every failure as a status, against a stand-in."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from bitbucket_signin.client import (
    MAX_PAGES,
    BitbucketClient,
    upstream_error_for_exception,
    upstream_error_for_status,
)
from bitbucket_signin.errors import UpstreamError
from bitbucket_signin.profile import BitbucketProfile
from bitbucket_signin.transport import BodyTooLargeError, RedirectRefusedError
from bitbucket_signin.waiting import Deadline

from ..processes import free_port
from ..support import JANE
from .fake_bitbucket import FakeBitbucket

USER = {
    "uuid": JANE,
    "account_id": "5c65cab48bcc9e016aeece31",
    "display_name": "Jane Doe",
    "username": "jdoe",
    "links": {"avatar": {"href": "https://avatars.example/jd.png"}},
}


def client(url: str, *, emails: bool = False, workspaces: bool = False, **kw: Any) -> Any:
    options = {"timeout": 2.0, "max_body_bytes": 100_000, **kw}
    return BitbucketClient(
        f"{url}/2.0", user_agent="unit-tests/1", emails=emails, workspaces=workspaces, **options
    )


def fetch(bitbucket: BitbucketClient, seconds: float = 5) -> BitbucketProfile:
    profile: BitbucketProfile = bitbucket.fetch_profile("the-token", Deadline(seconds))
    return profile


def refusal(bitbucket: BitbucketClient, seconds: float = 5) -> UpstreamError:
    with pytest.raises(UpstreamError) as refused:
        fetch(bitbucket, seconds)
    return refused.value


def emails_page(*addresses: tuple[str, bool, bool], next_url: str | None = None) -> Any:
    values = [
        {"email": email, "is_primary": primary, "is_confirmed": confirmed}
        for email, primary, confirmed in addresses
    ]
    return {"values": values, **({"next": next_url} if next_url else {})}


def test_only_the_user_when_no_list_is_needed(upstream: FakeBitbucket) -> None:
    upstream.answer("/2.0/user", USER)
    profile = fetch(client(upstream.url))
    assert (profile.uuid, profile.display_name, profile.username) == (JANE, "Jane Doe", "jdoe")
    assert profile.avatar_url == "https://avatars.example/jd.png"
    assert (profile.email, profile.workspaces) == (None, None)
    assert upstream.paths() == ["/2.0/user"]
    headers = upstream.seen[0].headers
    assert headers["Authorization"] == "Bearer the-token"
    assert headers["User-Agent"] == "unit-tests/1"


def test_emails_follow_the_pages_on_the_api_origin(upstream: FakeBitbucket) -> None:
    upstream.answer("/2.0/user", USER)
    second = f"{upstream.url}/2.0/user/emails/2"
    upstream.answer("/2.0/user/emails", emails_page(("jd@x.test", True, False), next_url=second))
    upstream.answer("/2.0/user/emails/2", emails_page(("jane@x.test", False, True)))
    profile = fetch(client(upstream.url, emails=True))
    assert profile.email == "jane@x.test"  # the primary address is unconfirmed
    assert sorted(upstream.paths()) == ["/2.0/user", "/2.0/user/emails", "/2.0/user/emails/2"]
    assert next(s for s in upstream.seen if s.path == "/2.0/user/emails").args == {"pagelen": "100"}


def test_a_next_link_to_another_origin_is_not_followed(upstream: FakeBitbucket) -> None:
    """The bearer token would follow the link: another host (the same server) gets nothing."""
    upstream.answer("/2.0/user", USER)
    elsewhere = upstream.url.replace("127.0.0.1", "127.0.0.2") + "/2.0/user/emails/2"
    upstream.answer("/2.0/user/emails", emails_page(next_url=elsewhere))
    error = refusal(client(upstream.url, emails=True))
    assert error.message == "Bitbucket sent a next-page link elsewhere (user emails)."
    assert {entry.host for entry in upstream.seen} == {upstream.url.removeprefix("http://")}


def test_a_list_that_never_ends_stops_after_the_page_limit(upstream: FakeBitbucket) -> None:
    upstream.answer("/2.0/user", USER)
    again = f"{upstream.url}/2.0/user/workspaces"
    upstream.answer("/2.0/user/workspaces", {"values": [], "next": again})
    error = refusal(client(upstream.url, workspaces=True))
    assert error.message == f"Bitbucket listed more than {MAX_PAGES} pages (user workspaces)."
    assert upstream.paths().count("/2.0/user/workspaces") == MAX_PAGES


@pytest.mark.parametrize(
    ("path", "status", "listing"),
    [
        ("/2.0/user/workspaces", 403, {"workspaces": True}),
        ("/2.0/user/workspaces", 404, {"workspaces": True}),
        ("/2.0/user/workspaces", 410, {"workspaces": True}),
        ("/2.0/user/emails", 403, {"emails": True}),
    ],
)
def test_a_list_bitbucket_will_not_give_is_unknown(
    upstream: FakeBitbucket, path: str, status: int, listing: dict[str, bool]
) -> None:
    upstream.answer("/2.0/user", USER)
    upstream.answer(path, {"type": "error"}, status)
    profile = fetch(client(upstream.url, **listing))
    assert (profile.email, profile.workspaces) == (None, None)


@pytest.mark.parametrize(
    ("path", "status", "shown", "message"),
    [
        ("/2.0/user", 401, 502, "Bitbucket did not accept the sign-in (user: HTTP 401)."),
        ("/2.0/user", 429, 503, "Bitbucket is limiting requests right now (user: HTTP 429)."),
        ("/2.0/user", 503, 503, "Bitbucket is temporarily unavailable (user: HTTP 503)."),
        ("/2.0/user", 500, 502, "Bitbucket answered with an error (user: HTTP 500)."),
        ("/2.0/user/emails", 404, 502, "Bitbucket answered with an error (user emails: HTTP 404)."),
        ("/2.0/user/workspaces", 401, 502, "Bitbucket did not accept the sign-in"),
    ],
)
def test_a_failed_call_is_a_status_naming_the_call(
    upstream: FakeBitbucket, path: str, status: int, shown: int, message: str
) -> None:
    upstream.answer("/2.0/user", USER)
    upstream.answer("/2.0/user/emails", emails_page())
    upstream.answer("/2.0/user/workspaces", {"values": []})
    upstream.answer(path, {"type": "error"}, status)
    error = refusal(client(upstream.url, emails=True, workspaces=True))
    assert (error.status, error.upstream_status) == (shown, status)
    assert error.message.startswith(message)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/2.0/user", "{not json", "Bitbucket sent a malformed answer (user)."),
        ("/2.0/user", [USER], "Bitbucket sent an answer of the wrong shape (user)."),
        ("/2.0/user", {**USER, "uuid": 7}, "Bitbucket sent an unexpected profile"),
        ("/2.0/user/emails", {"values": "x"}, "an answer of the wrong shape (user emails)"),
        ("/2.0/user/emails", {"values": [1]}, "an answer of the wrong shape (user emails)"),
    ],
)
def test_a_malformed_answer_is_a_502(
    upstream: FakeBitbucket, path: str, body: Any, message: str
) -> None:
    upstream.answer("/2.0/user", USER)
    upstream.answer("/2.0/user/emails", emails_page())
    upstream.answer(path, body)
    error = refusal(client(upstream.url, emails=True))
    assert error.status == 502
    assert message in error.message


def test_a_redirect_is_not_followed(upstream: FakeBitbucket) -> None:
    upstream.answer("/2.0/user", "", 302, Location=f"{upstream.url}/2.0/elsewhere")
    error = refusal(client(upstream.url))
    assert "redirect, which is not followed (user)" in error.message
    assert upstream.paths() == ["/2.0/user"]


def test_an_answer_over_the_cap_is_refused(upstream: FakeBitbucket) -> None:
    upstream.answer("/2.0/user", {**USER, "padding": "x" * 5000})
    error = refusal(client(upstream.url, max_body_bytes=1000))
    assert error.message == "Bitbucket sent a larger answer than this site accepts (user)."


def test_a_passed_deadline_makes_no_call(upstream: FakeBitbucket) -> None:
    upstream.answer("/2.0/user", USER)
    error = refusal(client(upstream.url, emails=True, workspaces=True), seconds=0)
    assert error.status == 504
    assert upstream.seen == []


def test_a_list_that_does_not_come_in_time_is_a_504(upstream: FakeBitbucket) -> None:
    upstream.answer("/2.0/user", USER)
    upstream.hold("/2.0/user/emails")
    error = refusal(client(upstream.url, emails=True, timeout=0.5))
    assert error.status == 504  # the held list bounds the sign-in
    assert error.message.startswith("Bitbucket did not answer in time (")


def test_bitbucket_unreachable_is_a_502() -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    error = refusal(client(closed))
    assert (error.status, error.message) == (502, "Bitbucket could not be reached (user).")


@pytest.mark.parametrize(
    ("exception", "status", "message"),
    [
        (requests.ReadTimeout(), 504, "Bitbucket did not answer in time (x)."),
        (RedirectRefusedError(), 502, "Bitbucket answered with a redirect"),
        (BodyTooLargeError(), 502, "Bitbucket sent a larger answer than this site accepts (x)."),
        (requests.ConnectionError(), 502, "Bitbucket could not be reached (x)."),
        (requests.TooManyRedirects(), 502, "The request to Bitbucket failed (x)."),
    ],
)
def test_every_request_failure_has_its_message(
    exception: requests.RequestException, status: int, message: str
) -> None:
    error = upstream_error_for_exception(exception, "x")
    assert error.status == status
    assert error.message.startswith(message)


def test_advice_comes_with_the_statuses_that_pass() -> None:
    assert upstream_error_for_status(429, "x").message.endswith("in a few minutes.")
    assert upstream_error_for_status(503, "x").message.endswith("Please try again shortly.")
    assert upstream_error_for_status(500, "x").message.endswith("(x: HTTP 500).")
