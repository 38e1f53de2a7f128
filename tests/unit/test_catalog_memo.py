"""Reloads that reuse what the previous load made of unchanged entities (``catalog/memo.py``)
give exactly what a fresh load of the same files gives, whatever the edit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitbucket_signin.catalog import CatalogStore, UserEntity, memo
from bitbucket_signin.catalog.loader import DEFAULT_MAX_BYTES, Loader
from bitbucket_signin.catalog.memo import FileMemo
from bitbucket_signin.catalog.store import BITBUCKET_RULES
from bitbucket_signin.errors import CatalogError

V1 = "backstage.io/v1alpha1"
TEAMS = 3


def uuid(number: int, variant: int) -> str:
    return f"{number:08x}-0000-4000-8000-{variant:012x}"


def person(number: int, variant: int = 0) -> dict[str, Any]:
    """User ``u<number>``; each variant differs in its uuid, name, email or groups."""
    annotations = {"bitbucket.org/user-id": uuid(number, variant % 2)}
    if variant % 5 == 4:
        annotations["bitbucket.org/userid"] = "a misspelt key: a warning at every load"
    return {
        "apiVersion": V1,
        "kind": "User",
        "metadata": {"name": f"u{number}", "annotations": annotations},
        "spec": {
            "profile": {"displayName": f"Person {number} v{variant}", "email": f"u{number}@x.io"},
            "memberOf": [f"team-{(number + variant) % TEAMS}"],
        },
    }


def team(number: int, variant: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "Group",
        "metadata": {"name": f"team-{number}"},
        "spec": {
            "type": "team",
            "members": [f"u{member}" for member in range(variant % 4)],
            "parent": f"team-{(number + 1) % TEAMS}" if variant % 2 else None,
        },
    }


def component(number: int, variant: int = 0) -> dict[str, Any]:
    return {"apiVersion": V1, "kind": "Component", "metadata": {"name": f"c{number}-{variant}"}}


MAKERS = (person, team, component)
STYLES = ({}, {"indent": 2}, {"separators": (",", ":")})


def write(path: Path, entities: list[dict[str, Any]], style: int = 0) -> None:
    items = {"items": entities} if style == 2 else entities
    path.write_text(json.dumps(items, **STYLES[style]))  # type: ignore[arg-type]


def load(path: Path, remembered: dict[Path, FileMemo] | None) -> tuple[Loader, Any]:
    """A load of ``path``; what it gave (users, groups, warnings) or the error."""
    loader = Loader(path, DEFAULT_MAX_BYTES, BITBUCKET_RULES, remembered=remembered)
    try:
        catalog = loader.load()
    except CatalogError as error:
        return loader, str(error)
    return loader, (catalog.users, catalog.groups, catalog.warnings)


def starting_entities() -> list[dict[str, Any]]:
    return [team(n) for n in range(TEAMS)] + [person(n) for n in range(12)] + [component(0)]


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["change", "insert", "delete", "move", "copy", "style"]),
        st.integers(0, 40),
        st.integers(0, 40),
        st.integers(0, 9),
    ),
    min_size=1,
    max_size=12,
)


def edited(entities: list[dict[str, Any]], edit: tuple[str, int, int, int]) -> list[dict[str, Any]]:
    """``entities`` after one edit (``copy`` makes a duplicate, which fails to load)."""
    action, first, second, variant = edit
    entities = list(entities)
    where = first % len(entities)
    if action == "change":
        kind = entities[where]["kind"]
        maker = {"User": person, "Group": team, "Component": component}[kind]
        number = int("".join(c for c in entities[where]["metadata"]["name"] if c.isdigit()) or 0)
        entities[where] = maker(number % 100, variant)
    elif action == "insert":
        entities.insert(where, MAKERS[second % 3](50 + second, variant))
    elif action == "delete" and len(entities) > 1:
        del entities[where]
    elif action == "move":
        entities.insert(second % len(entities), entities.pop(where))
    elif action == "copy":
        entities.insert(second % len(entities), entities[where])
    return entities


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=EDITS)
def test_a_reload_that_reuses_gives_what_a_fresh_load_gives(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, int, int, int]]
) -> None:
    """After each edit, a load with the memo of the last good load and a load without any
    give the same users, groups (each field, the file and document number included), warnings,
    or the same error; the memo of a failed load is not kept, as the store does."""
    path = tmp_path_factory.mktemp("memo") / "catalog.json"
    entities = starting_entities()
    write(path, entities)
    loader, _ = load(path, {})
    memos = loader.memos
    for edit in edits:
        entities = edited(entities, edit)
        write(path, entities, style=edit[3] % 3 if edit[0] == "style" else 0)
        remembering, result = load(path, memos)
        assert result == load(path, None)[1]
        if not isinstance(result, str):
            memos = remembering.memos


def test_an_edit_reads_again_only_the_entities_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    entities = starting_entities()
    write(path, entities)
    first, _ = load(path, {})
    assert first.reused == 0
    entities[5] = person(2, variant=3)  # a new display name and team for u2
    write(path, entities)
    second, (users, _, _) = load(path, first.memos)
    assert second.reused == len(entities) - 1
    assert next(u for u in users if u.name == "u2").display_name == "Person 2 v3"
    entities.insert(0, person(99))  # every entity after it moves
    write(path, entities)
    third, (users, _, _) = load(path, second.memos)
    # Read: the new entity, and the one after it, by which the memo learns where it is.
    assert third.reused == len(entities) - 2
    assert [u.document for u in users] == sorted(u.document for u in users)


def test_an_edit_that_keeps_the_length_is_read_again(tmp_path: Path) -> None:
    """One character of a uuid changed (the same length, the same place): the new uuid finds
    the person, the old one finds nobody."""
    path = tmp_path / "catalog.json"
    write(path, starting_entities())
    store = CatalogStore(path)
    store.load()
    old, new = uuid(3, 0), uuid(3, 0)[:-1] + "f"
    path.write_text(path.read_text().replace(old, new))
    assert store.reload()
    catalog = store.current()
    assert catalog.users_by_annotation("bitbucket.org/user-id", old) == ()
    found = catalog.users_by_annotation("bitbucket.org/user-id", new)
    assert [user.name for user in found] == ["u3"]


def test_a_warning_is_given_at_every_load(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    write(path, [*starting_entities(), person(40, variant=4)])
    first, (_, _, warnings) = load(path, {})
    second, (_, _, again) = load(path, first.memos)
    assert again == warnings
    assert any("bitbucket.org/userid" in warning for warning in again)
    assert second.reused == first.reused + len(starting_entities())


def test_a_broken_edit_keeps_the_memo_of_the_last_good_catalog(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    entities = starting_entities()
    write(path, entities)
    store = CatalogStore(path)
    store.load()
    write(path, [*entities, entities[4]])  # a duplicate: refused, the catalog stays
    assert not store.reload()
    entities[4] = person(1, variant=1)
    write(path, entities)
    assert store.reload()
    fresh = Loader(path, DEFAULT_MAX_BYTES, BITBUCKET_RULES).load()
    assert store.current().users == fresh.users


def test_users_of_a_reused_entity_are_new_objects(tmp_path: Path) -> None:
    """The memo keeps what validation gave, not the entities: linking one load's users
    (groups that list them) never changes another load's."""
    path = tmp_path / "catalog.json"
    entities = starting_entities()
    entities[0] = team(0, variant=3)  # lists u0, u1, u2
    write(path, entities)
    first, (users, _, _) = load(path, {})
    entities[0] = team(0)  # lists nobody
    write(path, entities)
    _, (again, _, _) = load(path, first.memos)
    member_of = {user.name: user.member_of for user in users}
    assert "group:default/team-0" in member_of["u1"]
    assert all(isinstance(user, UserEntity) for user in again)
    assert not {id(user) for user in users} & {id(user) for user in again}
    assert "group:default/team-0" not in next(u for u in again if u.name == "u1").member_of


def test_a_reused_duplicate_before_a_syntax_error_gives_the_syntax_error(tmp_path: Path) -> None:
    """A duplicate found in a reused entity is reported as one found in a parsed entity is:
    a syntax error further on in the file comes first, the thing to fix."""
    path = tmp_path / "catalog.json"
    entities = starting_entities()
    write(path, entities)
    first, _ = load(path, {})
    path.write_text(json.dumps([*entities, entities[4]])[:-1] + ", {broken}]")
    _, error = load(path, first.memos)
    assert error == load(path, None)[1]
    assert "invalid JSON" in error


def test_a_hostile_edit_cannot_make_the_memo_read_a_large_entity_over_and_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entity that moves back makes the memo expect the one after it again: repeated, a
    few bytes each time (a Component may repeat), it made the memo hash the text of a large
    entity of the previous load at each repetition, a load quadratic in the file's size.
    What the memo hashes stays within a few times the two files' sizes."""
    path = tmp_path / "catalog.json"
    repeated, other = component(0), component(1)
    large = person(1)
    large["spec"]["profile"]["displayName"] = "x" * 200_000
    path.write_text(json.dumps([repeated, large]))
    first, _ = load(path, {})
    previous = len(path.read_text())
    path.write_text(json.dumps([person(2)] + [repeated, other] * 2_000))
    hashed = []
    digest = memo._digest
    monkeypatch.setattr(memo, "_digest", lambda t, s, e: hashed.append(e - s) or digest(t, s, e))
    _, (users, _, _) = load(path, first.memos)
    assert [user.name for user in users] == ["u2"]
    assert sum(hashed) <= 2 * (previous + len(path.read_text()))
