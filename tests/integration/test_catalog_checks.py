"""Catalog gaps found and said once: dangling refs, an empty catalog, misspelt annotation keys,
and the catalog named by a Backstage app-config's ``catalog.locations``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask

from bitbucket_signin.catalog import load_catalog
from bitbucket_signin.catalog.check import check_catalog
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.errors import ConfigError
from bitbucket_signin.standalone import create_app

from ..support import JANE, home_page, serve, sign_in

ROOT = Path(__file__).parent.parent.parent
V1 = "backstage.io/v1alpha1"
JANE_ENTITY = {
    "apiVersion": V1,
    "kind": "User",
    "metadata": {"name": "jdoe", "annotations": {"bitbucket.org/user-id": JANE}},
    "spec": {"memberOf": ["platform", "ghosts"]},
}
PLATFORM = {
    "apiVersion": V1,
    "kind": "Group",
    "metadata": {"name": "platform"},
    "spec": {"type": "team"},
}
GHOSTS = 'catalog.yaml: User "jdoe" (document 1): group group:default/ghosts is not in the catalog'


def write(path: Path, *documents: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    return path


def test_a_dangling_group_is_never_owned_and_is_reported_once(
    make_app: Callable[..., Flask],
    tmp_path: Path,
    http: requests.Session,
    bitbucket: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = write(tmp_path / "catalog.yaml", JANE_ENTITY, PLATFORM)
    caplog.set_level(logging.WARNING, logger="bitbucket_signin.catalog")
    app = make_app(BITBUCKET_CATALOG=str(path))
    assert [r.getMessage() for r in caplog.records] == [f"catalog: {GHOSTS}"]
    with serve(app) as url:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
        page = home_page(http, url).text
    assert "group:default/platform" in page
    assert "ghosts" not in page


def test_check_says_a_warning_once(app_config: dict[str, Any], tmp_path: Path) -> None:
    """The app's start-up would log the warning too: ``check`` reports it, once, on stdout."""
    path = write(tmp_path / "catalog.yaml", JANE_ENTITY, PLATFORM)
    env = {f"FLASK_{key}": str(value) for key, value in app_config.items()}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "bitbucket-signin", "check"],
        cwd=ROOT,
        env={**os.environ, **env, "FLASK_BITBUCKET_CATALOG": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"warning: {GHOSTS}",
        "1 users, 1 groups in 1 file(s): 0 errors, 1 warnings",
    ]
    assert result.stderr == ""


@pytest.mark.parametrize(
    "text", ["", "---\n", f"apiVersion: {V1}\nkind: Component\nmetadata: {{name: x}}\n"]
)
def test_an_empty_catalog_is_refused_at_start_up(
    app_config: dict[str, Any], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        create_app({**app_config, "BITBUCKET_CATALOG": str(path)})
    assert (
        str(raised.value) == "BITBUCKET_CATALOG: empty.yaml: no User entities: nobody could sign in"
    )


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("bitbucket.org/userid", "did you mean bitbucket.org/user-id?"),
        ("bitbucket.org/accountId", "did you mean bitbucket.org/account-id?"),
        ("Bitbucket.org/username", "did you mean bitbucket.org/username?"),
        (
            "bitbucket.org/project-slug",
            "known: bitbucket.org/user-id, bitbucket.org/account-id, bitbucket.org/username",
        ),
    ],
)
def test_an_unknown_bitbucket_annotation_is_reported_with_the_closest_known(
    tmp_path: Path, key: str, hint: str
) -> None:
    annotations = {"bitbucket.org/user-id": JANE, key: "x"}
    entity = {**JANE_ENTITY, "metadata": {"name": "jdoe", "annotations": annotations}}
    catalog = load_catalog(write(tmp_path / "catalog.yaml", {**entity, "spec": {}}))
    assert catalog.warnings == (
        f'catalog.yaml: User "jdoe" (document 1): unknown annotation {key}: {hint}',
    )


def test_other_annotations_pass_in_silence(tmp_path: Path) -> None:
    annotations = {"bitbucket.org/user-id": JANE, "backstage.io/managed-by-location": "x"}
    entity = {**JANE_ENTITY, "metadata": {"name": "jdoe", "annotations": annotations}}
    assert load_catalog(write(tmp_path / "catalog.yaml", {**entity, "spec": {}})).warnings == ()


def test_app_config_catalog_locations_feed_the_catalog(
    app_config: dict[str, Any],
    tmp_path: Path,
    http: requests.Session,
    bitbucket: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As Backstage reads them: ``type: file`` targets relative to the app-config file, even
    outside its folder; other types are not read (and said so)."""
    write(tmp_path / "org" / "people.yaml", {**JANE_ENTITY, "spec": {"memberOf": ["platform"]}})
    write(tmp_path / "org" / "groups.yaml", PLATFORM)
    app_config_file = tmp_path / "backstage" / "app-config.yaml"
    app_config_file.parent.mkdir()
    app_config_file.write_text(
        yaml.safe_dump(
            {
                "app": {"baseUrl": "http://localhost:3000"},
                "auth": {
                    "providers": {"bitbucket": {"development": {"clientId": "${CLIENT}"}}},
                },
                "catalog": {
                    "locations": [
                        {"type": "file", "target": "../org/people.yaml"},
                        {"type": "url", "target": "https://example.com/all.yaml"},
                        {"type": "file", "target": "../org/groups.yaml"},
                    ]
                },
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("CLIENT", app_config["BITBUCKET_CLIENT_ID"])
    config = {key: value for key, value in app_config.items() if key != "BITBUCKET_CATALOG"}
    app = create_app({**config, "BITBUCKET_APP_CONFIG": str(app_config_file)})
    catalog = app.extensions["bitbucket_signin"].catalog_store.current()
    assert [user.ref for user in catalog.users] == ["user:default/jdoe"]
    assert catalog.warnings == (
        'app-config.yaml: catalog.locations entry 2: type "url" is not read (only file)',
    )
    with serve(app) as url:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
        assert "group:default/platform" in home_page(http, url).text


def test_bitbucket_catalog_wins_over_the_app_config_locations(
    app_config: dict[str, Any], tmp_path: Path
) -> None:
    app_config_file = tmp_path / "app-config.yaml"
    app_config_file.write_text(
        "auth: {providers: {bitbucket: {development: {}}}}\n"
        "catalog: {locations: [{type: file, target: missing.yaml}]}\n",
        encoding="utf-8",
    )
    app = create_app({**app_config, "BITBUCKET_APP_CONFIG": str(app_config_file)})
    assert app.extensions["bitbucket_signin"].settings.catalog_path == Path(
        app_config["BITBUCKET_CATALOG"]
    )


def test_a_bad_parent_or_child_is_a_problem_of_its_group(tmp_path: Path) -> None:
    bad = {**PLATFORM, "spec": {"type": "team", "parent": "user:jdoe", "children": ["a b"]}}
    path = write(tmp_path / "catalog.yaml", JANE_ENTITY, bad)
    report = check_catalog(path)
    assert report.errors == (
        'catalog.yaml: Group "platform" (document 2): spec.parent entry "user:jdoe" must refer '
        "to a group",
    )
    assert report.groups == 0


def test_the_demo_app_config_names_the_demo_catalog(
    app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTH_BITBUCKET_CLIENT_ID", "demo-client-id")
    monkeypatch.setenv("AUTH_BITBUCKET_CLIENT_SECRET", "demo-client-secret")
    demo = ROOT / "examples" / "demo" / "app-config.yaml"
    config = {
        key: value
        for key, value in app_config.items()
        if key not in ("BITBUCKET_CATALOG", "BITBUCKET_CLIENT_ID", "BITBUCKET_CLIENT_SECRET")
    }
    app = create_app({**config, "BITBUCKET_APP_CONFIG": str(demo)})
    catalog = app.extensions["bitbucket_signin"].catalog_store.current()
    assert sorted(user.name for user in catalog.users) == ["jdoe", "lchen", "omar"]
    report = check_catalog(demo)
    assert (report.errors, report.users, report.files) == ((), 3, 4)
