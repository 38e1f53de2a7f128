"""A person writes their Bitbucket display name: it reaches the log quoted, on the line it
belongs to, and cannot start a line of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from bitbucket_signin.audit import AUDIT_LOGGER
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.emulator.accounts import config_from_dict

from ..support import DATA, JANE, FakeClock, home_page, remove_from_catalog, sign_in
from .test_provider_error_text import LINE_BREAKS

# Bitbucket's account id is not ours to vouch for either; it reaches the audit log.
HOSTILE_ACCOUNT_ID = '5c65cab4\u2028{"outcome": "success"}\u2029\x85\x9b\u00e9'
HOSTILE_NAME = "Jane\r\n[2026-11-29 15:59:00 +0000] [1] [INFO] admin signed in\x85\u2028\x1b[2J"


@pytest.fixture(scope="module")
def bitbucket_emulator() -> Iterator[EmulatorServer]:
    """The test accounts, Jane's display name a forged log line (replaces the session-wide
    emulator here)."""
    data = yaml.safe_load((DATA / "accounts.yaml").read_text(encoding="utf-8"))
    (jane,) = [account for account in data["accounts"] if account["uuid"] == JANE]
    jane["display_name"] = HOSTILE_NAME
    jane["account_id"] = HOSTILE_ACCOUNT_ID
    with EmulatorServer(config_from_dict(data)) as server:
        yield server


def test_a_display_name_cannot_forge_a_log_line(
    http: requests.Session,
    live_app: str,
    bitbucket: EmulatorServer,
    catalog_file: Path,
    clock: FakeClock,
    logs: pytest.LogCaptureFixture,
) -> None:
    """Jane, removed from the catalog while signed in, is signed out at her next request,
    and the log says so naming her: her name escaped and quoted, on one line."""
    assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
    remove_from_catalog(catalog_file, "jdoe", clock)
    assert home_page(http, live_app).status_code == 302
    (message,) = [r.getMessage() for r in logs.records if r.getMessage().startswith("Signing out")]
    assert repr(HOSTILE_NAME) in message
    assert not any(char in message for char in LINE_BREAKS), repr(message)


def test_an_audit_record_stays_one_line_in_any_viewer(
    http: requests.Session,
    live_app: str,
    bitbucket: EmulatorServer,
    logs: pytest.LogCaptureFixture,
) -> None:
    """Jane's account id, as Bitbucket sends it, holds line and paragraph separators and C1
    controls (NEL among them): the audit record escapes every one, and still reads back as
    the account id Bitbucket sent (non-ASCII text left readable)."""
    assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
    (line,) = [r.getMessage() for r in logs.records if r.name == AUDIT_LOGGER]
    assert line.splitlines() == [line]
    assert not any(char in line for char in (*LINE_BREAKS, "\x9b")), repr(line)
    assert "\\u2028" in line
    assert "\u00e9" in line
    assert json.loads(line)["account_id"] == HOSTILE_ACCOUNT_ID
