"""The emulator's Flask app: OAuth endpoints, the 2.0 user API and the /_emulator control API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from .accounts import EmulatorConfig
from .api import api
from .control import control
from .errors import (
    ApiError,
    PageError,
    TokenEndpointError,
    api_error,
    fault_error,
    page_error,
    token_endpoint_error,
)
from .faults import Fault, FaultError, FaultRegistry
from .oauth import oauth
from .state import STATE_KEY, EmulatorState


def create_app(config: EmulatorConfig, faults: Mapping[str, Fault] | None = None) -> Flask:
    """The emulator's Flask app serving ``config``, with ``faults`` active from the start."""
    app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
    registry = FaultRegistry()
    for name, fault in (faults or {}).items():
        registry.set(name, fault)
    app.extensions[STATE_KEY] = EmulatorState(config, registry)
    for blueprint in (oauth, api, control):
        app.register_blueprint(blueprint)
    app.register_error_handler(TokenEndpointError, token_endpoint_error)
    app.register_error_handler(ApiError, api_error)
    app.register_error_handler(PageError, page_error)
    app.register_error_handler(FaultError, fault_error)
    return app
