"""The admin commands: ``flask bitbucket-signin check | resolve | user-entity[-server]``
through Flask's CliRunner (also with an app that refuses its catalog), and ``python -m
bitbucket_signin`` in a real process, with no app at all."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from flask.cli import cli as flask_cli

from bitbucket_signin.catalog import load_catalog
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.profile import BitbucketProfile
from bitbucket_signin.resolvers import build_chain, resolve

from ..datacenter import Site, dc_sign_in, server_config
from ..support import JANE, VAL, home_page

ROOT = Path(__file__).parent.parent.parent
V1 = "backstage.io/v1alpha1"
BROKEN = """\
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jdoe
  annotations: {"bitbucket.org/user-id": "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"}
spec:
  profile: {email: jane@example.com}
  memberOf: [platform, ghosts]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: "j doe"}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: lchen
  annotations: {"bitbucket.org/userid": "{9c2d4e6f-8a1b-4c3d-9e5f-7a6b5c4d3e2f}"}
spec:
  profile: {email: Jane@Example.com}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: omar
  annotations: {"bitbucket.org/user-id": "768F8C62-7F2A-4914-BF33-3F412FC1D3A4"}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: platform}
spec: {type: team, parent: engineering}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: engineering}
spec: {type: department, parent: platform, children: [finance]}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: [not, a, name]}
spec: {type: team}
"""
BROKEN_REPORT = [
    'error: catalog.yaml: User "j doe" (document 2): metadata.name "j doe" is not a valid '
    "name: 1-63 letters, digits, '-', '_' or '.', beginning and ending with a letter or digit",
    "error: catalog.yaml: Group (document 7): metadata.name must be a string, not a list",
    'error: catalog.yaml: User "omar" (document 4): annotation bitbucket.org/user-id '
    '"768F8C62-7F2A-4914-BF33-3F412FC1D3A4" is already claimed by catalog.yaml: User "jdoe" '
    "(document 1)",
    'warning: catalog.yaml: User "lchen" (document 3): unknown annotation '
    "bitbucket.org/userid: did you mean bitbucket.org/user-id?",
    'warning: catalog.yaml: User "jdoe" (document 1): group group:default/ghosts is not in '
    "the catalog",
    'warning: catalog.yaml: Group "engineering" (document 6): child group '
    "group:default/finance is not in the catalog",
    "warning: group hierarchy cycle: group:default/engineering → group:default/platform → "
    "group:default/engineering",
    'warning: catalog.yaml: User "lchen" (document 3): no Bitbucket annotation '
    "(bitbucket.org/user-id, bitbucket.org/account-id, bitbucket.org/username): only an "
    "email resolver can sign this person in",
    'warning: catalog.yaml: User "lchen" (document 3): spec.profile.email "Jane@Example.com" '
    'is also that of catalog.yaml: User "jdoe" (document 1): the email resolvers refuse both',
    "3 users, 2 groups in 1 file(s): 3 errors, 6 warnings",
]


@pytest.fixture
def broken_catalog(tmp_path: Path) -> Path:
    path = tmp_path / "broken" / "catalog.yaml"
    path.parent.mkdir()
    path.write_text(BROKEN, encoding="utf-8")
    return path


def app_env(app_config: dict[str, Any], **overrides: str) -> dict[str, str]:
    """The test app's configuration as ``FLASK_*`` environment variables."""
    config = {**app_config, **overrides}
    return {f"FLASK_{key}": str(value) for key, value in config.items()}


def flask_command(env: dict[str, str], *args: str) -> Result:
    """``flask --app bitbucket_signin.standalone:create_app bitbucket-signin ARGS``, in-process."""
    env = {"FLASK_APP": "bitbucket_signin.standalone:create_app", **env}
    return CliRunner().invoke(flask_cli, ["bitbucket-signin", *args], env=env)


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bitbucket_signin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_the_apps_catalog(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["bitbucket-signin", "check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "5 users, 2 groups in 1 file(s): 0 errors, 3 warnings"
    # omar, boss and mani have only an email: one warning each
    assert sum("no Bitbucket annotation" in line for line in lines) == 3


def test_check_reports_every_problem_of_a_catalog_the_app_refuses(
    app_config: dict[str, Any], broken_catalog: Path
) -> None:
    result = flask_command(app_env(app_config, BITBUCKET_CATALOG=str(broken_catalog)), "check")
    assert result.exit_code == 1
    assert result.output.splitlines() == BROKEN_REPORT
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_under_wsgi_py_reports_every_problem_and_no_traceback(
    app_config: dict[str, Any], broken_catalog: Path
) -> None:
    """``flask --app wsgi`` imports wsgi.py, which turns the refusal into one line and exits."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "bitbucket-signin", "check"],
        cwd=ROOT,
        env={**os.environ, **app_env(app_config, BITBUCKET_CATALOG=str(broken_catalog))},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == BROKEN_REPORT
    assert result.stderr == ""


def test_check_says_in_one_line_what_else_stops_the_app(app_config: dict[str, Any]) -> None:
    result = flask_command(app_env(app_config, BITBUCKET_CLIENT_SECRET=""), "check")
    assert result.exit_code == 1
    assert result.output == "Error: BITBUCKET_CLIENT_SECRET is not set\n"


def test_commands_say_so_for_an_app_without_the_extension() -> None:
    app = Flask("plain")
    for args in (["check"], ["resolve", "--uuid", VAL]):
        result = CliRunner().invoke(
            flask_cli, ["bitbucket-signin", *args], obj=ScriptInfo(create_app=lambda: app)
        )
        assert result.exit_code == 1
        assert result.output == "Error: the app 'plain' does not use BitbucketSignIn\n"


def test_python_m_check_needs_no_app(broken_catalog: Path, catalog_file: Path) -> None:
    broken = run_module("check", str(broken_catalog))
    assert broken.returncode == 1
    assert broken.stdout.splitlines() == BROKEN_REPORT
    healthy = run_module("check", str(catalog_file))
    assert healthy.returncode == 0
    assert healthy.stdout.splitlines()[-1] == "5 users, 2 groups in 1 file(s): 0 errors, 3 warnings"
    missing = run_module("check", str(catalog_file.parent / "nowhere.yaml"))
    assert missing.returncode == 1
    assert missing.stdout.splitlines()[0] == "error: nowhere.yaml: file not found"
    assert run_module("check").returncode == 2  # a usage error: no FILE and no app


def test_resolve_explains_a_match(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["bitbucket-signin", "resolve", "--uuid", JANE.strip("{}")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "1. userIdMatchingUserEntityAnnotation",
        f'   looked for: annotation bitbucket.org/user-id "{JANE}"',
        "   found: user:default/jdoe",
        "signs in as user:default/jdoe",
        "ownership refs: group:default/payments, group:default/platform, user:default/jdoe",
    ]


def test_resolve_explains_each_step_and_the_annotation_that_would_fix_it(
    make_app: Any,
) -> None:
    app = make_app(
        BITBUCKET_SIGNIN_RESOLVERS=[
            "userIdMatchingUserEntityAnnotation",
            "usernameMatchingUserEntityAnnotation",
            "emailMatchingUserEntityProfileEmail",
        ]
    )
    runner = app.test_cli_runner()
    by_username = runner.invoke(args=["bitbucket-signin", "resolve", "--username", "LChen"])
    assert by_username.exit_code == 0, by_username.output
    assert by_username.output.splitlines()[:6] == [
        "1. userIdMatchingUserEntityAnnotation",
        "   looked for: nothing (Bitbucket user profile does not contain an ID)",
        "   found: nothing",
        "2. usernameMatchingUserEntityAnnotation",
        '   looked for: annotation bitbucket.org/username "LChen"',
        "   found: user:default/lchen",
    ]
    nobody = runner.invoke(
        args=["bitbucket-signin", "resolve", "--uuid", VAL, "--email", "val@elsewhere.test"]
    )
    assert nobody.exit_code == 1
    assert nobody.output.splitlines()[-7:] == [
        "3. emailMatchingUserEntityProfileEmail",
        '   looked for: spec.profile.email "val@elsewhere.test"',
        "   found: no User entity",
        "Nobody matched. Add this to the person's User entity:",
        "metadata:",
        "  annotations:",
        f'    bitbucket.org/user-id: "{VAL}"',
    ]
    refused = runner.invoke(args=["bitbucket-signin", "resolve", "--email", "nobody@example.com"])
    assert refused.exit_code == 1
    usage = runner.invoke(args=["bitbucket-signin", "resolve"])
    assert usage.exit_code == 2
    assert "give at least one of --uuid, --account-id, --username, --email" in usage.output


def test_user_entity_prints_an_entity_that_signs_the_account_in(tmp_path: Path) -> None:
    result = run_module(
        "user-entity",
        "--uuid",
        VAL.strip("{}").upper(),
        "--name",
        "vvisitor",
        "--email",
        "val@elsewhere.test",
        "--display-name",
        "Val Visitor",
    )
    assert result.returncode == 0, result.stderr
    entity = yaml.safe_load(result.stdout)
    assert entity == {
        "apiVersion": V1,
        "kind": "User",
        "metadata": {"name": "vvisitor", "annotations": {"bitbucket.org/user-id": VAL}},
        "spec": {
            "profile": {"displayName": "Val Visitor", "email": "val@elsewhere.test"},
            "memberOf": [],
        },
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(result.stdout, encoding="utf-8")
    profile = BitbucketProfile(uuid=VAL, account_id=None, display_name="Val")
    chain = build_chain(["userIdMatchingUserEntityAnnotation"])
    assert resolve(chain, profile, load_catalog(path)).user_entity_ref == "user:default/vvisitor"


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        (["--uuid", "not-a-uuid", "--name", "x"], "--uuid"),
        (["--uuid", VAL, "--name", "j doe"], "--name"),
        (["--uuid", VAL, "--name", "x", "--email", "nobody"], "--email"),
    ],
)
def test_user_entity_refuses_what_the_catalog_would(args: list[str], refused: str) -> None:
    result = CliRunner().invoke(flask_cli, ["bitbucket-signin", "user-entity", *args])
    assert result.exit_code == 2
    assert refused in result.output


def test_user_entity_server_prints_an_entity_that_signs_the_account_in(
    make_site: Callable[..., Site],
    bitbucket: EmulatorServer,
    http: requests.Session,
    catalog_file: Path,
) -> None:
    server_url = server_config(bitbucket)["BITBUCKET_SERVER_URL"]  # http://localhost:<port>/…
    result = run_module(
        "user-entity-server",
        "--server-url",
        server_url,
        "--id",
        "106",
        "--slug",
        "val",
        "--name",
        "vvisitor",
        "--display-name",
        "Val Visitor",
    )
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {
        "apiVersion": V1,
        "kind": "User",
        "metadata": {
            "name": "vvisitor",
            "annotations": {"localhost/user-id": "106", "localhost/user-slug": "val"},
        },
        "spec": {"profile": {"displayName": "Val Visitor"}, "memberOf": []},
    }
    catalog_file.write_text(f"{catalog_file.read_text()}\n---\n{result.stdout}", encoding="utf-8")
    check = run_module("check", str(catalog_file))
    assert check.returncode == 0, check.stdout
    assert ": 0 errors," in check.stdout
    assert "vvisitor" not in check.stdout  # no "only an email resolver" warning: she has an id
    for resolver in ["userIdMatchingUserEntityAnnotation", "userSlugMatchingUserEntityAnnotation"]:
        site = make_site(BITBUCKET_SERVER_SIGNIN_RESOLVERS=resolver)
        http.cookies.clear()
        assert dc_sign_in(http, site.url, bitbucket, "val").status_code == 302
        assert "Signed in as Val Visitor" in home_page(http, site.url).text


@pytest.mark.parametrize(
    ("option", "value", "refused"),
    [
        ("--server-url", "https://bitbucket.org", "'https://bitbucket.org' is not the URL of a"),
        ("--server-url", "git.example.com", "'git.example.com' is not the URL of a"),
        ("--id", "-1", "-1 is not in the range x>=0"),
        ("--slug", "jane doe", "'jane doe' is not a user slug"),
        ("--slug", "", "'' is not a user slug"),
        ("--name", "j doe", "'j doe' is not a valid entity name"),
        ("--email", "nobody", "'nobody' is not an email address"),
    ],
)
def test_user_entity_server_refuses_what_would_not_sign_in(
    option: str, value: str, refused: str
) -> None:
    given = {"--server-url": "https://git.example.com", "--id": "101", "--slug": "jdoe"}
    options = [text for pair in {**given, "--name": "jdoe", option: value}.items() for text in pair]
    result = CliRunner().invoke(flask_cli, ["bitbucket-signin", "user-entity-server", *options])
    assert result.exit_code == 2
    assert f"Invalid value for {option}: {refused}" in " ".join(result.output.split()).replace(
        f"'{option}'", option
    )
