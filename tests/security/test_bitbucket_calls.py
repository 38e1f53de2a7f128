"""Each sign-in makes only the Bitbucket calls its configuration needs (the API quota is shared).

The emulator's request log counts the calls of one whole sign-in over real HTTP, for each
configuration the "Calls to Bitbucket" table of docs/configuration.md names; the table must
say the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask

from bitbucket_signin import ConfigError
from bitbucket_signin.catalog import Catalog
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.profile import BitbucketProfile
from bitbucket_signin.resolvers import Identity, identity_for

from ..support import JANE, docs_page, emulator_requests, serve, sign_in

EMAIL_RESOLVER = "emailMatchingUserEntityProfileEmail"
EMAILS_SEEN: list[str | None] = []


def custom_resolver(profile: BitbucketProfile, catalog: Catalog) -> Identity:
    """A host app's own resolver; it records the email it was given."""
    EMAILS_SEEN.append(profile.email)
    user = catalog.user_by_name("jdoe")
    assert user is not None
    return identity_for(catalog, user)


# configuration → its settings, the calls of one sign-in, and the docs row that says so
CASES: dict[str, tuple[dict[str, Any], list[str], str]] = {
    "default": (
        {},
        ["token", "user"],
        "| the default resolver, or any that match by uuid, account id or username | 2 |",
    ),
    "email resolver": (
        {"BITBUCKET_SIGNIN_RESOLVERS": [EMAIL_RESOLVER]},
        ["token", "user", "emails"],
        "| an email resolver, a custom resolver, or `BITBUCKET_FETCH_EMAILS: true` | 3 |",
    ),
    "custom resolver": (
        {"BITBUCKET_SIGNIN_RESOLVERS": [custom_resolver]},
        ["token", "user", "emails"],
        "| an email resolver, a custom resolver, or `BITBUCKET_FETCH_EMAILS: true` | 3 |",
    ),
    "emails asked for": (
        {"BITBUCKET_FETCH_EMAILS": "true"},
        ["token", "user", "emails"],
        "| an email resolver, a custom resolver, or `BITBUCKET_FETCH_EMAILS: true` | 3 |",
    ),
    "custom resolver, no emails": (
        {"BITBUCKET_SIGNIN_RESOLVERS": [custom_resolver], "BITBUCKET_FETCH_EMAILS": False},
        ["token", "user"],
        "| a custom resolver with `BITBUCKET_FETCH_EMAILS: false` | 2 |",
    ),
    "workspace gate": (
        {"BITBUCKET_ALLOWED_WORKSPACES": ["acme"]},
        ["token", "user", "workspaces"],
        "| any of the above, and `BITBUCKET_ALLOWED_WORKSPACES` | one more |",
    ),
    "email resolver and workspace gate": (
        {"BITBUCKET_SIGNIN_RESOLVERS": [EMAIL_RESOLVER], "BITBUCKET_ALLOWED_WORKSPACES": "acme"},
        ["token", "user", "emails", "workspaces"],
        "| any of the above, and `BITBUCKET_ALLOWED_WORKSPACES` | one more |",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_sign_in_makes_only_the_calls_its_configuration_needs(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer, case: str
) -> None:
    settings, calls, docs_row = CASES[case]
    with serve(make_app(**settings)) as url:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
    made = [entry["endpoint"] for entry in emulator_requests(bitbucket)]
    assert Counter(made) == Counter(["authorize", *calls])
    assert docs_row in docs_page("configuration")


def test_a_custom_resolver_sees_the_email_unless_told_otherwise(
    make_app: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    """The email is unknown (``None``) only when it was not asked for."""
    EMAILS_SEEN.clear()
    for fetch in ("auto", False):
        app = make_app(BITBUCKET_SIGNIN_RESOLVERS=[custom_resolver], BITBUCKET_FETCH_EMAILS=fetch)
        with serve(app) as url, requests.Session() as http:
            assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
    assert EMAILS_SEEN == ["jane@example.com", None]


@pytest.mark.parametrize(
    "resolver",
    [
        EMAIL_RESOLVER,
        {"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomains": ["example.com"]},
    ],
)
def test_no_emails_with_an_email_resolver_is_refused_at_start_up(
    make_app: Callable[..., Flask], resolver: Any
) -> None:
    with pytest.raises(ConfigError, match=r"^BITBUCKET_FETCH_EMAILS is false, but the resolver"):
        make_app(BITBUCKET_SIGNIN_RESOLVERS=[resolver], BITBUCKET_FETCH_EMAILS="false")
