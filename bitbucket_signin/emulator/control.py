"""The control routes under ``/_emulator/`` (loopback peers only), and the request log."""

from __future__ import annotations

import time

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from .endpoints import endpoint
from .faults import FaultError, check_endpoint, fault_from_dict
from .loopback import is_loopback
from .oauth import check_authorize, client_credentials, grant
from .state import emulator_state

CONTROL_PREFIX = "/_emulator/"
control = Blueprint("control", __name__)


@control.before_request
def control_routes_for_loopback_peers_only() -> ResponseReturnValue | None:
    """Refuse ``/_emulator/`` to any TCP peer not on this machine.

    ``remote_addr`` is the socket's peer here (nothing rewrites it from X-Forwarded-For).
    """
    if request.path.startswith(CONTROL_PREFIX) and not is_loopback(request.remote_addr):
        return jsonify(error="The emulator's control routes answer only on loopback."), 403
    return None


@control.get("/_emulator/health")
def health() -> ResponseReturnValue:
    """Liveness."""
    return Response("ok", content_type="text/plain")


@control.get("/_emulator/authorize-as/<path:who>")
@endpoint("authorize")
def authorize_as(who: str) -> ResponseReturnValue:
    """Grant as ``who`` (uuid, account_id or username) without a browser."""
    return grant(check_authorize(request.args), who, request.args)


@control.get("/_emulator/faults")
def list_faults() -> ResponseReturnValue:
    """The active faults by endpoint name."""
    return jsonify(faults=emulator_state().faults.snapshot())


@control.put("/_emulator/faults/<name>")
def set_fault(name: str) -> ResponseReturnValue:
    """Install a fault from a JSON body."""
    fault = fault_from_dict(request.get_json(silent=True))
    emulator_state().faults.set(check_endpoint(name), fault)
    return jsonify(endpoint=name, fault=fault.to_json())


@control.delete("/_emulator/faults/<name>")
@control.delete("/_emulator/faults")
def clear_faults(name: str | None = None) -> ResponseReturnValue:
    """Remove one endpoint's fault, or all faults."""
    emulator_state().faults.clear(name)
    return "", 204


@control.get("/_emulator/requests")
def list_requests() -> ResponseReturnValue:
    """The request log, oldest first; ``?endpoint=token`` filters."""
    return jsonify(requests=emulator_state().requests(request.args.get("endpoint")))


@control.delete("/_emulator/requests")
def clear_requests() -> ResponseReturnValue:
    """Empty the request log."""
    emulator_state().clear_log()
    return "", 204


@control.post("/_emulator/reset")
def reset() -> ResponseReturnValue:
    """Forget codes, tokens, rate counters, faults, the log and the clock offset."""
    emulator_state().reset()
    return "", 204


@control.post("/_emulator/clock")
def advance_clock() -> ResponseReturnValue:
    """Move the emulator's clock forward by ``{"advance": seconds}`` (expiry tests)."""
    data = request.get_json(silent=True)
    advance = data.get("advance") if isinstance(data, dict) else None
    if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
        raise FaultError("advance must be a non-negative number of seconds")
    state = emulator_state()
    with state.lock:
        state.clock_offset += advance
        return jsonify(offset=state.clock_offset)


@control.put("/_emulator/token-lifetime")
def set_token_lifetime() -> ResponseReturnValue:
    """Access tokens issued from now on live ``{"seconds": n}`` (expiry tests); reset
    restores Bitbucket's two hours."""
    data = request.get_json(silent=True)
    seconds = data.get("seconds") if isinstance(data, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise FaultError("seconds must be a positive whole number")
    state = emulator_state()
    with state.lock:
        state.token_lifetime = seconds
    return jsonify(seconds=seconds)


@control.post("/_emulator/revoke/<path:who>")
def revoke_tokens(who: str) -> ResponseReturnValue:
    """Revoke every access and refresh token of the account ``who`` (uuid, id or username)."""
    state = emulator_state()
    account = state.config.find_account(who)
    if account is None:
        raise FaultError(f"there is no account {who!r}")
    return jsonify(revoked=state.revoke(account.uuid))


@control.after_app_request
def log_request(response: Response) -> Response:
    """Log API and OAuth calls (never secret or token values)."""
    name = g.get("endpoint")
    if name is None and request.path.startswith(CONTROL_PREFIX):
        return response
    auth = request.authorization
    form = request.form
    emulator_state().record(
        {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "endpoint": name,
            "status": response.status_code,
            "client_auth": client_credentials()[0],
            "bearer": auth is not None and auth.type == "bearer",
            "content_type": request.mimetype or None,
            "query_fields": sorted(request.args),
            "form_fields": sorted(form),
            "grant_type": form.get("grant_type"),
            "redirect_uri": request.values.get("redirect_uri"),
            "code_challenge": "code_challenge" in request.values,
            "code_verifier": "code_verifier" in form,
        }
    )
    return response
