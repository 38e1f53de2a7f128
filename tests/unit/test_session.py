"""session.py: who is signed in, read again from the session and the catalog on every request."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from flask_login import LoginManager, UserMixin, current_user

from bitbucket_signin.app_extension import get_extension
from bitbucket_signin.catalog import load_catalog
from bitbucket_signin.profile import BitbucketProfile, Workspace
from bitbucket_signin.resolvers import Identity
from bitbucket_signin.session import CatalogUser, start_session
from bitbucket_signin.session_keys import (
    PROFILE_KEY,
    SEEN_AT_KEY,
    SEEN_AT_RESOLUTION_SECONDS,
    SIGNED_IN_AT_KEY,
)

from ..support import DATA, JANE, VAL, FakeClock
from .conftest import JANE_PROFILE, signed_in_session, unit_app

EIGHT_HOURS = 8 * 3600


def who(client: FlaskClient) -> str:
    return client.get("/who").text


def kept(client: FlaskClient) -> dict[str, Any]:
    with client.session_transaction() as stored:
        return dict(stored)


def test_a_signed_in_session_is_the_catalog_user(client: FlaskClient, clock: FakeClock) -> None:
    signed_in_session(client, clock)
    assert who(client) == "user:default/jdoe"
    assert client.get("/private").status_code == 200


def test_no_session_is_anonymous(client: FlaskClient) -> None:
    assert who(client) == "anonymous"
    private = client.get("/private")
    assert (private.status_code, private.headers["Location"]) == (302, "/signin?next=%2Fprivate")


@pytest.mark.parametrize(
    "tampered",
    [
        {PROFILE_KEY: "not a mapping"},
        {PROFILE_KEY: {"display_name": "no uuid"}},
        {PROFILE_KEY: {**JANE_PROFILE.to_dict(), "workspaces": [{"nope": 1}]}},
        {"_user_id": "{00000000-0000-4000-8000-000000000000}"},  # not the profile's uuid
        {SEEN_AT_KEY: "yesterday"},
        {SEEN_AT_KEY: None},
    ],
)
def test_a_session_that_does_not_hold_together_is_anonymous(
    client: FlaskClient, clock: FakeClock, tampered: dict[str, Any]
) -> None:
    signed_in_session(client, clock)
    with client.session_transaction() as stored:
        stored.update(tampered)
    assert who(client) == "anonymous"


def test_someone_removed_from_the_catalog_is_signed_out(
    client: FlaskClient, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    val = BitbucketProfile(uuid=VAL, account_id=None, display_name="Val Visitor")
    signed_in_session(client, clock, val)
    with caplog.at_level(logging.INFO, logger="bitbucket_signin.session"):
        assert who(client) == "anonymous"
    assert f"Signing out 'Val Visitor' '{VAL}'" in caplog.text
    assert PROFILE_KEY not in kept(client)


def test_idle_longer_than_the_timeout_signs_out(client: FlaskClient, clock: FakeClock) -> None:
    signed_in_session(client, clock)
    clock.advance(EIGHT_HOURS)
    assert who(client) == "user:default/jdoe"  # the visit renews the stamp
    clock.advance(EIGHT_HOURS)
    assert who(client) == "user:default/jdoe"
    clock.advance(EIGHT_HOURS + 1)
    assert who(client) == "anonymous"
    assert kept(client) == {}


def test_the_last_seen_stamp_is_written_only_when_it_is_stale(
    client: FlaskClient, clock: FakeClock
) -> None:
    signed_in_session(client, clock)
    signed_in_at = int(clock())
    clock.advance(SEEN_AT_RESOLUTION_SECONDS - 1)
    who(client)
    assert kept(client)[SEEN_AT_KEY] == signed_in_at
    clock.advance(1)
    who(client)
    assert kept(client)[SEEN_AT_KEY] == signed_in_at + SEEN_AT_RESOLUTION_SECONDS
    assert kept(client)[SIGNED_IN_AT_KEY] == signed_in_at


def test_the_session_duration_ends_a_sign_in_however_active(clock: FakeClock) -> None:
    client = unit_app(clock, BITBUCKET_SESSION_DURATION="90s").test_client()
    signed_in_session(client, clock)
    for _ in range(3):
        clock.advance(30)
        assert who(client) == "user:default/jdoe"
    clock.advance(1)
    assert who(client) == "anonymous"
    assert kept(client) == {}


def test_other_sessions_go_to_the_apps_own_loader_even_one_registered_later(
    app: Flask, client: FlaskClient, clock: FakeClock
) -> None:
    manager: LoginManager = app.login_manager  # type: ignore[attr-defined]
    manager.user_loader(lambda user_id: AppUser(user_id) if user_id == "ada" else None)

    @app.get("/app-user")
    def app_user() -> str:
        return f"app user {current_user.get_id()}"

    with client.session_transaction() as stored:
        stored["_user_id"] = "ada"
    assert client.get("/app-user").text == "app user ada"
    signed_in_session(client, clock)
    assert who(client) == "user:default/jdoe"


class AppUser(UserMixin):  # type: ignore[misc]
    """A user of the host app's own login."""

    def __init__(self, user_id: str) -> None:
        self.id = user_id


class RegeneratingSessions(SecureCookieSessionInterface):
    """A session interface that, like Flask-Session's, gives a session a new id on demand."""

    regenerated = 0

    def regenerate(self, _: Any) -> None:
        type(self).regenerated += 1


def test_start_session_replaces_whatever_the_session_held(clock: FakeClock) -> None:
    app = unit_app(clock, BITBUCKET_ALLOWED_WORKSPACES=["acme"])
    app.session_interface = RegeneratingSessions()
    profile = BitbucketProfile(
        uuid=JANE,
        account_id=None,
        display_name="Jane Doe",
        workspaces=(Workspace("acme", "{1}", True), Workspace("other", "{2}")),
    )
    identity = Identity("user:default/jdoe", ("user:default/jdoe",))
    with app.test_request_context("/"):
        session["planted"] = "by an attacker before the sign-in"
        user = start_session(
            get_extension(), get_extension().provider("bitbucket"), identity, profile
        )
        assert RegeneratingSessions.regenerated == 1
        assert "planted" not in session
        # Of the workspaces, only what the restriction reads again.
        assert BitbucketProfile.from_dict(session[PROFILE_KEY]) == replace(
            profile, workspaces=(Workspace("acme"),)
        )
        assert session[SIGNED_IN_AT_KEY] == session[SEEN_AT_KEY] == int(clock())
        assert session["_user_id"] == JANE
        assert current_user._get_current_object() is user


def test_the_catalog_speaks_first_and_bitbucket_fills_in() -> None:
    jane = load_catalog(DATA / "catalog.yaml").user_by_name("jdoe")
    assert jane is not None
    refs = ("group:default/platform", "user:default/jdoe")
    profile = BitbucketProfile(
        uuid=JANE,
        account_id=None,
        display_name="Jane at Bitbucket",
        email="jane@bitbucket.test",
        avatar_url="https://avatars.example/jd.png",
    )
    listed = CatalogUser(
        Identity("user:default/jdoe", refs, jane),
        profile,
    )
    assert (listed.display_name, listed.email) == ("Jane Doe", "jane@example.com")
    assert listed.picture == "https://avatars.example/jd.png"  # the catalog has none
    assert listed.groups == ("group:default/platform",)
    assert listed.get_id() == JANE
    unlisted = CatalogUser(Identity("user:default/jdoe", refs), profile)
    assert (unlisted.display_name, unlisted.email) == ("Jane at Bitbucket", "jane@bitbucket.test")
    assert unlisted.entity is None
