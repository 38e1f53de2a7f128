"""Fault injection: per-endpoint latency, hangs, error statuses and raw bodies."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

ENDPOINTS = (
    "authorize",
    "token",
    "user",
    "emails",
    "workspaces",
    # Bitbucket Data Center's
    "dc-authorize",
    "dc-token",
    "dc-whoami",
    "dc-users",
    "dc-user",
)
ANY_ENDPOINT = "*"
MAX_SECONDS = 60.0
HANG_DEFAULT_SECONDS = 30.0


class FaultError(ValueError):
    """A fault specification that cannot be applied; the message says why."""


@dataclass(frozen=True)
class Fault:
    """What to do to the next calls of one endpoint.

    ``latency`` and ``hang`` delay the answer (both end early when faults are cleared);
    ``status``/``body``/``content_type`` replace the answer; ``times`` limits the calls affected.
    """

    status: int | None = None
    latency: float = 0.0
    body: str | None = None
    content_type: str | None = None
    times: int | None = None
    hang: float = 0.0

    @property
    def replaces_response(self) -> bool:
        """True when the endpoint's normal answer is replaced."""
        return self.status is not None or self.body is not None

    def to_json(self) -> dict[str, Any]:
        """The fault as ``GET /_emulator/faults`` reports it."""
        return asdict(self)


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it is a known endpoint name or ``*``."""
    if endpoint != ANY_ENDPOINT and endpoint not in ENDPOINTS:
        raise FaultError(f"unknown endpoint {endpoint!r}; use one of {', '.join(ENDPOINTS)} or *")
    return endpoint


def fault_from_dict(data: Any) -> Fault:
    """Validate a fault given as JSON (``PUT /_emulator/faults/<endpoint>``)."""
    if not isinstance(data, dict):
        raise FaultError("a fault must be a JSON object")
    unknown = set(data) - {"status", "latency", "body", "content_type", "times", "hang"}
    if unknown:
        raise FaultError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
    status = data.get("status")
    if status is not None and not (_is_int(status) and 100 <= status <= 599):
        raise FaultError("status must be an HTTP status code")
    times = data.get("times")
    if times is not None and not (_is_int(times) and times >= 1):
        raise FaultError("times must be a positive integer")
    for key in ("body", "content_type"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise FaultError(f"{key} must be a string")
    hang = data.get("hang", False)
    return Fault(
        status=status,
        latency=_seconds("latency", data.get("latency", 0)),
        body=data.get("body"),
        content_type=data.get("content_type"),
        times=times,
        hang=HANG_DEFAULT_SECONDS if hang is True else _seconds("hang", hang),
    )


def parse_fault_spec(spec: str) -> tuple[str, Fault]:
    """Parse ``ENDPOINT:key=value[,key=value...]`` (``body`` must come last, it may hold commas)."""
    endpoint, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise FaultError(f"fault {spec!r}: expected ENDPOINT:key=value[,key=value...]")
    data: dict[str, Any] = {}
    while rest:
        key, sep, value = rest.partition("=")
        if not sep:
            raise FaultError(f"fault {spec!r}: {key!r} has no value")
        if key == "body":
            data[key], rest = value, ""
            continue
        value, _, rest = value.partition(",")
        data[key] = _cli_value(key, value)
    try:
        return check_endpoint(endpoint), fault_from_dict(data)
    except FaultError as exc:
        raise FaultError(f"fault {spec!r}: {exc}") from exc


def _cli_value(key: str, value: str) -> Any:
    if key == "content_type":
        return value
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds(key: str, value: Any) -> float:
    if value is False:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{key} must be a number of seconds")
    if not 0 <= value <= MAX_SECONDS:
        raise FaultError(f"{key} must be between 0 and {MAX_SECONDS:g} seconds")
    return float(value)


class FaultRegistry:
    """The active faults, shared by the server's threads."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._changed = threading.Condition()
        self._epoch = 0

    def set(self, endpoint: str, fault: Fault) -> None:
        """Install ``fault`` for ``endpoint`` (or ``*``), replacing any earlier one."""
        with self._changed:
            self._faults[check_endpoint(endpoint)] = fault

    def clear(self, endpoint: str | None = None) -> None:
        """Remove the fault of ``endpoint``, or all faults; wakes delayed requests."""
        with self._changed:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)
            self._epoch += 1
            self._changed.notify_all()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The active faults by endpoint."""
        with self._changed:
            return {name: fault.to_json() for name, fault in self._faults.items()}

    def take(self, endpoint: str) -> Fault | None:
        """The fault applying to this call of ``endpoint``, counting it against ``times``."""
        with self._changed:
            name = endpoint if endpoint in self._faults else ANY_ENDPOINT
            fault = self._faults.get(name)
            if fault is not None and fault.times is not None:
                if fault.times > 1:
                    self._faults[name] = replace(fault, times=fault.times - 1)
                else:
                    del self._faults[name]
            return fault

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if faults are cleared meanwhile."""
        with self._changed:
            epoch = self._epoch
            self._changed.wait_for(lambda: self._epoch != epoch, timeout=seconds)
