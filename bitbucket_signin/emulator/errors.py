"""The emulator's errors, each answered the way Bitbucket answers it."""

from __future__ import annotations

from typing import Any

from flask import jsonify, render_template
from flask.typing import ResponseReturnValue

from .faults import FaultError

UNAUTHENTICATED = "Token is invalid, expired, or not supported for this endpoint."
EXPIRED = "Access token expired."
MISSING_SCOPES = "Your credentials lack one or more required privilege scopes."
RATE_LIMITED = "Rate limit for this resource has been exceeded."
MISCONFIGURED = "This integration is misconfigured. Contact the vendor for assistance."


class TokenEndpointError(Exception):
    """An error of the token endpoint, answered as ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class ApiError(Exception):
    """A 2.0 API error answered with Bitbucket's ``{"type": "error", ...}`` envelope."""

    def __init__(self, status: int, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


class PageError(Exception):
    """An error shown as a Bitbucket-like HTML page; the browser is never redirected."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status, self.title, self.message = status, title, message


def token_endpoint_error(exc: TokenEndpointError) -> ResponseReturnValue:
    return jsonify(error=exc.error, error_description=exc.description), exc.status


def api_error(exc: ApiError) -> ResponseReturnValue:
    error: dict[str, Any] = {"message": exc.message}
    if exc.detail:
        error["detail"] = exc.detail
    return jsonify(type="error", error=error), exc.status


def page_error(exc: PageError) -> ResponseReturnValue:
    return render_template("emulator/error.html", error=exc), exc.status


def fault_error(exc: FaultError) -> ResponseReturnValue:
    return jsonify(error=str(exc)), 400
