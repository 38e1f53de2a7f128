"""app_extension.py: what the extension keeps per app, and what it decides from the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_login import LoginManager

from bitbucket_signin import BitbucketSignIn
from bitbucket_signin.app_extension import AppExtension, get_extension
from bitbucket_signin.client import EMAILS, WORKSPACES
from bitbucket_signin.errors import ConfigError, NotFoundError, SignInError
from bitbucket_signin.profile import BitbucketProfile, Workspace
from bitbucket_signin.server_profile import ServerProfile

from ..support import JANE, FakeClock
from .conftest import JANE_PROFILE, unit_app, unit_config


def extension_of(**config: Any) -> AppExtension:
    return get_extension(unit_app(FakeClock(), **config))


def test_the_extension_of_an_app_with_or_without_its_context() -> None:
    app = unit_app(FakeClock())
    extension = get_extension(app)
    assert extension is app.extensions["bitbucket_signin"]
    with app.app_context():
        assert get_extension() is extension


@pytest.mark.parametrize(
    ("config", "listings"),
    [
        ({}, ()),
        ({"BITBUCKET_SIGNIN_RESOLVERS": "emailMatchingUserEntityProfileEmail"}, (EMAILS,)),
        ({"BITBUCKET_SIGNIN_RESOLVERS": [lambda profile, catalog: None]}, (EMAILS,)),
        ({"BITBUCKET_FETCH_EMAILS": True}, (EMAILS,)),
        ({"BITBUCKET_ALLOWED_WORKSPACES": ["acme"]}, (WORKSPACES,)),
    ],
)
def test_bitbucket_is_asked_only_for_the_lists_the_settings_need(
    config: dict[str, Any], listings: tuple[Any, ...]
) -> None:
    assert extension_of(**config).provider("bitbucket").client.listings == listings


def test_emails_switched_off_under_an_email_resolver_stops_start_up() -> None:
    with pytest.raises(ConfigError) as refused:
        extension_of(
            BITBUCKET_FETCH_EMAILS=False,
            BITBUCKET_SIGNIN_RESOLVERS="emailMatchingUserEntityProfileEmail",
        )
    assert str(refused.value) == (
        "BITBUCKET_FETCH_EMAILS is false, but the resolver "
        "emailMatchingUserEntityProfileEmail matches by email"
    )


@pytest.mark.parametrize("setting", ["BITBUCKET_SIGNIN_RESOLVERS", "BITBUCKET_CATALOG"])
def test_start_up_refusals_name_the_setting(tmp_path: Path, setting: str) -> None:
    broken = tmp_path / "catalog.yaml"
    broken.write_text("kind: User\nmetadata: [oops\n", encoding="utf-8")
    wrong = {"BITBUCKET_SIGNIN_RESOLVERS": "noSuchResolver", "BITBUCKET_CATALOG": str(broken)}
    with pytest.raises(ConfigError) as refused:
        extension_of(**{setting: wrong[setting]})
    assert str(refused.value).startswith(f"{setting}: ")
    assert "\n" not in str(refused.value)


def test_the_apps_own_login_page_stays_and_an_app_without_one_gets_ours() -> None:
    own = Flask(__name__)
    own.config.update(unit_config())
    manager = LoginManager(own)
    manager.login_view = "password_login"
    manager.login_message = "Log in, please."
    BitbucketSignIn(own)
    assert (manager.login_view, manager.login_message) == ("password_login", "Log in, please.")

    without_view = Flask(__name__)
    without_view.config.update(unit_config())
    LoginManager(without_view)
    BitbucketSignIn(without_view)
    assert without_view.login_manager.login_view == "bitbucket_signin.signin"  # type: ignore[attr-defined]

    bare = unit_app(FakeClock())
    made: LoginManager = bare.login_manager  # type: ignore[attr-defined]
    assert (made.login_view, made.login_message) == ("bitbucket_signin.signin", None)


def test_resolve_applies_the_workspace_restriction_first() -> None:
    extension = extension_of(BITBUCKET_ALLOWED_WORKSPACES=["acme"])
    with pytest.raises(SignInError) as unknown:
        extension.resolve(JANE_PROFILE)  # Bitbucket did not say
    assert unknown.value.status == 403
    assert "did not say which workspaces" in unknown.value.message
    elsewhere = BitbucketProfile(JANE, None, "Jane Doe", workspaces=(Workspace("other"),))
    with pytest.raises(SignInError, match="only for members of the Bitbucket workspaces: acme"):
        extension.resolve(elsewhere)
    member = BitbucketProfile(JANE, None, "Jane Doe", workspaces=(Workspace("ACME"),))
    assert extension.resolve(member).user_entity_ref == "user:default/jdoe"


def test_resolve_takes_the_provider_from_the_profiles_type() -> None:
    both = extension_of(
        BITBUCKET_SERVER_URL="http://localhost:9/bitbucket",  # the catalog's localhost/user-id
        BITBUCKET_SERVER_CLIENT_ID="dc-client-id",
        BITBUCKET_SERVER_CLIENT_SECRET="dc-client-secret",
    )
    jane = ServerProfile(id=101, name="jane@example.com", slug="jane_example.com", display_name="")
    assert both.resolve(jane).user_entity_ref == "user:default/jdoe"
    assert both.resolve(JANE_PROFILE).user_entity_ref == "user:default/jdoe"
    with pytest.raises(NotFoundError):  # Data Center's resolvers: the id, not Cloud's uuid
        both.resolve(ServerProfile(id=999, name="jdoe", slug="jdoe", display_name=""))
    with pytest.raises(SignInError, match="Sign-in with bitbucketServer is not set up") as off:
        extension_of().resolve(jane)  # Cloud alone
    assert off.value.status == 404


def test_sign_out_everywhere_needs_the_redis_sessions() -> None:
    with pytest.raises(RuntimeError, match="BITBUCKET_SESSION_REDIS_URL"):
        extension_of().sign_out_everywhere(JANE)
