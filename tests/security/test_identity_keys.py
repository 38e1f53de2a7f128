"""Nobody becomes somebody else: look-alike emails, domains and usernames match no one, the
catalog-less fallback takes no catalog User's ref and gives no two accounts one, and the
local-part resolver starts only when the domains it trusts are named.

Every sign-in goes through the emulator, with accounts whose confirmed addresses and
usernames are the attacks, against a catalog that holds the people they imitate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask

from bitbucket_signin import ConfigError
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.emulator.accounts import config_from_dict
from bitbucket_signin.standalone import create_app

from ..support import DATA, FakeClock, edit_catalog, serve, session_contents, sign_in
from ..unit.test_identity_keys import FOLDED, LOOK_ALIKES
from .test_session_and_cookies import REFRESH, XHR

EMAIL = "emailMatchingUserEntityProfileEmail"
LOCAL_PART = "emailLocalPartMatchingUserEntityName"
USERNAME = "usernameMatchingUserEntityAnnotation"
USER_ID = "userIdMatchingUserEntityAnnotation"
DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"
ANY_DOMAIN = "dangerouslyAllowAnyEmailDomain"
NOT_KNOWN = "Your Bitbucket account is not known here"
NAMESPACE = uuid.UUID("5b0f3c1e-8d7a-4e2b-9c6f-1a2b3c4d5e6f")
CONFUSABLES = FOLDED + LOOK_ALIKES
BY_NAME = [pytest.param(name, plain, id=name) for name, _, plain in CONFUSABLES]


def who(key: str) -> str:
    """The uuid of the test account named ``key``: what the emulator signs in as."""
    return str(uuid.uuid5(NAMESPACE, key))


def account(key: str, email: str, username: str | None = None) -> dict[str, Any]:
    """An emulator account whose one confirmed address is ``email``."""
    entry: dict[str, Any] = {
        "uuid": who(key),
        "account_id": uuid.uuid5(NAMESPACE, key).hex[:24],
        "display_name": f"Account {key}",
        "emails": [{"email": email, "is_primary": True, "is_confirmed": True}],
    }
    if username is not None:
        entry["username"] = username
    return entry


def local_name(letter: str) -> str:
    return f"ja{letter}ne"


def domain(letter: str) -> str:
    """``stra{ß}e.example`` is straße.example: another, registrable domain than strasse."""
    return f"stra{letter}e.example"


def user(name: str, email: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"profile": {"email": email}, "memberOf": []},
    }


# Per look-alike character: an account "local-…" with it in its address and username, and an
# account "domain-…" with it in its domain; in the catalog, the people they imitate.
ACCOUNTS = [
    *(
        account(f"local-{name}", f"{local_name(hostile)}@example.com", local_name(hostile))
        for name, hostile, _ in CONFUSABLES
    ),
    *(account(f"domain-{name}", f"omar@{domain(hostile)}") for name, hostile, _ in CONFUSABLES),
    account("mixed-case", "Omar.Haddad@Example.COM"),
    account("a-label", "hans@xn--strae-oqa.example"),
    account("username-omar", "impostor@elsewhere.test", username="omar"),
    account("a-plus-b", "a+b@x.io"),
    account("a-minus-b", "a-b@x.io"),
    account("newcomer", "newcomer@elsewhere.test", username="newcomer"),
]
VICTIMS = {
    **{
        local_name(plain): user(
            local_name(plain),
            f"{local_name(plain)}@example.com",
            **{"bitbucket.org/username": local_name(plain)},
        )
        for _, _, plain in CONFUSABLES
    },
    **{
        f"omar-at-{domain(plain)}": user(f"omar-at-{domain(plain)}", f"omar@{domain(plain)}")
        for _, _, plain in CONFUSABLES
    },
    "ohaddad": user("ohaddad", "omar.haddad@example.com"),
    "hans": user("hans", "hans@stra\u00dfe.example"),
}


@pytest.fixture(scope="module")
def bitbucket_emulator() -> Iterator[EmulatorServer]:
    """The test accounts and the hostile ones (replaces the session-wide emulator here)."""
    data = yaml.safe_load((DATA / "accounts.yaml").read_text(encoding="utf-8"))
    data["accounts"] += ACCOUNTS
    with EmulatorServer(config_from_dict(data)) as server:
        yield server


@pytest.fixture(scope="module")
def victims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test catalog plus the people the hostile accounts imitate."""
    path = tmp_path_factory.mktemp("victims") / "catalog.yaml"
    extra = yaml.safe_dump_all(VICTIMS.values(), allow_unicode=True, sort_keys=False)
    path.write_text(f"{(DATA / 'catalog.yaml').read_text()}\n---\n{extra}", encoding="utf-8")
    return path


@pytest.fixture
def app_with(
    make_app: Callable[..., Flask], victims: Path, clock: FakeClock
) -> Callable[..., Flask]:
    """An app on the test clock with these resolvers over the victims' catalog (or the one
    given)."""

    def build(resolvers: Any, catalog: Path = victims) -> Flask:
        return make_app(
            BITBUCKET_SIGNIN_RESOLVERS=resolvers,
            BITBUCKET_CATALOG=str(catalog),
            BITBUCKET_CLOCK=clock,
        )

    return build


def signed_in_ref(http: requests.Session, url: str) -> str | None:
    """The ref the browser is signed in as now (the JSON refresh), or None."""
    response = http.get(f"{url}{REFRESH}", headers=XHR, timeout=10)
    if response.status_code == 401:
        return None
    ref: str = response.json()["backstageIdentity"]["identity"]["userEntityRef"]
    return ref


def sign_in_as(url: str, bitbucket: EmulatorServer, key: str) -> str:
    """A fresh browser signs in as account ``key``; returns the ref it is signed in as."""
    with requests.Session() as http:
        response = sign_in(http, url, bitbucket.url, who(key))
        assert response.status_code == 302, response.text
        ref = signed_in_ref(http, url)
    assert ref is not None
    return ref


def assert_refused(app: Flask, url: str, bitbucket: EmulatorServer, key: str, text: str) -> None:
    """A fresh browser signing in as account ``key`` gets a 403 page saying ``text``, and a
    session that names nobody."""
    with requests.Session() as http:
        response = sign_in(http, url, bitbucket.url, who(key))
        assert response.status_code == 403
        assert text in response.text
        contents = session_contents(app, http.cookies.get("session"))
        assert not {"_user_id", "_bitbucket_profile"} & set(contents)
        assert signed_in_ref(http, url) is None


# --- 1. one comparison key for emails and usernames ------------------------------------------


@pytest.mark.parametrize("name", [name for name, _, _ in CONFUSABLES])
@pytest.mark.parametrize(
    ("resolvers", "where"),
    [
        pytest.param(EMAIL, "local", id="email-local-part"),
        pytest.param(EMAIL, "domain", id="email-domain"),
        pytest.param(
            [{"resolver": LOCAL_PART, "allowedDomains": ["example.com"]}],
            "local",
            id="local-part-as-name",
        ),
        pytest.param(USERNAME, "local", id="username"),
    ],
)
def test_look_alike_never_signs_in_as_someone_else(
    app_with: Callable[..., Flask], bitbucket: EmulatorServer, resolvers: Any, where: str, name: str
) -> None:
    """``jaßne@example.com`` is not ``jassne@example.com``, ``omar@straße.example`` is not
    ``omar@strasse.example``, ``jaKne@example.com`` (Kelvin sign) is not the User ``jakne``
    and username ``jaKne`` is not ``bitbucket.org/username: jakne``, though all of those are
    in the catalog; and so for every look-alike."""
    app = app_with(resolvers)
    with serve(app) as url:
        assert_refused(app, url, bitbucket, f"{where}-{name}", NOT_KNOWN)


@pytest.mark.parametrize(("name", "plain"), BY_NAME)
def test_look_alike_domain_is_not_an_allowed_domain(
    app_with: Callable[..., Flask], bitbucket: EmulatorServer, name: str, plain: str
) -> None:
    """``allowedDomains: [strake.example]`` keeps out ``omar@straKe.example`` (Kelvin sign),
    who would otherwise sign in as the catalog's omar."""
    app = app_with([{"resolver": LOCAL_PART, "allowedDomains": [domain(plain)]}])
    with serve(app) as url:
        assert_refused(app, url, bitbucket, f"domain-{name}", "not from an allowed domain")


@pytest.mark.parametrize(
    ("key", "ref"),
    [
        pytest.param("mixed-case", "user:default/ohaddad", id="Omar.Haddad@Example.COM"),
        pytest.param("a-label", "user:default/hans", id="hans@xn--strae-oqa.example"),
    ],
)
def test_ascii_case_and_a_labels_still_match(
    app_with: Callable[..., Flask], bitbucket: EmulatorServer, key: str, ref: str
) -> None:
    """The same address still matches: ASCII case differs, or the domain is in its A-label
    (the catalog says ``hans@straße.example``)."""
    app = app_with(EMAIL)
    with serve(app) as url:
        assert sign_in_as(url, bitbucket, key) == ref


# --- 2. the catalog-less fallback --------------------------------------------------------------


def test_fallback_never_takes_a_catalog_users_ref(
    app_with: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    """An account with username ``omar`` (not omar's account) would be user:default/omar."""
    app = app_with([{"resolver": USERNAME, DANGEROUS: True}])
    with serve(app) as url:
        assert_refused(
            app,
            url,
            bitbucket,
            "username-omar",
            "You cannot sign in as user:default/omar: that is a User of the catalog",
        )
        assert sign_in_as(url, bitbucket, "newcomer") == "user:default/newcomer"


def test_fallback_never_gives_two_accounts_one_ref(
    app_with: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    """``a-b@x.io`` signs in as user:default/a-b; ``a+b@x.io`` is not turned into it."""
    app = app_with([{"resolver": LOCAL_PART, "allowedDomains": ["x.io"], DANGEROUS: True}])
    with serve(app) as url:
        assert sign_in_as(url, bitbucket, "a-minus-b") == "user:default/a-b"
        assert_refused(app, url, bitbucket, "a-plus-b", NOT_KNOWN)


def test_fallback_session_ends_when_the_catalog_gains_that_ref(
    app_with: Callable[..., Flask],
    http: requests.Session,
    bitbucket: EmulatorServer,
    catalog_file: Path,
    clock: FakeClock,
) -> None:
    """Signed in as user:default/newcomer without a User; then a User of that name (someone
    else's) is added: the next request is anonymous, and a new sign-in is refused."""
    app = app_with([{"resolver": USERNAME, DANGEROUS: True}], catalog=catalog_file)
    with serve(app) as url:
        assert sign_in(http, url, bitbucket.url, who("newcomer")).status_code == 302
        assert signed_in_ref(http, url) == "user:default/newcomer"
        someone = user("newcomer", "someone@example.com", **{"bitbucket.org/username": "other"})
        edit_catalog(
            catalog_file, f"{catalog_file.read_text()}\n---\n{yaml.safe_dump(someone)}", clock
        )
        assert signed_in_ref(http, url) is None
        assert not {"_user_id", "_bitbucket_profile"} & set(
            session_contents(app, http.cookies.get("session"))
        )
        assert_refused(
            app, url, bitbucket, "newcomer", "You cannot sign in as user:default/newcomer"
        )


# --- 3. start-up refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolvers", "names"),
    [
        pytest.param(
            LOCAL_PART,
            f"'{LOCAL_PART}': option 'allowedDomains' is required",
            id="local-part-without-allowedDomains",
        ),
        pytest.param(
            [{"resolver": LOCAL_PART, "allowedDomains": ["\uff45xample.com"]}],
            "is not a domain name (IDNA 2008)",
            id="look-alike-allowed-domain",
        ),
        pytest.param(
            [{"resolver": EMAIL, DANGEROUS: True}],
            f"'{EMAIL}': option '{DANGEROUS}' is not available",
            id="fallback-on-whole-emails",
        ),
        pytest.param(
            [{"resolver": LOCAL_PART, "allowedDomains": ["a.test", "b.test"], DANGEROUS: True}],
            "needs exactly one 'allowedDomains' entry",
            id="fallback-over-two-domains",
        ),
        pytest.param(
            [{"resolver": USERNAME, DANGEROUS: True}, {"resolver": USER_ID, DANGEROUS: True}],
            f"only one may use '{DANGEROUS}'",
            id="two-fallbacks",
        ),
    ],
)
def test_start_up_refuses_resolvers_that_could_mix_people_up(
    app_config: dict[str, Any], resolvers: Any, names: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        create_app({**app_config, "BITBUCKET_SIGNIN_RESOLVERS": resolvers})
    line = str(raised.value)
    assert line.startswith("BITBUCKET_SIGNIN_RESOLVERS: Sign-in resolver")
    assert names in line
    assert "\n" not in line


def test_any_domain_only_when_said(
    app_with: Callable[..., Flask], bitbucket: EmulatorServer
) -> None:
    """With the documented opt-out the local part of any confirmed address is the name."""
    app = app_with([{"resolver": LOCAL_PART, ANY_DOMAIN: True}])
    with serve(app) as url:
        assert sign_in_as(url, bitbucket, "domain-sharp s") == "user:default/omar"
