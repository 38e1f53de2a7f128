"""The comparison keys of emails, domains, usernames and names, and the catalog's use of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bitbucket_signin.catalog import USERNAME_ANNOTATION, Catalog, load_catalog
from bitbucket_signin.errors import CatalogError
from bitbucket_signin.identity_keys import (
    ascii_lower,
    domain_key,
    email_key,
    email_key_parts,
    username_key,
)

from .test_resolvers import entity

# A character that looks like (or case-folds to) ASCII text, and that text.
FOLDED = [
    ("sharp s", "\u00df", "ss"),
    ("long s", "\u017f", "s"),
    ("Kelvin sign", "\u212a", "k"),
    ("ligature ff", "\ufb00", "ff"),
    ("ligature fi", "\ufb01", "fi"),
    ("ligature fl", "\ufb02", "fl"),
    ("ligature ffi", "\ufb03", "ffi"),
    ("ligature ffl", "\ufb04", "ffl"),
    ("ligature long s t", "\ufb05", "st"),
    ("ligature st", "\ufb06", "st"),
]
LOOK_ALIKES = [
    ("full-width e", "\uff45", "e"),
    ("full-width K", "\uff2b", "k"),
    ("Cyrillic e", "\u0435", "e"),
    ("Cyrillic o", "\u043e", "o"),
    ("Cyrillic a", "\u0430", "a"),
]
CONFUSABLES = [
    pytest.param(hostile, plain, id=name) for name, hostile, plain in FOLDED + LOOK_ALIKES
]


def test_the_folded_characters_are_the_ones_casefold_equates() -> None:
    """Why the keys exist: ``casefold`` makes each of these the ASCII text beside it."""
    assert all(hostile.casefold() == plain for _, hostile, plain in FOLDED)


@pytest.mark.parametrize(("hostile", "plain"), CONFUSABLES)
def test_a_confusable_local_part_is_another_address(hostile: str, plain: str) -> None:
    assert email_key(f"ja{hostile}ne@example.com") == f"ja{hostile}ne@example.com"
    assert email_key(f"ja{hostile}ne@example.com") != email_key(f"ja{plain}ne@example.com")


@pytest.mark.parametrize(("hostile", "plain"), CONFUSABLES)
def test_a_confusable_domain_is_another_domain_or_none(hostile: str, plain: str) -> None:
    key = domain_key(f"ex{hostile}ample.test")
    assert key is None or key.startswith("xn--")
    assert key != domain_key(f"ex{plain}ample.test") == f"ex{plain}ample.test"
    assert email_key(f"jane@ex{hostile}ample.test") != f"jane@ex{plain}ample.test"


def test_ascii_case_still_matches() -> None:
    assert email_key("Omar.Haddad@Example.COM") == "omar.haddad@example.com"
    assert email_key("omar.haddad@example.com") == "omar.haddad@example.com"
    assert email_key_parts("Omar.Haddad@Example.COM") == ("omar.haddad", "example.com")
    assert username_key("JDoe") == username_key("jdoe") == "jdoe"


def test_a_domain_is_the_same_in_unicode_and_in_its_a_label() -> None:
    assert domain_key("Stra\u00dfe.example") == "xn--strae-oqa.example"
    assert domain_key("XN--STRAE-OQA.example") == "xn--strae-oqa.example"
    assert email_key("hans@stra\u00dfe.example") == "hans@xn--strae-oqa.example"
    assert email_key("hans@stra\u00dfe.example") != email_key("hans@strasse.example")


@pytest.mark.parametrize(
    "address",
    [
        "",
        "jane",
        "@example.com",
        "jane@",
        "jane@[127.0.0.1]",
        "jane@exa mple.com",
        "jane@a..b",
        "jane@B\u00dcCHER.example",  # upper-case non-ASCII: IDNA 2008 takes no mapping
        "jane@\ud800.example",
        "jane@" + "a" * 64 + ".example",
    ],
)
def test_addresses_without_a_key(address: str) -> None:
    assert email_key(address) is None
    assert email_key_parts(address) is None


def test_only_ascii_letters_change_case() -> None:
    assert ascii_lower("\u00c0BC\u212a\u0130z") == "\u00c0bc\u212a\u0130z"
    assert username_key("\u212aim") != username_key("kim")


def test_catalog_lookups_use_the_keys() -> None:
    kim = entity("kim", "kim@strasse.example", **{USERNAME_ANNOTATION: "kim"})
    catalog = Catalog([kim, entity("nokey", "nokey@\uff45xample.com")])
    assert catalog.users_by_email("KIM@Strasse.Example") == (kim,)
    assert catalog.users_by_email("kim@stra\u00dfe.example") == ()
    assert catalog.users_by_email("\u212aim@strasse.example") == ()
    assert catalog.users_by_email("nokey@\uff45xample.com") == ()  # no key: never matches
    assert catalog.user_by_name("KIM") is kim
    assert catalog.user_by_ref("User:Default/Kim") is kim
    assert catalog.user_by_name("\u212aim") is None
    assert catalog.user_by_ref("user:default/\u212aim") is None
    assert catalog.users_by_annotation(USERNAME_ANNOTATION, "KIM") == (kim,)
    assert catalog.users_by_annotation(USERNAME_ANNOTATION, "\u212aim") == ()


def write(path: Path, *documents: Any) -> Path:
    path.write_text(yaml.safe_dump_all(documents, allow_unicode=True), encoding="utf-8")
    return path


def user(name: str, *, email: str | None = None, **spec: Any) -> dict[str, Any]:
    metadata = {"name": name, "annotations": spec.pop("annotations", {})}
    profile = {"email": email} if email else {}
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": metadata,
        "spec": {"profile": profile, **spec},
    }


def test_loader_keeps_look_alike_usernames_apart_and_warns_about_keyless_emails(
    tmp_path: Path,
) -> None:
    catalog = load_catalog(
        write(
            tmp_path / "catalog.yaml",
            user("kim", annotations={USERNAME_ANNOTATION: "kim"}),
            user("kelvin", annotations={USERNAME_ANNOTATION: "\u212aim"}),
            user("wide", email="wide@\uff45xample.com"),
        )
    )
    assert [u.name for u in catalog.users_by_annotation(USERNAME_ANNOTATION, "kim")] == ["kim"]
    assert catalog.warnings == (
        'catalog.yaml: User "wide" (document 3): spec.profile.email '
        '"wide@\uff45xample.com" never matches: it has no domain that is a valid IDNA 2008 name',
    )


def test_loader_claims_still_fold_ascii_case(tmp_path: Path) -> None:
    path = write(
        tmp_path / "catalog.yaml",
        user("kim", annotations={USERNAME_ANNOTATION: "kim"}),
        user("other", annotations={USERNAME_ANNOTATION: "KIM"}),
    )
    with pytest.raises(CatalogError, match=r'annotation bitbucket\.org/username "KIM" is already'):
        load_catalog(path)


def test_loader_refuses_a_namespace_that_only_lower_cases_to_a_valid_one(tmp_path: Path) -> None:
    path = write(tmp_path / "catalog.yaml", user("kim", memberOf=["group:\u212aube/team"]))
    with pytest.raises(CatalogError, match="is not a valid namespace"):
        load_catalog(path)
