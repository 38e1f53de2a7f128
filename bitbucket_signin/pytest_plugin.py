"""pytest fixtures that start the Bitbucket emulator, for tests of whole sign-ins.

Load them in your ``conftest.py`` and say which accounts the emulator knows::

    pytest_plugins = ["bitbucket_signin.pytest_plugin"]

    @pytest.fixture(scope="session")
    def bitbucket_emulator_accounts() -> Path:
        return Path(__file__).parent / "accounts.yaml"

Then ``bitbucket_emulator`` is an :class:`~bitbucket_signin.emulator.EmulatorServer` on a
free loopback port, shared by the session; :func:`bitbucket_signin.testing.emulator_settings`
points an app at it, and :func:`bitbucket_signin.testing.sign_in` signs in over real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .emulator import EmulatorServer, load_accounts

__all__ = ["bitbucket_emulator", "bitbucket_emulator_accounts"]


@pytest.fixture(scope="session")
def bitbucket_emulator_accounts() -> Path:
    """The emulator's accounts file (consumers and accounts): override this fixture."""
    pytest.fail(
        "override the fixture bitbucket_emulator_accounts (scope='session') to return "
        "the path of the emulator's accounts file"
    )


@pytest.fixture(scope="session")
def bitbucket_emulator(bitbucket_emulator_accounts: Path) -> Iterator[EmulatorServer]:
    """The Bitbucket emulator serving ``bitbucket_emulator_accounts`` on a free loopback port."""
    with EmulatorServer(load_accounts(bitbucket_emulator_accounts)) as server:
        yield server
