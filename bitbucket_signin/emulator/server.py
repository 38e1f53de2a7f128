"""Running the emulator in a background thread (tests, demos, load tests)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType

from flask import Flask
from werkzeug.serving import make_server

from .accounts import EmulatorConfig
from .app import create_app
from .datacenter import install_datacenter
from .datacenter_accounts import DataCenterConfig
from .faults import Fault
from .loopback import check_listen_address, warn_exposed
from .state import EmulatorState, emulator_state


class EmulatorServer:
    """The emulator served by a threaded werkzeug server on a daemon thread.

    Starts on construction; ``port=0`` picks a free port. Use as a context manager or call
    :meth:`shutdown`. A non-loopback ``host`` raises :class:`ListenAddressError` unless
    ``allow_non_loopback`` is true, which prints a warning banner on stderr. With
    ``datacenter``, Bitbucket Data Center answers too, at ``datacenter_url`` (the URL plus
    its context path).
    """

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Mapping[str, Fault] | None = None,
        allow_non_loopback: bool = False,
        datacenter: DataCenterConfig | None = None,
    ) -> None:
        check_listen_address(host, allow_non_loopback=allow_non_loopback)
        if allow_non_loopback:
            warn_exposed()
        self.app: Flask = create_app(config, faults)
        if datacenter is not None:
            install_datacenter(self.app, datacenter)
        self._server = make_server(host, port, self.app, threaded=True)
        self.host = host
        self.port: int = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self.datacenter_url = self.url + datacenter.context_path if datacenter else None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"bitbucket-emulator-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def state(self) -> EmulatorState:
        """Codes, tokens, faults and the request log, for in-process inspection."""
        return emulator_state(self.app)

    def shutdown(self) -> None:
        """Stop serving, waking requests delayed by faults; idempotent."""
        self.state.faults.clear()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()
