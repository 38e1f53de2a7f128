"""Fixtures of the unit tests: a stand-in for Bitbucket on loopback, reset for each test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login import current_user, login_required

from bitbucket_signin import BitbucketSignIn
from bitbucket_signin.profile import BitbucketProfile
from bitbucket_signin.session import CatalogUser
from bitbucket_signin.session_keys import PROFILE_KEY, SEEN_AT_KEY, SIGNED_IN_AT_KEY

from ..support import DATA, JANE, FakeClock, signin_config
from .fake_bitbucket import FakeBitbucket, fake_bitbucket

JANE_PROFILE = BitbucketProfile(
    uuid=JANE,
    account_id="5c65cab48bcc9e016aeece31",
    display_name="Jane Doe",
    username="jdoe",
    avatar_url="https://avatars.example/jd.png",
)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeBitbucket]:
    with fake_bitbucket() as fake:
        yield fake


@pytest.fixture
def upstream(fake_server: FakeBitbucket) -> Iterator[FakeBitbucket]:
    """The stand-in with no handlers and an empty log; what it holds back is let go after."""
    fake_server.handlers.clear()
    fake_server.seen.clear()
    fake_server.release = threading.Event()
    yield fake_server
    fake_server.release.set()


def unit_config(bitbucket_url: str = "http://127.0.0.1:9", **overrides: Any) -> dict[str, Any]:
    """An app's config whose Bitbucket is at ``bitbucket_url`` (by default a closed port:
    these tests sign in without it) and whose catalog is the tests' own."""
    return {
        **signin_config(bitbucket_url, DATA / "catalog.yaml"),
        "BITBUCKET_RATE_LIMIT": "off",
        **overrides,
    }


def unit_app(clock: FakeClock, bitbucket_url: str = "http://127.0.0.1:9", **config: Any) -> Flask:
    """A host app with the extension on ``clock``: ``/who`` says who is signed in (a catalog
    ref, or ``anonymous``), ``/private`` needs a sign-in."""
    app = Flask(__name__)
    app.config.update(unit_config(bitbucket_url, BITBUCKET_CLOCK=clock, **config))
    BitbucketSignIn(app)

    @app.get("/who")
    def who() -> str:
        user = current_user
        return user.user_entity_ref if isinstance(user, CatalogUser) else "anonymous"

    @app.get("/private")
    @login_required  # type: ignore[untyped-decorator]
    def private() -> str:
        return "private"

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=1_700_000_000.0)


@pytest.fixture
def app(clock: FakeClock) -> Flask:
    return unit_app(clock)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def signed_in_session(
    client: FlaskClient, clock: FakeClock, profile: BitbucketProfile = JANE_PROFILE
) -> None:
    """Put in ``client``'s session what a finished sign-in of ``profile`` leaves there now."""
    with client.session_transaction() as session:
        session["_user_id"] = profile.uuid
        session[PROFILE_KEY] = profile.to_dict()
        session[SIGNED_IN_AT_KEY] = session[SEEN_AT_KEY] = int(clock())
