"""The sign-in resolvers, their configuration and the chain."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from bitbucket_signin.catalog import Catalog, UserEntity, load_catalog
from bitbucket_signin.errors import (
    NOT_IN_CATALOG_MESSAGE,
    ConfigError,
    ConflictError,
    NotFoundError,
    SignInError,
    UserNotInCatalogError,
)
from bitbucket_signin.profile import BitbucketProfile
from bitbucket_signin.resolvers import (
    Identity,
    Resolver,
    Step,
    build_chain,
    build_resolver,
    explain,
    identity_for,
    register_resolver,
    resolve,
)

from ..support import JANE

OTHER = "{11111111-1111-1111-1111-111111111111}"
OTHER_QUOTED = f'"{OTHER}"'
NO = "No User entity has "
USER_ID = "userIdMatchingUserEntityAnnotation"
USERNAME = "usernameMatchingUserEntityAnnotation"
ACCOUNT_ID = "accountIdMatchingUserEntityAnnotation"
EMAIL = "emailMatchingUserEntityProfileEmail"
LOCAL_PART = "emailLocalPartMatchingUserEntityName"
LOCAL_EXAMPLE = {"resolver": LOCAL_PART, "allowedDomains": ["example.com"]}
DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"


def profile(**changes: Any) -> BitbucketProfile:
    fields: dict[str, Any] = {
        "uuid": JANE,
        "account_id": "5c65cab48bcc9e016aeece31",
        "display_name": "Jane Doe",
        "username": "jdoe",
        "email": "jane@example.com",
    }
    return BitbucketProfile(**{**fields, **changes})


def entity(name: str, email: str | None = None, **annotations: str) -> UserEntity:
    """A User built in code, for catalogs the loader would refuse (two users, one account)."""
    return UserEntity(
        kind="User",
        name=name,
        namespace="default",
        annotations=MappingProxyType(annotations),
        source=Path("people.yaml"),
        document=1,
        display_name=name,
        email=email,
    )


def claiming(key: str, *values: str) -> list[UserEntity]:
    """Users that all claim one Bitbucket account through annotation ``key``."""
    return [entity(f"u{index}", **{key: value}) for index, value in enumerate(values)]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(Path(__file__).parent.parent / "catalogs" / "basic" / "catalog.yaml")


def run(spec: Any, who: BitbucketProfile, catalog: Catalog) -> Identity:
    return build_resolver(spec)(who, catalog)


# --- matches --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "who"),
    [
        (USER_ID, profile()),
        ("bitbucketUserIdSignInResolver", profile()),
        (USER_ID, profile(uuid=JANE.upper())),
        (USER_ID, profile(uuid=JANE.strip("{}"))),
        (USERNAME, profile(uuid="{00000000-0000-0000-0000-000000000000}")),
        ("bitbucketUsernameSignInResolver", profile(username="JDoe")),
        (ACCOUNT_ID, profile()),
        (EMAIL, profile(email="Jane@Example.com")),
        (EMAIL, profile(email="jane+backstage@example.com")),
        (
            {"resolver": LOCAL_PART, "dangerouslyAllowAnyEmailDomain": True},
            profile(email="jdoe@x.y"),
        ),
        (LOCAL_EXAMPLE, profile(email="JDoe@example.com")),
        (
            {"resolver": LOCAL_PART, "allowedDomains": ["Example.com"]},
            profile(email="jdoe@EXAMPLE.com"),
        ),
    ],
)
def test_resolvers_find_jane(spec: Any, who: BitbucketProfile, catalog: Catalog) -> None:
    identity = run(spec, who, catalog)
    assert identity.user_entity_ref == "user:default/jdoe"
    assert identity.ownership_entity_refs == ("group:default/team-a", "user:default/jdoe")
    assert identity.entity is catalog.users[0]


def test_plus_tag_is_tried_only_when_the_full_address_is_unknown() -> None:
    tagged, plain = entity("tagged", "jane+x@example.com"), entity("plain", "jane@example.com")
    catalog = Catalog([tagged, plain])
    assert run(EMAIL, profile(email="jane+x@example.com"), catalog).entity is tagged
    assert run(EMAIL, profile(email="jane+y@example.com"), catalog).entity is plain


def test_local_part_lookup_is_in_the_default_namespace(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError):
        run(LOCAL_EXAMPLE, profile(email="carol@example.com"), catalog)  # carol is in namespace ops


# --- no match: NotFoundError, so the chain moves on ------------------------------------------


@pytest.mark.parametrize(
    ("spec", "who", "message"),
    [
        (USER_ID, profile(uuid=OTHER), f"{NO}annotation bitbucket.org/user-id {OTHER_QUOTED}"),
        (
            USER_ID,
            profile(uuid=OTHER.strip("{}")),
            f"{NO}annotation bitbucket.org/user-id {OTHER_QUOTED}",
        ),
        (USERNAME, profile(username="nobody"), NO + 'annotation bitbucket.org/username "nobody"'),
        (ACCOUNT_ID, profile(account_id="x"), NO + 'annotation bitbucket.org/account-id "x"'),
        (
            EMAIL,
            profile(email="nobody+x@example.com"),
            NO + 'spec.profile.email "nobody+x@example.com"',
        ),
        (
            LOCAL_EXAMPLE,
            profile(email="nobody@example.com"),
            'No User entity has metadata.name (namespace default) "nobody"',
        ),
    ],
)
def test_no_match_is_not_found(
    spec: Any, who: BitbucketProfile, message: str, catalog: Catalog
) -> None:
    with pytest.raises(NotFoundError) as info:
        run(spec, who, catalog)
    assert type(info.value) is NotFoundError
    assert info.value.message == message
    assert info.value.status == 403


# --- profile without the field ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "who", "message"),
    [
        (USER_ID, profile(uuid=""), "Bitbucket user profile does not contain an ID"),
        (USERNAME, profile(username=None), "Bitbucket user profile does not contain a Username"),
        (
            ACCOUNT_ID,
            profile(account_id=None),
            "Bitbucket user profile does not contain an account ID",
        ),
        (EMAIL, profile(email=None), "Login failed, user profile does not contain an email"),
        (
            LOCAL_EXAMPLE,
            profile(email=None),
            "Login failed, user profile does not contain an email",
        ),
    ],
)
def test_missing_profile_field_is_not_found(
    spec: Any, who: BitbucketProfile, message: str, catalog: Catalog
) -> None:
    with pytest.raises(NotFoundError, match=f"^{message}$"):
        run(spec, who, catalog)


# --- several matches: conflict ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "users"),
    [
        (USER_ID, claiming("bitbucket.org/user-id", JANE, JANE.upper())),
        (USERNAME, claiming("bitbucket.org/username", "jdoe", "JDOE")),
        (ACCOUNT_ID, claiming("bitbucket.org/account-id", *["5c65cab48bcc9e016aeece31"] * 2)),
        (EMAIL, [entity("a", "jane@example.com"), entity("b", "JANE@example.com")]),
    ],
)
def test_several_matches_conflict(spec: str, users: list[UserEntity]) -> None:
    with pytest.raises(ConflictError, match=r"^User lookup resulted in multiple matches$"):
        run(spec, profile(), Catalog(users))


# --- allowedDomains -------------------------------------------------------------------------


def test_local_part_refuses_other_domains(catalog: Catalog) -> None:
    for email in ("jdoe@evil.test", "jdoe@example.com.evil.test", "jdoe", "jdoe@\uff45xample.com"):
        with pytest.raises(SignInError) as info:
            run(LOCAL_EXAMPLE, profile(email=email), catalog)
        assert not isinstance(info.value, NotFoundError)
        assert info.value.message == "Sign-in user email is not from an allowed domain"
        assert info.value.status == 403


# --- dangerouslyAllowSignInWithoutUserInCatalog ---------------------------------------------


@pytest.mark.parametrize(
    ("spec", "who", "ref"),
    [
        (USER_ID, profile(uuid=OTHER.upper()), "user:default/" + OTHER.strip("{}")),
        (USERNAME, profile(username="New.User"), "user:default/new.user"),
        (
            ACCOUNT_ID,
            profile(account_id="5c65cab48bcc9e016aeece99"),
            "user:default/5c65cab48bcc9e016aeece99",
        ),
        (LOCAL_EXAMPLE, profile(email="New.User@Example.com"), "user:default/new.user"),
    ],
)
def test_dangerous_option_signs_in_without_a_user(
    spec: Any, who: BitbucketProfile, ref: str, catalog: Catalog
) -> None:
    options = spec if isinstance(spec, dict) else {"resolver": spec}
    identity = run({**options, DANGEROUS: True}, who, catalog)
    assert identity == Identity(ref, (ref,), None)


def test_dangerous_option_still_prefers_the_catalog(catalog: Catalog) -> None:
    spec = {"resolver": USER_ID, "dangerouslyAllowSignInWithoutUserInCatalog": True}
    assert run(spec, profile(), catalog).entity is catalog.users[0]


@pytest.mark.parametrize(
    ("spec", "who"),
    [
        *((USERNAME, profile(username=name)) for name in ["_jdoe", "-x", "a" * 64, "jdoe."]),
        # nothing is substituted: "a+b" is not turned into the "a-b" of another account
        (USERNAME, profile(username="a+b")),
        (USERNAME, profile(username="\u212aim")),  # Kelvin sign: not "kim"
        (ACCOUNT_ID, profile(account_id="712020:2f4b-99")),
        (ACCOUNT_ID, profile(account_id="5C65CAB48BCC9E016AEECE99")),  # case would be lost
        (LOCAL_EXAMPLE, profile(email="a+b@example.com")),
        (LOCAL_EXAMPLE, profile(email="\u212aim@example.com")),
    ],
)
def test_dangerous_option_refuses_values_that_are_not_entity_names_as_they_are(
    spec: Any, who: BitbucketProfile, catalog: Catalog
) -> None:
    options = spec if isinstance(spec, dict) else {"resolver": spec}
    with pytest.raises(NotFoundError, match="is not a valid entity name in lower case"):
        run({**options, DANGEROUS: True}, who, catalog)


@pytest.mark.parametrize(
    ("spec", "who"),
    [
        (USERNAME, profile(username="BOB.smith")),
        (ACCOUNT_ID, profile(account_id="bob.smith")),
    ],
)
def test_dangerous_option_never_takes_a_catalog_users_ref(
    spec: str, who: BitbucketProfile, catalog: Catalog
) -> None:
    with pytest.raises(SignInError) as info:
        run({"resolver": spec, DANGEROUS: True}, who, catalog)
    assert not isinstance(info.value, NotFoundError)
    assert info.value.status == 403
    assert info.value.message.startswith(
        "You cannot sign in as user:default/bob.smith: that is a User of the catalog"
    )


def test_dangerous_option_respects_allowed_domains(catalog: Catalog) -> None:
    spec = {**LOCAL_EXAMPLE, DANGEROUS: True}
    with pytest.raises(SignInError, match="allowed domain"):
        run(spec, profile(email="new@evil.test"), catalog)


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("githubResolver", "Sign-in resolver 'githubResolver' is not available"),
        ({"resolver": "nope"}, "Sign-in resolver 'nope' is not available"),
        (
            {"resolver": USER_ID, "allowedDomains": ["a"]},
            f"Sign-in resolver '{USER_ID}': unknown option 'allowedDomains'",
        ),
        (
            {"resolver": EMAIL, "colour": "red"},
            f"Sign-in resolver '{EMAIL}': unknown option 'colour'",
        ),
        (
            {"resolver": USER_ID, "dangerouslyAllowSignInWithoutUserInCatalog": "yes"},
            "option 'dangerouslyAllowSignInWithoutUserInCatalog' must be true or false",
        ),
        (
            {"resolver": LOCAL_PART, "allowedDomains": "example.com"},
            "option 'allowedDomains' must be a list of domains",
        ),
        (
            {"resolver": LOCAL_PART, "allowedDomains": [1]},
            "option 'allowedDomains' must be a list of domains",
        ),
        (
            LOCAL_PART,
            f"Sign-in resolver '{LOCAL_PART}': option 'allowedDomains' is required "
            "(or 'dangerouslyAllowAnyEmailDomain: true')",
        ),
        (
            {"resolver": LOCAL_PART, DANGEROUS: True},
            "option 'allowedDomains' is required",
        ),
        (
            {"resolver": LOCAL_PART, "dangerouslyAllowAnyEmailDomain": "yes"},
            "option 'dangerouslyAllowAnyEmailDomain' must be true or false",
        ),
        (
            {**LOCAL_EXAMPLE, "dangerouslyAllowAnyEmailDomain": True},
            "give 'allowedDomains' or 'dangerouslyAllowAnyEmailDomain: true', not both",
        ),
        ({"resolver": LOCAL_PART, "allowedDomains": []}, "option 'allowedDomains' is empty"),
        (
            {"resolver": LOCAL_PART, "allowedDomains": ["\uff45xample.com"]},
            "option 'allowedDomains': \"\uff45xample.com\" is not a domain name (IDNA 2008)",
        ),
        (
            {"resolver": EMAIL, "dangerouslyAllowAnyEmailDomain": True},
            f"Sign-in resolver '{EMAIL}': unknown option 'dangerouslyAllowAnyEmailDomain'",
        ),
        (
            {"resolver": EMAIL, DANGEROUS: True},
            f"Sign-in resolver '{EMAIL}': option '{DANGEROUS}' is not available: "
            "an email address is not an entity name",
        ),
        (
            {"resolver": LOCAL_PART, "allowedDomains": ["a.test", "b.test"], DANGEROUS: True},
            f"option '{DANGEROUS}' needs exactly one 'allowedDomains' entry",
        ),
        (
            {"resolver": LOCAL_PART, "dangerouslyAllowAnyEmailDomain": True, DANGEROUS: True},
            f"option '{DANGEROUS}' needs exactly one 'allowedDomains' entry",
        ),
        ({"name": USER_ID}, "has no 'resolver' name"),
        (42, "is not a name, a mapping or a callable"),
    ],
)
def test_configuration_errors(spec: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_resolver(spec)
    assert message in str(info.value)


def test_callables_are_used_as_they_are() -> None:
    def custom(who: BitbucketProfile, catalog: Catalog) -> Identity:
        raise NotFoundError("never")

    assert build_resolver(custom) is custom


def test_build_chain_keeps_the_order_and_refuses_empty() -> None:
    chain = build_chain([USERNAME, {"resolver": EMAIL}])
    assert [getattr(r, "name", None) for r in chain] == [USERNAME, EMAIL]
    with pytest.raises(ConfigError, match="At least one sign-in resolver"):
        build_chain([])


def test_build_chain_allows_one_fallback_at_most() -> None:
    """Username "bob" and bob@example.com (another account) would both be user:default/bob."""
    one = {"resolver": USERNAME, DANGEROUS: True}
    assert len(build_chain([one, USER_ID, LOCAL_EXAMPLE])) == 3
    with pytest.raises(ConfigError) as info:
        build_chain([one, USER_ID, {**LOCAL_EXAMPLE, DANGEROUS: True}])
    assert str(info.value) == (
        f"Sign-in resolvers {USERNAME}, {LOCAL_PART}: only one may use '{DANGEROUS}', "
        "or two Bitbucket accounts could sign in as one ref"
    )


def test_register_resolver(catalog: Catalog) -> None:
    def by_nickname(options: Any) -> Resolver:
        def resolver(who: BitbucketProfile, catalog: Catalog) -> Identity:
            user = catalog.user_by_name(options["prefix"] + (who.nickname or ""))
            if user is None:
                raise NotFoundError("no such nickname")
            return identity_for(catalog, user)

        return resolver

    register_resolver("testNicknameResolver", by_nickname)
    resolver = build_resolver({"resolver": "testNicknameResolver", "prefix": "j"})
    assert resolver(profile(nickname="doe"), catalog).user_entity_ref == "user:default/jdoe"
    with pytest.raises(ConfigError, match="already registered"):
        register_resolver(USER_ID, by_nickname)


# --- the chain ------------------------------------------------------------------------------


def test_first_match_wins_and_not_found_moves_on(catalog: Catalog) -> None:
    chain = build_chain([USERNAME, USER_ID])
    assert resolve(chain, profile(username=None), catalog).user_entity_ref == "user:default/jdoe"
    assert resolve(chain, profile(username="bob"), catalog).user_entity_ref == "user:default/jdoe"


def test_conflict_and_refusals_stop_the_chain(catalog: Catalog) -> None:
    calls: list[str] = []

    def spy(who: BitbucketProfile, catalog: Catalog) -> Identity:
        calls.append(who.uuid)
        return identity_for(catalog, catalog.users[0])

    two = Catalog([entity("a", "jane@example.com"), entity("b", "jane@example.com")])
    with pytest.raises(ConflictError):
        resolve(build_chain([EMAIL, spy]), profile(), two)
    domains = {"resolver": LOCAL_PART, "allowedDomains": ["example.org"]}
    with pytest.raises(SignInError, match="allowed domain"):
        resolve(build_chain([domains, spy]), profile(), catalog)
    assert calls == []


def test_unknown_user_reports_attempts_and_suggestion(catalog: Catalog) -> None:
    stranger = profile(uuid=OTHER, username=None, email="x@y.z")

    def custom(who: BitbucketProfile, catalog: Catalog) -> Identity:
        raise NotFoundError("custom says no")

    chain = build_chain([USERNAME, USER_ID, EMAIL, custom])
    with pytest.raises(UserNotInCatalogError) as info:
        resolve(chain, stranger, catalog)
    error = info.value
    assert isinstance(error, NotFoundError)
    assert error.message == NOT_IN_CATALOG_MESSAGE == str(error)
    assert error.message.startswith("Failed to sign-in, unable to resolve user identity.")
    assert error.status == 403
    assert error.profile is stranger
    assert error.attempts == (
        (USERNAME, "Bitbucket user profile does not contain a Username"),
        (USER_ID, f"{NO}annotation bitbucket.org/user-id {OTHER_QUOTED}"),
        (EMAIL, NO + 'spec.profile.email "x@y.z"'),
        ("custom", "custom says no"),
    )
    # the username resolver cannot match this profile: the suggestion is the user-id's
    assert error.suggestion == (
        f"metadata:\n  annotations:\n    bitbucket.org/user-id: {OTHER_QUOTED}"
    )


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [
        (EMAIL, 'spec:\n  profile:\n    email: "x+y@y.z"'),
        ({"resolver": LOCAL_PART, "allowedDomains": ["y.z"]}, 'metadata:\n  name: "x+y"'),
        (ACCOUNT_ID, 'metadata:\n  annotations:\n    bitbucket.org/account-id: "acc"'),
    ],
)
def test_suggestion_follows_the_first_resolver(
    spec: Any, suggestion: str, catalog: Catalog
) -> None:
    with pytest.raises(UserNotInCatalogError) as info:
        resolve(
            build_chain([spec, USER_ID]),
            profile(uuid=OTHER, email="x+y@y.z", account_id="acc"),
            catalog,
        )
    assert info.value.suggestion == suggestion


def test_custom_chain_only_gets_a_generic_suggestion(catalog: Catalog) -> None:
    def custom(who: BitbucketProfile, catalog: Catalog) -> Identity:
        raise NotFoundError("no")

    with pytest.raises(UserNotInCatalogError) as info:
        resolve([custom], profile(), catalog)
    assert "User entity" in info.value.suggestion


def test_identity_for_custom_resolvers(catalog: Catalog) -> None:
    bob = catalog.users[1]
    assert identity_for(catalog, bob) == Identity(
        "user:default/bob.smith", ("group:default/team-b", "user:default/bob.smith"), bob
    )


def test_explain_stops_at_a_refusal_and_names_custom_resolvers() -> None:
    shared = Catalog([entity("a", "jane@example.com"), entity("b", "jane@example.com")])

    def by_nothing(profile: BitbucketProfile, catalog: Catalog) -> Identity:
        raise NotFoundError("nobody reads nothing")

    explanation = explain(build_chain([by_nothing, EMAIL, USER_ID]), profile(), shared)
    assert explanation.steps == (
        Step("by_nothing", "what it reads", "nobody reads nothing"),
        Step(
            EMAIL,
            'spec.profile.email "jane@example.com"',
            "refused: User lookup resulted in multiple matches",
        ),
    )
    assert explanation.suggestion is None


def test_explain_names_the_resolver_that_matched_and_what_would_fix_a_miss(
    catalog: Catalog,
) -> None:
    chain = build_chain([USERNAME, USER_ID])
    matched = explain(chain, profile(username=None), catalog)
    identity = matched.steps[-1].identity
    assert identity is not None
    assert identity.resolver == USER_ID
    assert identity == resolve(chain, profile(username=None), catalog)
    missed = explain(chain, profile(uuid=OTHER, username=None), catalog)
    assert [step.found for step in missed.steps] == ["nothing", "no User entity"]
    assert (
        missed.suggestion == f"metadata:\n  annotations:\n    bitbucket.org/user-id: {OTHER_QUOTED}"
    )
