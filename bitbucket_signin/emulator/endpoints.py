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
    name: str, error_for_status: Callable[[int, str], Exception] | None = None
) -> Callable[[Callable[P, ResponseReturnValue]], Callable[P, ResponseReturnValue]]:
    """Name a view for the request log and apply the endpoint's injected fault first.

    ``error_for_status(status, phrase)`` is the error a ``status`` fault raises (default:
    Bitbucket Cloud's for the endpoint).
    """

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
                    return _fault_response(name, fault, error_for_status)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _fault_response(
    name: str, fault: Fault, error_for_status: Callable[[int, str], Exception] | None
) -> ResponseReturnValue:
    status = fault.status or 200
    if fault.body is not None:
        page = name.endswith("authorize")
        default_type = "text/html; charset=utf-8" if page else "application/json"
        return Response(fault.body, status, content_type=fault.content_type or default_type)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if error_for_status is not None:
        raise error_for_status(status, phrase)
    if name == "authorize":
        raise PageError(status, phrase, "Something went wrong. Please try again later.")
    if name == "token":
        raise TokenEndpointError(
            status, "server_error" if status >= 500 else "invalid_request", phrase
        )
    raise ApiError(status, phrase)
