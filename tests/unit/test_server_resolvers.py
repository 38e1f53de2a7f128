"""The sign-in resolvers for Bitbucket Data Center accounts."""

from __future__ import annotations

from typing import Any

import pytest

from bitbucket_signin.catalog import Catalog
from bitbucket_signin.errors import ConfigError, ConflictError, SignInError
from bitbucket_signin.resolvers import UserNotInCatalogError, resolve
from bitbucket_signin.server_profile import ServerProfile
from bitbucket_signin.server_resolvers import (
    server_chain,
    user_id_annotation,
    user_slug_annotation,
)

from .test_resolvers import entity

HOST = "git.example.com"
ID_KEY = user_id_annotation(HOST)
SLUG_KEY = user_slug_annotation(HOST)
DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"


def jane(**changes: Any) -> ServerProfile:
    fields: dict[str, Any] = {
        "id": 101,
        "name": "jane@example.com",
        "slug": "jane_example.com",
        "display_name": "Jane Doe",
        "email": "Jane@Example.COM",
    }
    return ServerProfile(**{**fields, **changes})


CATALOG = Catalog(
    [
        entity("jdoe", "jane@example.com", **{ID_KEY: "101"}),
        entity("lchen", "li@example.com", **{SLUG_KEY: "lchen"}),
        entity("cloudy", None, **{"bitbucket.org/user-id": "101", "other.example/user-id": "7"}),
        entity("omar", "omar@example.com"),
    ]
)


def signs_in_as(spec: Any, profile: ServerProfile, catalog: Catalog = CATALOG) -> str:
    return resolve(server_chain([spec], HOST), profile, catalog).user_entity_ref


def test_annotation_keys_name_the_instance_and_never_clouds() -> None:
    assert (ID_KEY, SLUG_KEY) == ("git.example.com/user-id", "git.example.com/user-slug")
    assert not ID_KEY.startswith("bitbucket.org/")


@pytest.mark.parametrize(
    ("spec", "profile", "ref"),
    [
        ("userIdMatchingUserEntityAnnotation", jane(), "user:default/jdoe"),
        ("userSlugMatchingUserEntityAnnotation", jane(id=5, slug="lchen"), "user:default/lchen"),
        ("emailMatchingUserEntityProfileEmail", jane(id=5), "user:default/jdoe"),
        (
            "emailMatchingUserEntityProfileEmail",
            jane(id=5, email="jane+dc@example.com"),
            "user:default/jdoe",
        ),
        (
            {"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomains": ["example.com"]},
            jane(id=5, email="Omar@example.com"),
            "user:default/omar",
        ),
    ],
)
def test_each_resolver_matches(spec: Any, profile: ServerProfile, ref: str) -> None:
    assert signs_in_as(spec, profile) == ref


def test_an_id_of_another_instance_or_of_cloud_matches_nothing() -> None:
    with pytest.raises(UserNotInCatalogError) as raised:
        signs_in_as("userIdMatchingUserEntityAnnotation", jane(id=7))
    assert raised.value.attempts == (
        ("userIdMatchingUserEntityAnnotation", f'No User entity has annotation {ID_KEY} "7"'),
    )
    assert raised.value.suggestion == f'metadata:\n  annotations:\n    {ID_KEY}: "7"'


def test_no_email_moves_on_with_backstages_message() -> None:
    chain = server_chain(
        ["emailMatchingUserEntityProfileEmail", "userIdMatchingUserEntityAnnotation"], HOST
    )
    assert resolve(chain, jane(email=None), CATALOG).user_entity_ref == "user:default/jdoe"
    with pytest.raises(UserNotInCatalogError) as raised:
        resolve(chain[:1], jane(email=None), CATALOG)
    assert raised.value.attempts[0][1] == "Login failed, user profile does not contain an email"


def test_wrong_domain_and_conflicts_refuse() -> None:
    spec = {"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomains": ["example.com"]}
    with pytest.raises(SignInError, match="not from an allowed domain"):
        signs_in_as(spec, jane(email="jdoe@evil.example"))
    twice = Catalog([entity("a", **{ID_KEY: "101"}), entity("b", **{ID_KEY: "101"})])
    with pytest.raises(ConflictError):
        signs_in_as("userIdMatchingUserEntityAnnotation", jane(), twice)


def test_sign_in_without_a_catalog_user() -> None:
    spec = {"resolver": "userIdMatchingUserEntityAnnotation", DANGEROUS: True}
    assert signs_in_as(spec, jane(id=4242)) == "user:default/4242"
    slug = {"resolver": "userSlugMatchingUserEntityAnnotation", DANGEROUS: True}
    with pytest.raises(UserNotInCatalogError) as raised:
        signs_in_as(slug, jane(slug="a@b"))
    assert "not a valid entity name" in raised.value.attempts[0][1]
    with pytest.raises(SignInError, match="is a User of the catalog"):
        signs_in_as(slug, jane(slug="omar"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("usernameMatchingUserEntityAnnotation", "'usernameMatchingUserEntityAnnotation' is not"),
        ("bitbucketUserIdSignInResolver", "is not available"),
        ({"resolver": "emailLocalPartMatchingUserEntityName"}, "'allowedDomains' is required"),
        ({"resolver": "emailMatchingUserEntityProfileEmail", DANGEROUS: True}, "not available"),
    ],
)
def test_cloud_only_resolvers_and_bad_options_are_refused(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        server_chain([spec], HOST)
