"""What every emulated endpoint does first: name itself for the request log, and answer
with its injected fault, if one is set."""

from __future__ import annotations

import functools
from collections.abc import Callable
from http import HTTPStatus
from typing import ParamSpec

from flask import Response, g
from flask.typing import ResponseReturnValue

from .errors import ApiError, PageError, TokenEndpointError
from .faults import Fault
from .state import emulator_state

P = ParamSpec("P")


def endpoint(
    name: str,
) -> Callable[[Callable[P, ResponseReturnValue]], Callable[P, ResponseReturnValue]]:
    """Name a view for the request log and apply the endpoint's injected fault first."""

    def decorate(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            g.endpoint = name
            state = emulator_state()
            fault = state.faults.take(name)
            if fault is not None:
                if fault.latency or fault.hang:
                    state.faults.sleep(fault.latency + fault.hang)
                if fault.replaces_response:
                    return _fault_response(name, fault)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _fault_response(name: str, fault: Fault) -> ResponseReturnValue:
    status = fault.status or 200
    if fault.body is not None:
        default_type = "text/html; charset=utf-8" if name == "authorize" else "application/json"
        return Response(fault.body, status, content_type=fault.content_type or default_type)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if name == "authorize":
        raise PageError(status, phrase, "Something went wrong. Please try again later.")
    if name == "token":
        raise TokenEndpointError(
            status, "server_error" if status >= 500 else "invalid_request", phrase
        )
    raise ApiError(status, phrase)
