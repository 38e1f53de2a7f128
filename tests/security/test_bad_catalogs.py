"""Bad catalogs at the application level: at start-up the app refuses with one line naming
the file and the entity; while running it keeps the last good catalog and logs the problem.

The loader's own cases (messages, hypothesis) are in tests/unit/test_catalog.py; these run the
same kinds of breakage through ``create_app`` and a live, signed-in app.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import yaml
from flask import Flask

from bitbucket_signin import ConfigError
from bitbucket_signin.catalog import MAX_YAML_ALIASES
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.standalone import create_app

from ..support import (
    DATA,
    JANE,
    FakeClock,
    edit_catalog,
    home_page,
    replace_file,
    serve,
    sign_in,
)

ENTITY = "apiVersion: backstage.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n{rest}"
GOOD_EXTRA = {
    "extra.yaml": ENTITY.format(kind="Group", name="extra", rest="spec: {type: team}\n"),
    "extra.json": '{"items": []}',
}
JANE_ID = "bitbucket.org/user-id"
MAX_BYTES = 64 * 1024  # BITBUCKET_CATALOG_MAX_BYTES for these tests
ALIASES = "".join(
    ["spec:\n  teams: &teams [team-a]\n  memberOf:\n"] + ["  - *teams\n"] * (MAX_YAML_ALIASES + 1)
)


def user(name: str, annotations: str = "", api: str = "backstage.io/v1alpha1") -> str:
    rest = f"  annotations: {{{annotations}}}\nspec: {{}}\n" if annotations else "spec: {}\n"
    return ENTITY.format(kind="User", name=name, rest=rest).replace("backstage.io/v1alpha1", api)


def location(target: str) -> str:
    return ENTITY.format(kind="Location", name="more", rest=f"spec: {{target: {target}}}\n")


def write(path: Path, content: str | None) -> None:
    """Replace ``path`` by ``content``, by a folder (``"<dir>"``), by a file over
    ``MAX_BYTES`` (``"<huge>"``), or remove it (``None``)."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    if content == "<dir>":
        path.mkdir()
    elif content == "<huge>":
        path.write_bytes(b"#" * (MAX_BYTES + 1))
    elif content is not None:
        replace_file(path, content)


# case → (the file to break, its new content, what the message must name)
CASES: dict[str, tuple[str, str | None, list[str]]] = {
    "broken-yaml": ("extra.yaml", "kind: User\nmetadata: [oops\n", ["extra.yaml", "invalid YAML"]),
    "json-syntax": ("extra.json", '{"items": [{"kind": "User",', ["extra.json", "invalid JSON"]),
    "not-a-mapping": ("extra.yaml", "- just\n- a list\n", ["extra.yaml", "not a mapping"]),
    "wrong-kind": ("extra.yaml", ENTITY.format(kind="Usr", name="x", rest=""), ['"Usr"']),
    "wrong-api-version": (
        "extra.yaml",
        user("vera", api="backstage.io/v9"),
        ["vera", "apiVersion"],
    ),
    "invalid-name": ("extra.yaml", user("-bad-"), ['User "-bad-"', "not a valid name"]),
    "duplicate-entity": ("extra.yaml", user("jdoe"), ["duplicate entity user:default/jdoe"]),
    "claimed-twice": (
        "extra.yaml",
        user("impostor", f'{JANE_ID}: "{JANE}"'),
        ['User "impostor"', "already claimed", '"jdoe"'],
    ),
    "location-cycle": ("extra.yaml", location("catalog.yaml"), ["Location cycle"]),
    "location-outside": ("extra.yaml", location("../outside.yaml"), ["outside the catalog folder"]),
    "location-missing": ("extra.yaml", location("missing.yaml"), ["missing.yaml", "not found"]),
    "huge-file": ("extra.yaml", "<huge>", ["extra.yaml", f"larger than the limit of {MAX_BYTES}"]),
    "alias-bomb": (
        "extra.yaml",
        ENTITY.format(kind="User", name="bomb", rest=ALIASES),
        ["extra.yaml", "document 1", f"more than {MAX_YAML_ALIASES} aliases"],
    ),
    "deep-yaml": ("extra.yaml", "a: " + "[" * 5000 + "]" * 5000, ["extra.yaml", "nesting depth"]),
    "deep-json": ("extra.json", "[" * 10_000 + "]" * 10_000, ["extra.json", "recursion limit"]),
    "python-tag": (
        "extra.yaml",
        '!!python/object/apply:os.system ["touch {pwned}"]\n',
        ["extra.yaml", "python/object"],
    ),
    "replaced-by-folder": ("extra.yaml", "<dir>", ["extra.yaml", "is a directory"]),
    "removed": ("extra.yaml", None, ["extra.yaml", "not found"]),
}


@pytest.fixture
def catalog(tmp_path: Path) -> Callable[[str], Path]:
    """A catalog folder: the test catalog naming one more file through a Location."""
    folder = tmp_path / "catalog"
    folder.mkdir()
    (tmp_path / "outside.yaml").write_text(user("outsider"))

    def make(extra: str) -> Path:
        root = folder / "catalog.yaml"
        root.write_text(f"{(DATA / 'catalog.yaml').read_text()}\n---\n{location(extra)}")
        write(folder / extra, GOOD_EXTRA[extra])
        return root

    return make


def break_file(root: Path, case: str) -> Path:
    """Apply the case's breakage; returns the marker a constructed os.system would create."""
    name, content, _ = CASES[case]
    pwned = root.parent.parent / "pwned"
    write(root.parent / name, content.replace("{pwned}", str(pwned)) if content else content)
    return pwned


@pytest.mark.parametrize("case", CASES)
def test_start_up_refuses_naming_file_and_entity(
    app_config: dict[str, object], catalog: Callable[[str], Path], case: str
) -> None:
    root = catalog(CASES[case][0])
    pwned = break_file(root, case)
    config = {"BITBUCKET_CATALOG": str(root), "BITBUCKET_CATALOG_MAX_BYTES": MAX_BYTES}
    with pytest.raises(ConfigError) as raised:
        create_app({**app_config, **config})
    message = str(raised.value)
    assert message.startswith("BITBUCKET_CATALOG: ")
    assert "\n" not in message
    for fragment in CASES[case][2]:
        assert fragment in message
    assert not pwned.exists()


@pytest.mark.parametrize("case", [*CASES, "root-removed", "root-replaced-by-folder"])
def test_running_app_keeps_the_last_good_catalog(
    make_app: Callable[..., Flask],
    bitbucket: EmulatorServer,
    catalog: Callable[[str], Path],
    caplog: pytest.LogCaptureFixture,
    clock: FakeClock,
    case: str,
) -> None:
    """A signed-in person stays signed in, a new sign-in works, and the log says why."""
    extra = CASES[case][0] if case in CASES else "extra.yaml"
    root = catalog(extra)
    app = make_app(
        BITBUCKET_CATALOG=str(root), BITBUCKET_CLOCK=clock, BITBUCKET_CATALOG_MAX_BYTES=MAX_BYTES
    )
    with serve(app) as url, requests.Session() as http:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
        if case in CASES:
            pwned = break_file(root, case)
            expected = CASES[case][2]
        else:
            write(root, None if case == "root-removed" else "<dir>")
            pwned, expected = root.parent / "pwned", ["catalog.yaml"]
        clock.advance(1)  # past the check interval: the next request looks at the files
        assert "Signed in as Jane Doe" in home_page(http, url).text
        with requests.Session() as newcomer:
            assert sign_in(newcomer, url, bitbucket.url, JANE).status_code == 302
    failures = [r.getMessage() for r in caplog.records if "reload failed" in r.getMessage()]
    assert len(failures) == 1
    for fragment in expected:
        assert fragment in failures[0]
    assert not pwned.exists()


def test_a_reload_reads_again_an_identity_edited_in_place(
    make_app: Callable[..., Flask],
    bitbucket: EmulatorServer,
    tmp_path: Path,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reload does not read again the entities of a JSON catalog whose text did not change
    (``catalog/memo.py``). Jane's uuid edited by one character, the same length in the same
    place, is read again: her session ends and her account no longer signs in; restored,
    it does again. Each reload read her entity only."""
    caplog.set_level(logging.INFO)
    root = tmp_path / "catalog.json"
    entities = list(yaml.safe_load_all((DATA / "catalog.yaml").read_text()))
    replace_file(root, json.dumps({"items": entities}))
    app = make_app(BITBUCKET_CATALOG=str(root), BITBUCKET_CLOCK=clock)
    original = "768F8C62-7F2A-4914-BF33-3F412FC1D3A4"
    with serve(app) as url, requests.Session() as jane:
        assert sign_in(jane, url, bitbucket.url, JANE).status_code == 302
        edit_catalog(root, root.read_text().replace(original, original[:-1] + "5"), clock)
        assert home_page(jane, url).status_code == 302
        with requests.Session() as again:
            assert sign_in(again, url, bitbucket.url, JANE).status_code == 403
            edit_catalog(root, root.read_text().replace(original[:-1] + "5", original), clock)
            assert sign_in(again, url, bitbucket.url, JANE).status_code == 302
            assert "Signed in as Jane Doe" in home_page(again, url).text
    loads = [r.getMessage() for r in caplog.records if "catalog loaded" in r.getMessage()]
    unchanged = f"({len(entities) - 1} entities unchanged, not read again)"
    assert [load.endswith(unchanged) for load in loads] == [False, True, True]
