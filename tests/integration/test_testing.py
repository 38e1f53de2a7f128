"""``bitbucket_signin.testing``: a test client signed in as a catalog user, as a real sign-in
would leave it, and the emulator fixture of ``bitbucket_signin.pytest_plugin``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from flask import Flask

from bitbucket_signin import (
    BitbucketProfile,
    NotFoundError,
    ServerProfile,
    SignInError,
    get_extension,
)
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.providers import CLOUD, DATA_CENTER, AnyProfile
from bitbucket_signin.testing import SignedInClient, server_profile_for, sign_in

from ..datacenter import DC_PREFIX, Site, dc_sign_in
from ..support import JANE, LI, serve, session_contents

BY_USERNAME = ["userIdMatchingUserEntityAnnotation", "usernameMatchingUserEntityAnnotation"]


def signed_in_client(
    app: Flask, user: str | AnyProfile | None = None, provider: str | None = None
) -> SignedInClient:
    app.test_client_class = SignedInClient
    client: SignedInClient = app.test_client(user=user, provider=provider)
    return client


@pytest.mark.parametrize("user", ["user:default/jdoe", "jdoe", "User:Default/JDoe"])
def test_a_client_signed_in_by_entity_ref(app: Flask, user: str) -> None:
    page = signed_in_client(app, user).get("/")
    assert page.status_code == 200
    assert "Signed in as Jane Doe" in page.text
    assert "group:default/payments" in page.text


def test_the_session_is_the_one_a_real_sign_in_leaves(
    app: Flask, http: requests.Session, bitbucket: EmulatorServer
) -> None:
    with serve(app) as url:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
    real = session_contents(app, http.cookies.get("session"))
    client = signed_in_client(app, "jdoe")
    with client.session_transaction() as made:
        assert set(made) == set(real) - {"_id"}  # Flask-Login's identifier of the browser
        profile = made.pop("_bitbucket_profile")
        assert profile.items() <= real.pop("_bitbucket_profile").items()  # less the avatar
        assert made == {key: real[key] for key in made}  # the times, Flask-Login's keys


def test_a_client_signed_in_by_profile(make_app: Callable[..., Flask]) -> None:
    app = make_app(BITBUCKET_SIGNIN_RESOLVERS=BY_USERNAME)
    profile = BitbucketProfile(uuid=LI, account_id=None, display_name="Li", username="LChen")
    assert "Signed in as Li Chen" in signed_in_client(app, profile).get("/").text


def test_without_a_user_the_client_is_signed_out(app: Flask) -> None:
    assert signed_in_client(app).get("/").status_code == 302


def test_a_user_the_app_would_refuse_is_refused(app: Flask, make_app: Callable[..., Flask]) -> None:
    with pytest.raises(ValueError, match="user:default/nobody: no such User in the catalog"):
        signed_in_client(app, "nobody")
    with pytest.raises(NotFoundError):  # omar has no annotation the default resolver reads
        signed_in_client(app, "omar")
    gated = make_app(BITBUCKET_ALLOWED_WORKSPACES="acme")
    assert signed_in_client(gated, "jdoe").get("/").status_code == 200  # a member, as named
    stranger = BitbucketProfile(uuid=JANE, account_id=None, display_name="Jane", workspaces=())
    with pytest.raises(SignInError, match="only for members"):
        signed_in_client(gated, stranger)


def test_sessions_in_redis_too(make_app: Callable[..., Flask], redis_url: str) -> None:
    app = make_app(BITBUCKET_SESSION_REDIS_URL=redis_url)
    client = signed_in_client(app, "jdoe")
    assert "Signed in as Jane Doe" in client.get("/").text
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert "jdoe" not in cookie.value
    assert "768f8c62" not in cookie.value


def test_a_data_center_session_is_the_one_a_real_sign_in_leaves(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    site = make_site()  # Cloud and Data Center
    assert dc_sign_in(http, site.url, bitbucket, "jane@example.com").status_code == 302
    real = session_contents(site.app, http.cookies.get("session"))
    client = signed_in_client(site.app, "jdoe", provider=DATA_CENTER)
    with client.session_transaction() as session:
        made = dict(session)
    assert set(made) == set(real) - {"_id"}
    assert made["_bitbucket_provider"] == real["_bitbucket_provider"] == DATA_CENTER
    assert made["_user_id"] == real["_user_id"] == "bitbucketServer:101"
    assert made.pop("_bitbucket_profile")["id"] == real.pop("_bitbucket_profile")["id"]
    assert made == {key: real[key] for key in made}  # the times, Flask-Login's keys
    page = client.get("/")
    assert "Signed in as Jane Doe" in page.text
    refresh = client.get(f"{DC_PREFIX}/refresh", headers={"X-Requested-With": "XMLHttpRequest"})
    assert refresh.json is not None
    assert refresh.json["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jdoe"
    cloud = signed_in_client(site.app, "jdoe")  # a ref signs in with Cloud when the app has it
    with cloud.session_transaction() as session:
        assert session["_bitbucket_provider"] == CLOUD


def test_an_app_with_data_center_alone_signs_refs_in_with_it(
    make_site: Callable[..., Site],
) -> None:
    app = make_site(BITBUCKET_CLIENT_ID=None, BITBUCKET_CLIENT_SECRET=None).app
    client = signed_in_client(app, "user:default/jdoe")
    assert "Signed in as Jane Doe" in client.get("/").text
    with client.session_transaction() as session:
        assert session["_bitbucket_profile"]["id"] == 101
    with pytest.raises(SignInError, match="Sign-in with bitbucket is not set up") as off:
        signed_in_client(app, "jdoe", provider=CLOUD)
    assert off.value.status == 404


def test_a_client_signed_in_by_data_center_profile(make_site: Callable[..., Site]) -> None:
    app = make_site(BITBUCKET_SERVER_SIGNIN_RESOLVERS="userSlugMatchingUserEntityAnnotation").app
    profile = ServerProfile(id=102, name="lchen", slug="lchen", display_name="Li")
    assert "Signed in as Li Chen" in signed_in_client(app, profile).get("/").text
    by_slug = signed_in_client(app, "lchen", provider=DATA_CENTER)  # localhost/user-slug
    assert "Signed in as Li Chen" in by_slug.get("/").text
    with pytest.raises(ValueError, match="a ServerProfile signs in with bitbucketServer"):
        signed_in_client(app, profile, provider=CLOUD)


def test_a_data_center_user_the_app_would_refuse_is_refused(
    app: Flask, make_site: Callable[..., Site]
) -> None:
    site = make_site()
    with pytest.raises(NotFoundError):  # lchen has no localhost/user-id: the default resolver
        signed_in_client(site.app, "lchen", provider=DATA_CENTER)
    with pytest.raises(ValueError, match="user:default/nobody: no such User in the catalog"):
        signed_in_client(site.app, "nobody", provider=DATA_CENTER)
    jane = ServerProfile(id=101, name="jane@example.com", slug="jane_example.com", display_name="")
    with pytest.raises(SignInError, match="Sign-in with bitbucketServer is not set up"):
        signed_in_client(app, jane)  # an app with Cloud alone
    with pytest.raises(SignInError, match="Sign-in with bitbucketServer is not set up"):
        signed_in_client(app, "jdoe", provider=DATA_CENTER)
    with pytest.raises(ValueError, match="does not sign in with Bitbucket Data Center"):
        server_profile_for(get_extension(app), "jdoe")
