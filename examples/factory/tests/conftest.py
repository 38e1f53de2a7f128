"""The portal's test fixtures: the app, and the Bitbucket emulator of bitbucket-signin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from portal import create_app

from bitbucket_signin.testing import SignedInClient

pytest_plugins = ["bitbucket_signin.pytest_plugin"]

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def bitbucket_emulator_accounts() -> Path:
    """The accounts the emulator of ``bitbucket_emulator`` knows."""
    return HERE / "accounts.yaml"


@pytest.fixture
def settings() -> dict[str, Any]:
    return {
        "SECRET_KEY": "portal-tests-secret-key-0123456789abcdef",
        "BITBUCKET_CLIENT_ID": "portal-tests",  # the emulator's consumer
        "BITBUCKET_CLIENT_SECRET": "portal-tests-secret",
        "BITBUCKET_CATALOG": str(HERE.parent.parent / "demo" / "catalog.yaml"),
    }


@pytest.fixture
def app(settings: dict[str, Any]) -> Flask:
    app = create_app(settings)
    app.test_client_class = SignedInClient  # app.test_client(user="user:default/jdoe")
    return app
