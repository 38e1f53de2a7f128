"""The emulator stays on this machine: it will not listen beyond loopback unless told so in so
many words (then it says so loudly), and its ``/_emulator/`` control routes (grant as anyone,
inject faults, read the log) answer loopback peers only, whatever X-Forwarded-For claims."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from bitbucket_signin.emulator import (
    EmulatorServer,
    ListenAddressError,
    create_app,
    datacenter_state,
    emulator_state,
    install_datacenter,
    load_accounts,
    load_datacenter,
)

from ..support import CLIENT_ID, DATA, JANE, client_at

ACCOUNTS = DATA / "accounts.yaml"
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - what the emulator must refuse, never bound here
BANNER = "ANYONE WHO REACHES IT CAN SIGN IN AS ANY OF ITS ACCOUNTS"
AUTHORIZE_QUERY = {"client_id": CLIENT_ID, "response_type": "code", "state": "s"}
CONTROL_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/_emulator/health", {}),
    ("GET", "/_emulator/faults", {}),
    ("PUT", "/_emulator/faults/token", {"json": {"status": 503}}),
    ("DELETE", "/_emulator/faults", {}),
    ("DELETE", "/_emulator/faults/token", {}),
    ("GET", "/_emulator/requests", {}),
    ("DELETE", "/_emulator/requests", {}),
    ("POST", "/_emulator/reset", {}),
    ("POST", "/_emulator/clock", {"json": {"advance": 3600}}),
    ("GET", f"/_emulator/authorize-as/{JANE}", {"query_string": AUTHORIZE_QUERY}),
    ("PUT", "/_emulator/datacenter/links/k", {"json": {"secret": "s", "redirect_url": "http://x"}}),
    (
        "GET",
        "/_emulator/datacenter/authorize-as/jane@example.com",
        {
            "query_string": {
                "client_id": "dc-client-id",
                "redirect_uri": "http://127.0.0.1:7007/api/auth/bitbucketServer/handler/frame",
                "response_type": "code",
            }
        },
    ),
]


def run_emulator(*arguments: str, accounts: Path = ACCOUNTS) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bitbucket_signin.emulator", "--accounts", str(accounts),
         *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


@pytest.mark.parametrize("host", [EVERY_INTERFACE, "::", "192.0.2.10", ""])
def test_cli_refuses_a_non_loopback_address_without_the_flag(tmp_path: Path, host: str) -> None:
    """The address is checked first. The accounts file is missing, so that should the check
    ever be lost, the emulator stops on that instead of serving on every interface."""
    process = run_emulator("--host", host, "--port", "0", accounts=tmp_path / "missing.yaml")
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 2
    assert stdout == ""
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"error: refusing to listen on {host!r}: it is not a loopback")
    assert "--allow-non-loopback" in stderr


@pytest.mark.parametrize("flag", [True, False])
def test_cli_prints_a_loud_banner_exactly_when_allowed_beyond_loopback(flag: bool) -> None:
    """Served on loopback either way: the banner comes from the flag, not the address."""
    process = run_emulator("--host", "127.0.0.1", "--port", "0",
                           *(["--allow-non-loopback"] if flag else []))  # fmt: skip
    try:
        assert process.stdout is not None
        serving = process.stdout.readline()  # printed once it listens, after any banner
        url = serving.split()[3]
        assert requests.get(f"{url}/_emulator/health", timeout=5).text == "ok"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert (BANNER in stderr) is flag


def test_emulator_server_refuses_a_non_loopback_address_unless_allowed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ListenAddressError, match=r"^refusing to listen on '0\.0\.0\.0'"):
        EmulatorServer(load_accounts(ACCOUNTS), host=EVERY_INTERFACE)
    with EmulatorServer(load_accounts(ACCOUNTS), host="localhost"):
        assert BANNER not in capsys.readouterr().err
    with EmulatorServer(load_accounts(ACCOUNTS), allow_non_loopback=True):  # on loopback
        assert BANNER in capsys.readouterr().err


@pytest.fixture
def emulator_app() -> FlaskClient:
    """Cloud, and Data Center under /bitbucket."""
    app = create_app(load_accounts(ACCOUNTS))
    datacenter = load_datacenter(ACCOUNTS)
    assert datacenter is not None
    install_datacenter(app, datacenter)
    return app.test_client()


@pytest.mark.parametrize(("method", "path", "options"), CONTROL_CALLS)
@pytest.mark.parametrize("peer", ["10.0.0.5", "192.0.2.7", "::ffff:10.0.0.5", "2001:db8::1"])
def test_control_routes_refuse_a_peer_off_this_machine(
    emulator_app: FlaskClient, method: str, path: str, options: dict[str, Any], peer: str
) -> None:
    """The peer address is the TCP one; a forwarded-for header claiming loopback changes
    nothing, and nothing is granted, installed, cleared or moved."""
    state = emulator_state(emulator_app.application)
    state.record({"endpoint": "token"})
    response = emulator_app.open(
        path,
        method=method,
        environ_base={"REMOTE_ADDR": peer},
        headers={"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"},
        **options,
    )
    assert response.status_code == 403
    assert "only on loopback" in response.get_json()["error"]
    assert state.codes == {}
    assert datacenter_state(emulator_app.application).codes == {}
    assert set(datacenter_state(emulator_app.application).links) == {"dc-client-id"}
    assert state.faults.snapshot() == {}
    assert state.clock_offset == 0
    assert len(state.requests()) == 1


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_control_routes_answer_loopback_peers(emulator_app: FlaskClient, peer: str) -> None:
    response = emulator_app.put(
        "/_emulator/faults/token",
        json={"status": 503},
        environ_base={"REMOTE_ADDR": peer},
        headers={"X-Forwarded-For": "10.0.0.5"},
    )
    assert response.status_code == 200
    assert emulator_state(emulator_app.application).faults.snapshot()["token"]["status"] == 503


def test_bitbuckets_own_pages_answer_any_peer(emulator_app: FlaskClient) -> None:
    """Only the control routes are fenced; the consent page plays Bitbucket for anyone."""
    response = emulator_app.get(
        "/site/oauth2/authorize",
        query_string=AUTHORIZE_QUERY,
        environ_base={"REMOTE_ADDR": "10.0.0.5"},
    )
    assert response.status_code == 200
    assert "Jane Doe" in response.text


@pytest.fixture
def loopback_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(load_accounts(ACCOUNTS)) as server:
        yield server


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_control_routes_work_over_real_http_from_loopback(
    loopback_emulator: EmulatorServer, source: str
) -> None:
    """A real loopback peer may grant, whatever X-Forwarded-For says."""
    with client_at(source) as http:
        response = http.get(
            f"{loopback_emulator.url}/_emulator/authorize-as/{JANE}",
            params=AUTHORIZE_QUERY,
            headers={"X-Forwarded-For": "10.0.0.5"},
            allow_redirects=False,
            timeout=5,
        )
    assert response.status_code == 302
    assert "code=" in response.headers["Location"]
