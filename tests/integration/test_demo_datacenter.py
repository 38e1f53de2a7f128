"""The demo's Data Center side (examples/demo, scripts/demo.sh) signs people in as the README
says: Jane by her id annotation despite the decoy, Li by his slug, Omar by his email."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bitbucket_signin.emulator import EmulatorServer, load_accounts, load_datacenter
from bitbucket_signin.standalone import create_app

from ..datacenter import DC_PREFIX, dc_sign_in, register_link, served_later, server_config
from ..support import SECRET_KEY

DEMO = Path(__file__).parent.parent.parent / "examples" / "demo"
DEMO_SCRIPT = Path(__file__).parent.parent.parent / "scripts" / "demo.sh"


def demo_setting(name: str) -> str:
    """A ``FLASK_BITBUCKET_…`` value exported by scripts/demo.sh."""
    prefix = f"export FLASK_BITBUCKET_{name}="
    [line] = [line for line in DEMO_SCRIPT.read_text().splitlines() if line.startswith(prefix)]
    return line.removeprefix(prefix).strip('"')


@pytest.fixture(scope="module")
def demo_emulator() -> Iterator[EmulatorServer]:
    accounts = DEMO / "accounts.yaml"
    with EmulatorServer(load_accounts(accounts), datacenter=load_datacenter(accounts)) as server:
        yield server


@pytest.mark.parametrize(
    ("who", "signed_in_as"),
    [("jane@example.com", "Jane Doe"), ("lchen", "Li Chen"), ("omar", "Omar Haddad")],
)
def test_the_demo_signs_in_with_data_center(
    demo_emulator: EmulatorServer, who: str, signed_in_as: str
) -> None:
    with served_later() as (url, late), requests.Session() as http:
        config = server_config(demo_emulator)
        register_link(demo_emulator, url)
        late.app = create_app(
            {
                "SECRET_KEY": SECRET_KEY,
                "BITBUCKET_CATALOG": str(DEMO / "catalog.yaml"),
                **config,
                "BITBUCKET_SERVER_SIGNIN_RESOLVERS": demo_setting("SERVER_SIGNIN_RESOLVERS"),
            }
        )
        assert demo_setting("SERVER_CALLBACK_URL").endswith(f"{DC_PREFIX}/handler/frame")
        assert dc_sign_in(http, url, demo_emulator, who).status_code == 302
        assert f"Signed in as {signed_in_as}" in http.get(f"{url}/", timeout=5).text
