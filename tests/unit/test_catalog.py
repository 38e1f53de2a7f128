"""The catalog loader, its lookups and the reloading store, with real files."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitbucket_signin.catalog import (
    DEFAULT_MAX_BYTES,
    MAX_YAML_ALIASES,
    Catalog,
    CatalogStore,
    UserEntity,
    load_catalog,
)
from bitbucket_signin.catalog import store as catalog_module
from bitbucket_signin.catalog.bitbucket import names_server_account
from bitbucket_signin.errors import CatalogError

from ..support import JANE, FakeClock, edit_catalog, replace_file

CATALOGS = Path(__file__).parent.parent / "catalogs"
V1 = "backstage.io/v1alpha1"


def user(name: Any = "jdoe", **extra: Any) -> dict[str, Any]:
    """A User document; ``annotations``, ``namespace`` go to metadata, the rest to spec."""
    metadata: dict[str, Any] = {"name": name}
    for key in ("annotations", "namespace"):
        if key in extra:
            metadata[key] = extra.pop(key)
    return {"apiVersion": V1, "kind": "User", "metadata": metadata, "spec": extra}


def group(name: str = "team-a", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "Group",
        "metadata": {"name": name},
        "spec": {"type": "team", **spec},
    }


def location(*targets: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "Location",
        "metadata": {"name": "loc"},
        "spec": {"targets": list(targets), **spec},
    }


def write(path: Path, *documents: Any) -> Path:
    """Write YAML documents (or one raw text) to ``path``; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if len(documents) == 1 and isinstance(documents[0], str):
        path.write_text(documents[0], encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


def catalog_error(path: Path) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    return str(info.value)


# --- loading the fixture catalogs -----------------------------------------------------------


@pytest.fixture(scope="module")
def basic() -> Catalog:
    return load_catalog(CATALOGS / "basic" / "catalog.yaml")


def test_basic_catalog_follows_locations_and_skips_other_kinds(basic: Catalog) -> None:
    folder = (CATALOGS / "basic").absolute()
    assert basic.files == (folder / "catalog.yaml", folder / "people.yaml", folder / "groups.yaml")
    assert [u.ref for u in basic.users] == [
        "user:default/jdoe",
        "user:default/bob.smith",
        "user:ops/carol",
    ]
    assert [g.ref for g in basic.groups] == ["group:default/team-a", "group:default/team-b"]
    assert basic.warnings == ()


def test_user_entity_fields(basic: Catalog) -> None:
    jane = basic.users[0]
    assert (jane.name, jane.namespace, jane.kind) == ("jdoe", "default", "User")
    assert jane.display_name == "Jane Doe"
    assert jane.email == "jane@example.com"
    assert jane.picture == "https://example.com/jane.png"
    assert jane.annotations["bitbucket.org/username"] == "jdoe"
    assert jane.member_of == ("group:default/team-a",)
    assert jane.source == (CATALOGS / "basic" / "people.yaml").absolute()
    bob = basic.users[1]
    assert bob.display_name == "bob.smith"  # no displayName: the name
    assert bob.picture is None
    team_b = basic.groups[1]
    assert (team_b.type, team_b.members) == ("team", ("user:default/bob.smith",))


def test_entities_are_frozen_and_hashable(basic: Catalog) -> None:
    jane = basic.users[0]
    with pytest.raises(AttributeError):
        jane.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        jane.annotations["x"] = "y"  # type: ignore[index]
    assert {jane, jane} == {jane}


def test_ownership_from_both_directions(basic: Catalog) -> None:
    jane, bob, carol = basic.users
    assert basic.ownership_refs(jane) == ("group:default/team-a", "user:default/jdoe")
    # bob is listed by team-b's spec.members; carol (namespace ops) names it in memberOf
    assert basic.ownership_refs(bob) == ("group:default/team-b", "user:default/bob.smith")
    assert basic.ownership_refs(carol) == ("group:default/team-b", "user:ops/carol")


def test_lookups(basic: Catalog) -> None:
    jane = basic.users[0]
    assert basic.user_by_ref("User:Default/JDoe") is jane
    assert basic.user_by_ref("user:default/nobody") is None
    assert basic.user_by_name("JDOE") is jane
    assert basic.user_by_name("carol") is None
    assert basic.user_by_name("carol", "ops") is basic.users[2]
    for uuid in (JANE, JANE.upper(), JANE.strip("{}"), f" {JANE} "):
        assert basic.users_by_annotation("bitbucket.org/user-id", uuid) == (jane,)
    assert basic.users_by_annotation("bitbucket.org/username", "JDoe") == (jane,)
    assert basic.users_by_annotation("bitbucket.org/account-id", "5c65cab48bcc9e016aeece31") == (
        jane,
    )
    assert basic.users_by_annotation("bitbucket.org/account-id", "5C65CAB48BCC9E016AEECE31") == ()
    assert basic.users_by_annotation("other", "x") == ()
    assert basic.users_by_email("JANE@example.COM") == (jane,)
    assert basic.users_by_email("bob@example.com") == (basic.users[1],)
    assert basic.users_by_email("nobody@example.com") == ()


def test_json_catalog_with_items_and_list(tmp_path: Path) -> None:
    catalog = load_catalog(CATALOGS / "json" / "catalog.json")
    (jane,) = catalog.users
    assert jane.ref == "user:default/jdoe"
    assert catalog.users_by_annotation("bitbucket.org/user-id", JANE) == (jane,)
    # a group that is not in the catalog never becomes an ownership ref, and is reported once
    assert catalog.ownership_refs(jane) == ("group:default/admins", "user:default/jdoe")
    assert catalog.warnings == (
        'people.json: User "jdoe" (document 1): group group:default/ghosts is not in the catalog',
    )


def test_json_single_entity(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(user()), encoding="utf-8")
    assert [u.name for u in load_catalog(path).users] == ["jdoe"]


def test_empty_documents_and_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "catalog.yaml", "---\n---\n" + yaml.safe_dump(user()) + "---\n")
    assert [u.name for u in load_catalog(path).users] == ["jdoe"]
    assert load_catalog(write(tmp_path / "empty.yaml", "")).users == ()


def test_missing_member_of_and_spec_are_accepted(tmp_path: Path) -> None:
    doc = user()
    del doc["spec"]
    (jane,) = load_catalog(write(tmp_path / "catalog.yaml", doc)).users
    assert jane.member_of == ()


def test_refs_forms_and_namespace_default(tmp_path: Path) -> None:
    path = write(
        tmp_path / "catalog.yaml",
        user("x", namespace="ns", memberOf=["a", "other/b", "group:c", "Group:Other/D", "a"]),
        group("team", members=["jdoe", "user:ns/x"]),
        *(
            {**group(name), "metadata": {"name": name, "namespace": namespace}}
            for namespace, name in [("ns", "a"), ("other", "b"), ("ns", "c"), ("other", "d")]
        ),
    )
    catalog = load_catalog(path)
    assert catalog.users[0].member_of == (
        "group:default/team",
        "group:ns/a",
        "group:ns/c",
        "group:other/b",
        "group:other/d",
    )
    assert catalog.groups[0].members == ("user:default/jdoe", "user:ns/x")
    assert catalog.warnings == (
        'catalog.yaml: Group "team" (document 2): member user:default/jdoe is not in the catalog',
    )


def test_diamond_locations_load_each_file_once(tmp_path: Path) -> None:
    write(tmp_path / "people.yaml", user())
    write(tmp_path / "a.yaml", location("people.yaml"))
    root = write(
        tmp_path / "catalog.yaml", location("a.yaml", "./people.yaml", "sub/../people.yaml")
    )
    catalog = load_catalog(root)
    assert len(catalog.users) == 1
    assert [p.name for p in catalog.files] == ["catalog.yaml", "a.yaml", "people.yaml"]


def test_location_in_subfolder_resolves_relative_to_its_file(tmp_path: Path) -> None:
    write(tmp_path / "org" / "people.yaml", user())
    write(tmp_path / "org" / "index.yaml", location("people.yaml"))
    root = write(tmp_path / "catalog.yaml", location(target="org/index.yaml"))
    assert len(load_catalog(root).users) == 1


# --- errors: each names the file and the entity ---------------------------------------------


def _bad_user(**changes: Any) -> dict[str, Any]:
    return user(**changes)


ENTITY_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    (
        "invalid name",
        user("j doe"),
        'User "j doe" (document 1): metadata.name "j doe" is not a valid name',
    ),
    ("long name", user("a" * 64), "is not a valid name"),
    ("name ends with dash", user("jdoe-"), 'metadata.name "jdoe-" is not a valid name'),
    (
        "missing name",
        {"apiVersion": V1, "kind": "User", "metadata": {}},
        "User (document 1): metadata.name is required",
    ),
    (
        "name not a string",
        user(12),
        "User (document 1): metadata.name must be a string, not an integer",
    ),
    (
        "bad namespace",
        user(namespace="Ops"),
        'User "jdoe" (document 1): metadata.namespace "Ops" is not a valid namespace',
    ),
    (
        "annotation not a string",
        user(annotations={"a": 1}),
        'User "jdoe" (document 1): metadata.annotations "a" must map a string',
    ),
    (
        "annotations not a mapping",
        user(annotations=["a"]),
        "metadata.annotations must be a mapping, not a list",
    ),
    (
        "user-id not a uuid",
        user(annotations={"bitbucket.org/user-id": "jdoe"}),
        'User "jdoe" (document 1): annotation bitbucket.org/user-id "jdoe" is not a uuid',
    ),
    (
        "memberOf a user",
        user(memberOf=["user:x"]),
        'User "jdoe" (document 1): spec.memberOf entry "user:x" must refer to a group',
    ),
    ("memberOf not a list", user(memberOf="team-a"), "spec.memberOf must be a list, not a string"),
    (
        "memberOf bad name",
        user(memberOf=["team a"]),
        'spec.memberOf entry "team a": name "team a" is not a valid name',
    ),
    ("memberOf bad namespace", user(memberOf=["a_b/team"]), "is not a valid namespace"),
    (
        "memberOf not strings",
        user(memberOf=[{"a": 1}]),
        "spec.memberOf entries must be strings, not a mapping",
    ),
    (
        "profile not a mapping",
        user(profile="Jane"),
        'User "jdoe" (document 1): spec.profile must be a mapping, not a string',
    ),
    (
        "email not a string",
        user(profile={"email": ["a@b"]}),
        "spec.profile.email must be a string, not a list",
    ),
    (
        "members a group",
        group(members=["group:x"]),
        'Group "team-a" (document 1): spec.members entry "group:x" must refer to a user',
    ),
    (
        "group without type",
        {"apiVersion": V1, "kind": "Group", "metadata": {"name": "g"}, "spec": {}},
        'Group "g" (document 1): spec.type is required',
    ),
    (
        "group without spec",
        {"apiVersion": V1, "kind": "Group", "metadata": {"name": "g"}},
        'Group "g" (document 1): spec must be a mapping, not null',
    ),
    (
        "unknown kind",
        {"apiVersion": V1, "kind": "Robot", "metadata": {"name": "r2"}},
        'Robot "r2" (document 1): unknown kind "Robot"',
    ),
    (
        "bad apiVersion",
        {**user(), "apiVersion": "backstage.io/v2"},
        'User "jdoe" (document 1): apiVersion "backstage.io/v2" is not one of',
    ),
    (
        "no kind",
        {"apiVersion": V1, "metadata": {"name": "x"}},
        "document 1: kind is missing or not a string",
    ),
    ("not a mapping", ["a", "b"], "document 1: is not a mapping but a list"),
    (
        "metadata not a mapping",
        {"apiVersion": V1, "kind": "User", "metadata": "jdoe"},
        "User (document 1): metadata must be a mapping, not a string",
    ),
    (
        "url location",
        location("https://example.com/catalog.yaml"),
        'target "https://example.com/catalog.yaml": only file targets are supported',
    ),
    (
        "url type",
        location("x.yaml", type="url"),
        'Location "loc" (document 1): spec.type "url": only file targets are supported',
    ),
    (
        "no targets",
        location(),
        'Location "loc" (document 1): spec.target or spec.targets is required',
    ),
    (
        "target not a string",
        location(target=3),
        'Location "loc" (document 1): Location target "3" must be a file path',
    ),
    (
        "targets not a list",
        {**location(), "spec": {"targets": "a.yaml"}},
        "spec.targets must be a list, not a string",
    ),
]


@pytest.mark.parametrize(
    ("document", "expected"),
    [case[1:] for case in ENTITY_ERRORS],
    ids=[case[0] for case in ENTITY_ERRORS],
)
def test_entity_errors_name_file_and_entity(
    tmp_path: Path, document: dict[str, Any], expected: str
) -> None:
    path = write(tmp_path / "people.yaml", document)
    message = catalog_error(path)
    assert message.startswith("people.yaml: ")
    assert expected in message


def test_error_names_the_document_number(tmp_path: Path) -> None:
    path = write(tmp_path / "people.yaml", user("a"), user("b"), user("c d"))
    assert catalog_error(path).startswith(
        'people.yaml: User "c d" (document 3): metadata.name "c d"'
    )


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path / "teams" / "groups.yaml", group("bad group"))
    root = write(tmp_path / "catalog.yaml", location("teams/groups.yaml"))
    assert catalog_error(root).startswith('teams/groups.yaml: Group "bad group" (document 1):')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2", "catalog.yaml: invalid YAML: "),
        (
            "!!python/object/apply:os.system ['echo pwned']",
            "catalog.yaml: invalid YAML: could not determine a constructor",
        ),
        (
            "kind: User\nmetadata: !!python/object:builtins.dict {}\n",
            "catalog.yaml: invalid YAML: ",
        ),
        ("a: 2001-13-45", "catalog.yaml: invalid YAML: "),
        ("[" * 5000 + "]" * 5000, "catalog.yaml: invalid YAML: "),
        ("just a string", "catalog.yaml: document 1: is not a mapping but a string"),
    ],
)
def test_yaml_syntax_and_unsafe_tags_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    assert catalog_error(write(tmp_path / "catalog.yaml", text)).startswith(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"kind": ', "catalog.json: invalid JSON: "),
        ("[" * 100000, "catalog.json: invalid JSON: "),
        ('{"items": {"kind": "User"}}', 'catalog.json: "items" must be a list of entities'),
        ("[1]", "catalog.json: document 1: is not a mapping but an integer"),
    ],
)
def test_json_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(text, encoding="utf-8")
    assert catalog_error(path).startswith(expected)


@pytest.mark.parametrize(
    "entity",
    [
        "kind: User\napiVersion: *a9",
        "kind: Location\napiVersion: backstage.io/v1alpha1\nmetadata: {name: x}\n"
        "spec: {targets: [*a9]}",
    ],
)
def test_alias_bomb_does_not_explode(tmp_path: Path, entity: str) -> None:
    """Ten levels of ten aliases: 10**10 strings if anything expanded them."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    message = catalog_error(write(tmp_path / "catalog.yaml", "\n".join([*lines, entity])))
    assert message.startswith("catalog.yaml: ")
    assert len(message) < 300


def aliases_of_a_list(count: int) -> str:
    """A User document whose ``spec.memberOf`` lists ``count`` aliases of one list."""
    return "\n".join(
        [f"apiVersion: {V1}", "kind: User", "metadata: {name: jdoe}", "spec:"]
        + ["  teams: &teams [team-a, team-b]", "  memberOf:"]
        + ["    - *teams"] * count
    )


def test_aliases_of_mappings_and_lists_are_limited_per_document(tmp_path: Path) -> None:
    """Each alias of a list makes the loader read that list again: 100 per document at most."""
    text = aliases_of_a_list(MAX_YAML_ALIASES + 1)
    assert catalog_error(
        write(tmp_path / "catalog.yaml", f"---\n{yaml.safe_dump(user('a'))}---\n{text}")
    ) == (
        f"catalog.yaml: document 2: more than {MAX_YAML_ALIASES} aliases of a mapping or list, "
        "the limit"
    )
    # at the limit the document is read (and refused for what the aliases hold, not for them)
    message = catalog_error(write(tmp_path / "at-limit.yaml", aliases_of_a_list(MAX_YAML_ALIASES)))
    assert "spec.memberOf entries must be strings, not a list" in message
    # aliases of scalars cannot grow anything; documents have their own count
    scalars = "\n".join(["a: &a x", *(f"b{i}: *a" for i in range(500)), "kind: API"])
    lists = aliases_of_a_list(60).replace("memberOf", "other")
    again = lists.replace("name: jdoe", "name: jane")
    path = write(tmp_path / "fine.yaml", "\n---\n".join([scalars, lists, again]))
    assert [u.name for u in load_catalog(path).users] == ["jdoe", "jane"]


def test_entity_count_is_limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bitbucket_signin.catalog.loader.MAX_ENTITIES", 3)
    write(tmp_path / "people.yaml", user("b"), user("c"))
    root = write(tmp_path / "catalog.yaml", user("a"), location("people.yaml"))
    assert catalog_error(root) == "people.yaml: more than 3 entities, the limit"
    write(tmp_path / "people.yaml", user("b"), None)  # empty documents do not count
    assert len(load_catalog(root).users) == 2


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("deep.yaml", "a: " + "[" * 2000 + "]" * 2000, "exceeded maximum nesting depth"),
        ("deep.json", "[" * 5000 + "]" * 5000, "nested deeper than Python's recursion limit"),
        ("items.json", '{"items": ' + "[" * 5000 + "]" * 5000 + "}", "recursion limit"),
    ],
)
def test_deep_nesting_is_refused_by_the_parsers(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    message = catalog_error(path)
    assert message.startswith(f"{name}: invalid ")
    assert expected in message
    assert "\n" not in message


def test_no_size_wall_below_the_limit(tmp_path: Path) -> None:
    """The old 20 MiB wall is gone: the default limit (BITBUCKET_CATALOG_MAX_BYTES) is 256 MiB."""
    assert DEFAULT_MAX_BYTES == 256 * 1024 * 1024
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps([user()]) + " " * (21 * 1024 * 1024), encoding="utf-8")
    assert [u.name for u in load_catalog(path).users] == ["jdoe"]


_spaces = st.sampled_from(["", " ", "\n", "\t", " \r\n  "])


@settings(max_examples=300, deadline=None)
@given(
    count=st.integers(0, 4),
    spaces=st.lists(_spaces, min_size=8, max_size=8),
    wrap=st.sampled_from(["list", "items", "items-then-key", "items-then-kind", "key-then-items"]),
    damage=st.none() | st.tuples(st.integers(0, 10_000), st.sampled_from(["", ",", "]", "}", "x"])),
)
def test_json_lists_read_one_entity_at_a_time_mean_what_json_loads_means(
    count: int, spaces: list[str], wrap: str, damage: tuple[int, str] | None
) -> None:
    """The JSON list (or ``{"items": [...]}``) read entity by entity gives what the whole
    decoded file gives, and the decoder's own message when it is not JSON."""
    a, b, c, d, e, f, g, h = spaces
    entities = f"{b},{c}".join(json.dumps(user(f"u{i}")) for i in range(count))
    listed = f"[{a}{entities}{d}]"
    text = {
        "list": f"{e}{listed}{f}",
        "items": f'{e}{{{f}"items"{g}:{h}{listed}{a}}}{b}',
        "items-then-key": f'{{"items":{listed},{c}"metadata":{d}{{}}}}',
        "items-then-kind": f'{{"items":{listed},"kind":"List"}}',
        "key-then-items": f'{{"metadata": {{}},{e}"items": {listed}}}',
    }[wrap]
    if damage is not None:
        at = damage[0] % (len(text) + 1)
        text = text[:at] + damage[1] + text[at + 1 :]
    with tempfile.TemporaryDirectory() as folder:
        result = load_or_error(write(Path(folder) / "catalog.json", text))
        expected = decoded_at_once(text, Path(folder))
    if isinstance(expected, Catalog):
        assert isinstance(result, Catalog)
        assert [u.name for u in result.users] == [u.name for u in expected.users]
    else:
        assert str(result) == expected


def decoded_at_once(text: str, folder: Path) -> Catalog | str:
    """What the JSON ``text`` means when nothing of it is read entity by entity."""
    try:
        data = json.loads(text)
    except ValueError as error:
        return f"catalog.json: invalid JSON: {' '.join(str(error).split())}"
    if re.match(r'\s*\{\s*"items"\s*:\s*\[', text) and "kind" in data:
        return (
            'catalog.json: "items" and "kind" at the top level: write one entity, '
            'a list of entities, or {"items": [...]}'
        )
    # the same content with no list first
    whole = {"x": 0, "items": data} if isinstance(data, list) else data
    if isinstance(whole, dict):
        whole = {"x": 0, **whole}
    catalog = load_or_error(write(folder / "whole.json", json.dumps(whole)))
    return catalog if isinstance(catalog, Catalog) else str(catalog).replace("whole", "catalog")


def test_non_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_bytes(b"kind: User\nname: \xff\xfe\n")
    assert catalog_error(path) == "catalog.yaml: is not UTF-8 (byte 17)"


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "catalog.yaml", user())
    with pytest.raises(
        CatalogError, match=r"^catalog\.yaml: is larger than the limit of 10 bytes$"
    ):
        load_catalog(path, max_bytes=10)
    assert load_catalog(path, max_bytes=path.stat().st_size).users


def test_duplicate_entity_across_files_names_both(tmp_path: Path) -> None:
    write(tmp_path / "people.yaml", user("JDoe"))
    root = write(tmp_path / "catalog.yaml", user("jdoe"), location("people.yaml"))
    assert catalog_error(root) == (
        'people.yaml: User "JDoe" (document 1): duplicate entity user:default/jdoe, '
        'already defined in catalog.yaml: User "jdoe" (document 1)'
    )


@pytest.mark.parametrize(
    ("key", "first", "second"),
    [
        ("bitbucket.org/user-id", JANE, JANE.upper().strip("{}")),
        ("bitbucket.org/username", "jdoe", "JDoe"),
        ("bitbucket.org/account-id", "5c65cab48bcc9e016aeece31", "5c65cab48bcc9e016aeece31"),
    ],
)
def test_two_users_claiming_one_account_names_both(
    tmp_path: Path, key: str, first: str, second: str
) -> None:
    path = write(
        tmp_path / "people.yaml",
        user("a", annotations={key: first}),
        user("b", annotations={key: second}),
    )
    message = catalog_error(path)
    assert message.startswith(f'people.yaml: User "b" (document 2): annotation {key} ')
    assert message.endswith('is already claimed by people.yaml: User "a" (document 1)')


def test_other_annotations_may_repeat(tmp_path: Path) -> None:
    path = write(
        tmp_path / "people.yaml",
        user("a", annotations={"x": "1"}),
        user("b", annotations={"x": "1"}),
    )
    assert len(load_catalog(path).users_by_annotation("x", "1")) == 2


def test_location_cycle_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", location("a.yaml"))
    write(tmp_path / "a.yaml", location("b.yaml"))
    root = write(tmp_path / "catalog.yaml", location("a.yaml"))
    assert catalog_error(root) == "b.yaml: Location cycle: catalog.yaml → a.yaml → b.yaml → a.yaml"


def test_location_pointing_at_itself(tmp_path: Path) -> None:
    root = write(tmp_path / "catalog.yaml", location("./catalog.yaml"))
    assert catalog_error(root) == "catalog.yaml: Location cycle: catalog.yaml → catalog.yaml"


def test_missing_target_file(tmp_path: Path) -> None:
    root = write(tmp_path / "catalog.yaml", location("people.yaml"))
    assert catalog_error(root) == "people.yaml: file not found"


def test_missing_root_file(tmp_path: Path) -> None:
    assert catalog_error(tmp_path / "nothing.yaml") == "nothing.yaml: file not found"


def test_directory_target(tmp_path: Path) -> None:
    (tmp_path / "people").mkdir()
    root = write(tmp_path / "catalog.yaml", location("people"))
    assert catalog_error(root) == "people: is a directory, not a catalog file"


@pytest.mark.parametrize(
    "target", ["../outside.yaml", "sub/../../outside.yaml", "file:../outside.yaml"]
)
def test_target_outside_the_catalog_folder(tmp_path: Path, target: str) -> None:
    write(tmp_path / "outside.yaml", user())
    root = write(tmp_path / "cat" / "catalog.yaml", location(target))
    message = catalog_error(root)
    assert message.startswith(
        f'catalog.yaml: Location "loc" (document 1): target "{target}" is outside'
    )


def test_symlink_out_of_the_catalog_folder(tmp_path: Path) -> None:
    write(tmp_path / "secret.yaml", user())
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "people.yaml").symlink_to(tmp_path / "secret.yaml")
    root = write(tmp_path / "cat" / "catalog.yaml", location("people.yaml"))
    assert "is outside the catalog folder" in catalog_error(root)


def test_symlinked_root_folder_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "real" / "people.yaml", user())
    write(tmp_path / "real" / "catalog.yaml", location("people.yaml"))
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert len(load_catalog(tmp_path / "link" / "catalog.yaml").users) == 1


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    root = write(tmp_path / "catalog.yaml", location("a.yaml"))
    assert catalog_error(root).startswith(
        'catalog.yaml: Location "loc" (document 1): cannot resolve'
    )


def test_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    root = write(tmp_path / "catalog.yaml", location("pipe.yaml"))
    assert catalog_error(root) == "pipe.yaml: is not a regular file"


# --- the loader never raises anything but CatalogError --------------------------------------

_words = st.sampled_from(
    [
        "User", "Group", "Location", "Component", V1, "backstage.io/v1beta1", "jdoe", "team-a",
        "group:team-a", "user:jdoe", "default/x", JANE, "people.yaml", "catalog.yaml",
        "file:people.yaml", "../x.yaml", "http://x", "a@b.c", "", "-", "\x00",
    ]
)  # fmt: skip
_keys = st.sampled_from(
    [
        "apiVersion", "kind", "metadata", "spec", "name", "namespace", "annotations", "profile",
        "memberOf", "members", "email", "displayName", "picture", "type", "target", "targets",
        "items", "bitbucket.org/user-id", "bitbucket.org/username", "bitbucket.org/account-id",
    ]
)  # fmt: skip
_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | _words
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_keys | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=25,
)
_entities = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from([V1, "backstage.io/v1beta1"]),
        "kind": st.sampled_from(["User", "Group", "Location"]),
        "metadata": st.fixed_dictionaries(
            {"name": _words | _scalars}, optional={"annotations": _values, "namespace": _words}
        ),
    },
    optional={"spec": st.dictionaries(_keys, _values, max_size=5)},
)


def load_or_error(path: Path) -> Catalog | CatalogError:
    """The catalog, or the CatalogError; any other exception fails the test."""
    try:
        return load_catalog(path)
    except CatalogError as error:
        return error


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(documents=st.lists(_entities | _values, max_size=4), as_json=st.booleans())
def test_random_documents_load_or_raise_catalog_error(
    tmp_path: Path, documents: list[Any], as_json: bool
) -> None:
    write(tmp_path / "people.yaml", user("someone"))
    path = tmp_path / ("catalog.json" if as_json else "catalog.yaml")
    text = json.dumps(documents) if as_json else yaml.safe_dump_all(documents)
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = load_or_error(path)
    if isinstance(result, CatalogError):
        assert str(result).startswith(("catalog.", "people.yaml", "x.yaml"))
    else:
        assert all(isinstance(u, UserEntity) for u in result.users)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
    suffix=st.sampled_from([".yaml", ".json", ""]),
)
def test_junk_bytes_load_or_raise_catalog_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"catalog{suffix}"
    path.write_bytes(data)
    result = load_or_error(path)
    assert isinstance(result, Catalog) or str(result).startswith(path.name)


# --- the store ------------------------------------------------------------------------------


CHECK_INTERVAL = 5  # seconds of the store's clock between looks at the files


def edit(path: Path, text: str, clock: FakeClock) -> None:
    """Rewrite one of the store's files and move its clock past the check interval."""
    edit_catalog(path, text, clock, check_interval=CHECK_INTERVAL)


@pytest.fixture
def people(tmp_path: Path) -> Path:
    write(tmp_path / "people.yaml", user("jdoe"))
    write(tmp_path / "catalog.yaml", location("people.yaml"))
    return tmp_path / "people.yaml"


@pytest.fixture
def store(people: Path) -> tuple[CatalogStore, FakeClock]:
    clock = FakeClock()
    store = CatalogStore(people.parent / "catalog.yaml", check_interval=CHECK_INTERVAL, clock=clock)
    store.load()
    return store, clock


def names(catalog: Catalog) -> list[str]:
    return [u.name for u in catalog.users]


def test_store_reloads_after_the_interval(
    store: tuple[CatalogStore, FakeClock], people: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog_store, clock = store
    first = catalog_store.current()
    assert names(first) == ["jdoe"]
    replace_file(people, yaml.safe_dump_all([user("jdoe"), user("bob")]))
    clock.advance(CHECK_INTERVAL - 1)
    assert catalog_store.current() is first
    clock.advance(1)
    with caplog.at_level(logging.INFO, logger="bitbucket_signin.catalog"):
        assert names(catalog_store.current()) == ["jdoe", "bob"]
    assert "catalog loaded from" in caplog.text
    assert catalog_store.current() is catalog_store.current()


def test_store_does_not_reload_unchanged_files(store: tuple[CatalogStore, FakeClock]) -> None:
    catalog_store, clock = store
    first = catalog_store.current()
    clock.advance(60)
    assert catalog_store.current() is first


def test_store_keeps_the_last_good_catalog_and_logs_once(
    store: tuple[CatalogStore, FakeClock], people: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog_store, clock = store
    good = catalog_store.current()
    replace_file(people, yaml.safe_dump(user("j doe")))
    for _ in range(3):
        clock.advance(10)
        assert catalog_store.current() is good
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert 'people.yaml: User "j doe" (document 1)' in errors[0].getMessage()
    edit(people, yaml.safe_dump(user("j  doe")), clock)  # another broken edit: logged again
    assert catalog_store.current() is good
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2
    edit(people, yaml.safe_dump(user("fixed")), clock)
    assert names(catalog_store.current()) == ["fixed"]


def test_store_refuses_a_reload_that_loses_every_user(
    store: tuple[CatalogStore, FakeClock], people: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog_store, clock = store
    good = catalog_store.current()
    edit(people, "", clock)  # truncated by a writer that has not written yet
    assert catalog_store.current() is good
    assert "catalog.yaml: the catalog now has no users" in caplog.text
    edit(people, yaml.safe_dump(user("back")), clock)
    assert names(catalog_store.current()) == ["back"]


def test_a_store_watched_from_elsewhere_reloads_only_when_told(
    store: tuple[CatalogStore, FakeClock], people: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``watching`` off (gunicorn's master watches for the workers), ``current`` never
    looks at the files; ``changed`` and ``reload`` do, and a broken edit keeps the last good
    catalog there too."""
    catalog_store, clock = store
    catalog_store.watching = False
    good = catalog_store.current()
    assert not catalog_store.changed()
    replace_file(people, yaml.safe_dump(user("j doe")))
    clock.advance(60)
    assert catalog_store.current() is good
    assert catalog_store.changed()
    assert catalog_store.reload() is False
    assert catalog_store.current() is good
    assert 'people.yaml: User "j doe" (document 1)' in caplog.text
    assert not catalog_store.changed()  # that edit was read: nothing new to look at
    replace_file(people, "")
    assert catalog_store.reload() is False  # no users left: refused
    replace_file(people, yaml.safe_dump(user("later")))
    assert catalog_store.changed()
    assert catalog_store.reload() is True
    assert names(catalog_store.current()) == ["later"]
    assert not catalog_store.changed()


@pytest.mark.parametrize("change", ["delete", "directory"])
def test_store_survives_a_vanished_file(
    store: tuple[CatalogStore, FakeClock],
    people: Path,
    caplog: pytest.LogCaptureFixture,
    change: str,
) -> None:
    catalog_store, clock = store
    good = catalog_store.current()
    people.unlink()
    if change == "directory":
        people.mkdir()
    clock.advance(10)
    assert catalog_store.current() is good
    assert "people.yaml: " in caplog.text
    people.rmdir() if change == "directory" else None
    write(people, user("back"))
    clock.advance(10)
    assert names(catalog_store.current()) == ["back"]


def test_store_watches_newly_included_files(
    store: tuple[CatalogStore, FakeClock], people: Path
) -> None:
    catalog_store, clock = store
    root = people.parent / "catalog.yaml"
    write(people.parent / "more.yaml", user("bob"))
    edit(root, yaml.safe_dump(location("people.yaml", "more.yaml")), clock)
    assert names(catalog_store.current()) == ["jdoe", "bob"]
    edit(people.parent / "more.yaml", yaml.safe_dump(user("carol")), clock)
    assert names(catalog_store.current()) == ["jdoe", "carol"]


def test_store_load_fails_at_start_up(tmp_path: Path) -> None:
    store = CatalogStore(write(tmp_path / "catalog.yaml", user("j doe")))
    with pytest.raises(CatalogError, match=r"^catalog\.yaml: "):
        store.load()
    with pytest.raises(RuntimeError, match="load"):
        store.current()


def test_store_does_not_wait_for_a_reload_in_progress(
    store: tuple[CatalogStore, FakeClock], people: Path
) -> None:
    catalog_store, clock = store
    first = catalog_store.current()
    edit(people, yaml.safe_dump(user("bob")), clock)
    with catalog_store._lock:  # another thread is reloading
        assert catalog_store.current() is first
    assert names(catalog_store.current()) == ["bob"]


def test_store_reloads_once_under_concurrency(
    store: tuple[CatalogStore, FakeClock], people: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog_store, clock = store
    before = catalog_store.current()
    edit(people, yaml.safe_dump(user("bob")), clock)
    seen: list[Catalog] = []

    def run() -> None:
        seen.extend(catalog_store.current() for _ in range(50))

    with caplog.at_level(logging.INFO, logger="bitbucket_signin.catalog"):
        threads = [threading.Thread(target=run) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len([r for r in caplog.records if "catalog loaded" in r.getMessage()]) == 1
    after = catalog_store.current()
    assert names(after) == ["bob"]
    assert {id(catalog) for catalog in seen} <= {id(before), id(after)}


def slow_store(people: Path) -> tuple[CatalogStore, FakeClock, Catalog]:
    """A store whose every reload runs in the background, its first catalog, and a change."""
    clock = FakeClock()
    catalog_store = CatalogStore(
        people.parent / "catalog.yaml",
        check_interval=CHECK_INTERVAL,
        clock=clock,
        inline_reload_limit=0,
    )
    good = catalog_store.load()
    edit(people, yaml.safe_dump(user("later")), clock)
    return catalog_store, clock, good


def test_store_reloads_a_slow_catalog_in_the_background(
    people: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No call waits for a slow reload: while it runs, every call (the one that started it
    too) gets the previous catalog, and ``wait_for_reload`` returns once the new one is in."""
    catalog_store, clock, good = slow_store(people)
    loading, finish = threading.Event(), threading.Event()
    load = catalog_module.Loader.load

    def slow_load(loader: Any) -> Catalog:
        loading.set()
        finish.wait(30)
        return load(loader)

    monkeypatch.setattr(catalog_module.Loader, "load", slow_load)
    assert catalog_store.current() is good
    assert loading.wait(30)
    clock.advance(10)
    assert all(catalog_store.current() is good for _ in range(3))
    assert not catalog_store.wait_for_reload(timeout=0)
    finish.set()
    assert catalog_store.wait_for_reload(timeout=30)
    assert names(catalog_store.current()) == ["later"]


class FinishesAtOnce(threading.Thread):
    """A reload thread that wins every race: its reload is done before ``start()`` returns."""

    def start(self) -> None:
        self.run()


def test_the_call_that_starts_a_background_reload_gets_the_previous_catalog(
    people: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whenever the background reload ends, the call that started it answers the same."""
    catalog_store, _, good = slow_store(people)
    monkeypatch.setattr(catalog_module, "threading", SimpleNamespace(Thread=FinishesAtOnce))
    assert catalog_store.current() is good
    assert catalog_store.wait_for_reload(timeout=0)
    assert names(catalog_store.current()) == ["later"]


@pytest.mark.parametrize("problem", ["syntax", "duplicate", "entity"])
def test_a_failed_load_leaves_no_garbage_cycle(tmp_path: Path, problem: str) -> None:
    """What a failed load built goes when it fails, without the garbage collector: gunicorn's
    master freezes what exists after a reload (``prefork.py``), and keeps it for good."""
    people = [user(f"u{number}") for number in range(50)]
    broken = {
        "syntax": [json.dumps(people)[:-1] + ", {]"],
        "duplicate": [*people, people[0]],
        "entity": [*people, 7],
    }
    path = write(
        tmp_path / f"catalog.{'json' if problem == 'syntax' else 'yaml'}", *broken[problem]
    )
    gc.collect()
    gc.disable()
    try:
        with pytest.raises(CatalogError):
            load_catalog(path)
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize(
    ("key", "names"),
    [
        ("git.example.com/user-id", True),
        ("localhost/user-slug", True),
        ("bitbucket.org/user-id", False),  # Cloud's uuid
        ("BitBucket.org/user-slug", False),
        ("user-id", False),
        ("git.example.com/username", False),
    ],
)
def test_which_annotations_name_a_data_center_account(key: str, names: bool) -> None:
    assert names_server_account(key) is names
