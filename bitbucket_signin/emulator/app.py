"""The emulator's Flask app: OAuth endpoints, the 2.0 user API and the /_emulator control API."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from markupsafe import escape

from .accounts import Account, Consumer, EmulatorConfig
from .faults import Fault, FaultError, FaultRegistry, check_endpoint, fault_from_dict
from .loopback import is_loopback

CODE_LIFETIME = 600
TOKEN_LIFETIME = 7200
REFRESH_LIFETIME = 90 * 24 * 3600
RATE_WINDOW = 3600
LOG_SIZE = 1000
STATE_KEY = "bitbucket_emulator"

UNAUTHENTICATED = "Token is invalid, expired, or not supported for this endpoint."
EXPIRED = "Access token expired."
MISSING_SCOPES = "Your credentials lack one or more required privilege scopes."
RATE_LIMITED = "Rate limit for this resource has been exceeded."
MISCONFIGURED = "This integration is misconfigured. Contact the vendor for assistance."
SCOPE_DESCRIPTIONS = {
    "account": "Read your account information",
    "email": "Read your email addresses",
    "repository": "Read your repositories",
    "team": "Read your workspace membership",
}
CONTROL_PARAMS = ("account", "action")
CONTROL_PREFIX = "/_emulator/"

P = ParamSpec("P")
bp = Blueprint("emulator", __name__)


class OAuthError(Exception):
    """An OAuth error answered as ``{"error", "error_description"}``."""

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


@dataclass(frozen=True)
class AuthorizationCode:
    """A code issued at the authorize step, bound to what the token step must repeat."""

    consumer: str
    account: str
    redirect_uri: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float


@dataclass(frozen=True)
class Token:
    """An access or refresh token: who it acts for, through which consumer, until when."""

    consumer: str
    account: str
    scopes: tuple[str, ...]
    expires: float


class EmulatorState:
    """Codes, tokens, rate counters and the request log, guarded by one lock."""

    def __init__(self, config: EmulatorConfig, faults: FaultRegistry) -> None:
        self.config = config
        self.faults = faults
        self.lock = threading.Lock()
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.calls: dict[str, deque[float]] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.clock_offset = 0.0
        self.on_reset: list[Callable[[], None]] = []  # what else the reset forgets

    def now(self) -> float:
        """The emulator's clock: wall time plus any offset set through /_emulator/clock."""
        return time.time() + self.clock_offset

    def reset(self) -> None:
        """Forget codes, tokens, rate counters, faults, the log and the clock offset."""
        with self.lock:
            for store in (self.codes, self.access_tokens, self.refresh_tokens, self.calls):
                store.clear()
            self.log.clear()
            self.clock_offset = 0.0
        self.faults.clear()
        for forget in self.on_reset:
            forget()

    def issue_code(self, consumer: Consumer, account: Account, params: Mapping[str, str]) -> str:
        """A new single-use authorization code."""
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = AuthorizationCode(
                consumer=consumer.key,
                account=account.uuid,
                redirect_uri=params.get("redirect_uri"),
                code_challenge=params.get("code_challenge"),
                code_challenge_method=params.get("code_challenge_method"),
                expires=self.now() + CODE_LIFETIME,
            )
        return code

    def redeem_code(self, consumer: Consumer, form: Mapping[str, str]) -> dict[str, Any]:
        """Exchange an authorization code (used up by any attempt) for tokens."""
        with self.lock:
            code = self.codes.get(form.get("code", ""))
            if code is None or code.consumer != consumer.key:
                raise OAuthError(400, "invalid_grant", "The authorization code is invalid")
            del self.codes[form["code"]]
            if code.expires <= self.now():
                raise OAuthError(400, "invalid_grant", "The authorization code has expired")
            if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
                raise OAuthError(400, "invalid_grant", "redirect_uri does not match")
            verifier = form.get("code_verifier")
            if (
                code.code_challenge
                and verifier is not None
                and not pkce_matches(code.code_challenge, code.code_challenge_method, verifier)
            ):
                raise OAuthError(400, "invalid_grant", "code_verifier does not match")
            return self._issue_tokens(consumer, code.account, "authorization_code")

    def refresh(self, consumer: Consumer, form: Mapping[str, str]) -> dict[str, Any]:
        """Exchange a refresh token for new tokens; the old refresh token stops working."""
        with self.lock:
            old = self.refresh_tokens.get(form.get("refresh_token", ""))
            if old is None or old.consumer != consumer.key or old.expires <= self.now():
                raise OAuthError(400, "invalid_grant", "Invalid refresh_token")
            del self.refresh_tokens[form["refresh_token"]]
            return self._issue_tokens(consumer, old.account, "refresh_token")

    def _issue_tokens(self, consumer: Consumer, account: str, grant_type: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.now()
        self.access_tokens[access] = Token(
            consumer.key, account, consumer.scopes, now + TOKEN_LIFETIME
        )
        self.refresh_tokens[refresh] = Token(
            consumer.key, account, consumer.scopes, now + REFRESH_LIFETIME
        )
        return {
            "access_token": access,
            consumer.token_scope_field: " ".join(consumer.scopes),
            "expires_in": TOKEN_LIFETIME,
            "token_type": "bearer",
            "state": grant_type,
            "refresh_token": refresh,
        }

    def authenticate(self, access_token: str) -> Token:
        """The token's record, counting the call against its consumer's hourly rate limit."""
        with self.lock:
            token = self.access_tokens.get(access_token)
            if token is None:
                raise ApiError(401, UNAUTHENTICATED)
            now = self.now()
            if token.expires <= now:
                raise ApiError(401, EXPIRED)
            calls = self.calls.setdefault(token.consumer, deque())
            while calls and calls[0] <= now - RATE_WINDOW:
                calls.popleft()
            if len(calls) >= self.config.consumers[token.consumer].rate_limit:
                raise ApiError(429, RATE_LIMITED)
            calls.append(now)
            return token

    def record(self, entry: dict[str, Any]) -> None:
        """Append to the bounded request log."""
        with self.lock:
            self.log.append(entry)

    def clear_log(self) -> None:
        """Empty the request log."""
        with self.lock:
            self.log.clear()

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The logged requests, oldest first, optionally of one endpoint only."""
        with self.lock:
            return [e for e in self.log if endpoint is None or e["endpoint"] == endpoint]


def create_app(config: EmulatorConfig, faults: Mapping[str, Fault] | None = None) -> Flask:
    """The emulator's Flask app serving ``config``, with ``faults`` active from the start."""
    app = Flask(__name__, template_folder=str(Path(__file__).parent / "templates"))
    registry = FaultRegistry()
    for name, fault in (faults or {}).items():
        registry.set(name, fault)
    app.extensions[STATE_KEY] = EmulatorState(config, registry)
    app.register_blueprint(bp)
    app.register_error_handler(OAuthError, _oauth_error)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(PageError, _page_error)
    app.register_error_handler(FaultError, _fault_error)
    return app


def emulator_state(app: Flask | None = None) -> EmulatorState:
    """The state of ``app`` (default: the current app)."""
    state: EmulatorState = (app or current_app).extensions[STATE_KEY]
    return state


def pkce_matches(challenge: str | None, method: str | None, verifier: str) -> bool:
    """Whether ``verifier`` answers the PKCE ``challenge`` made with ``method``."""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    elif method in (None, "plain"):
        expected = verifier
    else:
        return False
    return hmac.compare_digest(expected.encode(), (challenge or "").encode())


def _oauth_error(exc: OAuthError) -> ResponseReturnValue:
    return jsonify(error=exc.error, error_description=exc.description), exc.status


def _api_error(exc: ApiError) -> ResponseReturnValue:
    error: dict[str, Any] = {"message": exc.message}
    if exc.detail:
        error["detail"] = exc.detail
    return jsonify(type="error", error=error), exc.status


def _page_error(exc: PageError) -> ResponseReturnValue:
    return render_template("emulator/error.html", error=exc), exc.status


def _fault_error(exc: FaultError) -> ResponseReturnValue:
    return jsonify(error=str(exc)), 400


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
        raise OAuthError(status, "server_error" if status >= 500 else "invalid_request", phrase)
    raise ApiError(status, phrase)


# --- OAuth: authorize ---------------------------------------------------------------------


def _check_authorize(params: Mapping[str, str]) -> Consumer:
    consumer = emulator_state().config.consumers.get(params.get("client_id", ""))
    if consumer is None:
        raise PageError(400, "Invalid client_id", MISCONFIGURED)
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is not None and not redirect_uri.startswith(consumer.callback_url):
        raise PageError(400, "Invalid redirect_uri", MISCONFIGURED)
    if params.get("response_type") != "code":
        raise PageError(400, "Unsupported response_type", MISCONFIGURED)
    return consumer


def with_query(url: str, params: Mapping[str, str | None]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _back_to_client(
    consumer: Consumer, params: Mapping[str, str], **extra: str
) -> ResponseReturnValue:
    target = params.get("redirect_uri") or consumer.callback_url
    return redirect(with_query(target, {**extra, "state": params.get("state")}), 302)


def _grant(consumer: Consumer, who: str, params: Mapping[str, str]) -> ResponseReturnValue:
    state = emulator_state()
    account = state.config.find_account(who)
    if account is None:
        raise PageError(400, "Unknown account", f"There is no account {who!r}.")
    return _back_to_client(consumer, params, code=state.issue_code(consumer, account, params))


@bp.get("/site/oauth2/authorize")
@endpoint("authorize")
def authorize_page() -> ResponseReturnValue:
    """The consent page: one form per account plus Deny."""
    consumer = _check_authorize(request.args)
    return render_template(
        "emulator/authorize.html",
        consumer=consumer,
        scopes=[(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in consumer.scopes],
        accounts=emulator_state().config.accounts,
        params=[(k, v) for k, v in request.args.items(multi=True) if k not in CONTROL_PARAMS],
        action=url_for("emulator.authorize_decision"),
        avatar_url=_avatar_url,
    )


@bp.post("/site/oauth2/authorize")
@endpoint("authorize")
def authorize_decision() -> ResponseReturnValue:
    """A button of the consent page: ``action=grant`` with ``account``, or ``action=deny``."""
    consumer = _check_authorize(request.form)
    if request.form.get("action") == "deny":
        return _back_to_client(
            consumer,
            request.form,
            error="access_denied",
            error_description="The user denied access to their account.",
        )
    return _grant(consumer, request.form.get("account", ""), request.form)


@bp.get("/_emulator/authorize-as/<path:who>")
@endpoint("authorize")
def authorize_as(who: str) -> ResponseReturnValue:
    """Grant as ``who`` (uuid, account_id or username) without a browser."""
    return _grant(_check_authorize(request.args), who, request.args)


# --- OAuth: token -------------------------------------------------------------------------


def _client() -> Consumer:
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        key, secret = auth.username, auth.password
    else:
        key, secret = request.form.get("client_id"), request.form.get("client_secret")
    consumer = emulator_state().config.consumers.get(key or "")
    if consumer is None or not hmac.compare_digest(
        consumer.secret.encode(), (secret or "").encode()
    ):
        raise OAuthError(
            401,
            "unauthorized_client",
            "Requests must be authenticated using OAuth client credentials",
        )
    return consumer


@bp.post("/site/oauth2/access_token")
@endpoint("token")
def access_token() -> ResponseReturnValue:
    """The token endpoint: ``authorization_code`` and ``refresh_token`` grants."""
    consumer, state = _client(), emulator_state()
    return token_response(
        lambda: state.redeem_code(consumer, request.form),
        lambda: state.refresh(consumer, request.form),
        unsupported="invalid_grant",
    )


def token_response(
    redeem: Callable[[], dict[str, Any]], refresh: Callable[[], dict[str, Any]], unsupported: str
) -> Response:
    """The token endpoint's answer to the form's ``grant_type``; ``unsupported`` is the error
    code for any other grant type."""
    grant_type = request.form.get("grant_type")
    if grant_type == "authorization_code":
        body = redeem()
    elif grant_type == "refresh_token":
        body = refresh()
    else:
        raise OAuthError(400, unsupported, f"Unsupported grant type: {grant_type}")
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- API 2.0 ------------------------------------------------------------------------------


def _caller(*scopes: str) -> tuple[Consumer, Account]:
    """The consumer and account of the Bearer token; any of ``scopes`` is required."""
    if "access_token" in request.args or "access_token" in request.form:
        raise ApiError(401, UNAUTHENTICATED)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, UNAUTHENTICATED)
    state = emulator_state()
    token = state.authenticate(value.strip())
    if not set(scopes) & set(token.scopes):
        raise ApiError(403, MISSING_SCOPES)
    account = state.config.find_account(token.account)
    if account is None:
        raise ApiError(401, UNAUTHENTICATED)
    return state.config.consumers[token.consumer], account


def _int_arg(name: str, default: int, maximum: int | None = None) -> int:
    value = request.args.get(name, type=int)
    if value is None or value < 1:
        return default
    return min(value, maximum) if maximum else value


def _page_url(page: int) -> str:
    return f"{request.base_url}?{urlencode({**request.args.to_dict(), 'page': page})}"


def _paginate(values: list[dict[str, Any]]) -> Response:
    pagelen, page = _int_arg("pagelen", 10, 100), _int_arg("page", 1)
    start = (page - 1) * pagelen
    body: dict[str, Any] = {
        "pagelen": pagelen,
        "page": page,
        "size": len(values),
        "values": values[start : start + pagelen],
    }
    if start + pagelen < len(values):
        body["next"] = _page_url(page + 1)
    if page > 1:
        body["previous"] = _page_url(page - 1)
    return jsonify(body)


def _avatar_url(account: Account) -> str:
    return account.avatar or url_for(
        "emulator.avatar", account_id=account.account_id, _external=True
    )


@bp.get("/2.0/user")
@endpoint("user")
def user() -> ResponseReturnValue:
    """The signed-in user."""
    _, account = _caller("account")
    body: dict[str, Any] = {"type": "user", "uuid": account.uuid, "account_id": account.account_id}
    if account.username:
        body["username"] = account.username
    body |= {
        "nickname": account.nickname,
        "display_name": account.display_name,
        "account_status": account.account_status,
        "is_staff": False,
        "has_2fa_enabled": None,
        "created_on": account.created_on,
        "links": {
            "html": {"href": f"{request.host_url}{quote(account.uuid)}/"},
            "avatar": {"href": _avatar_url(account)},
        },
    }
    return jsonify(body)


@bp.get("/2.0/user/emails")
@endpoint("emails")
def emails() -> ResponseReturnValue:
    """The user's addresses, confirmed or not (paginated)."""
    _, account = _caller("email", "account")
    return _paginate(
        [
            {
                "type": "email",
                "email": e.email,
                "is_primary": e.is_primary,
                "is_confirmed": e.is_confirmed,
            }
            for e in account.emails
        ]
    )


@bp.get("/2.0/user/workspaces")
@endpoint("workspaces")
def workspaces() -> ResponseReturnValue:
    """The user's workspace memberships (paginated)."""
    consumer, account = _caller("account")
    if not consumer.workspace_membership:
        raise ApiError(403, MISSING_SCOPES, "This consumer lacks 'Workspace membership: Read'.")
    return _paginate(
        [
            {
                "type": "workspace_access",
                "administrator": w.administrator,
                "workspace": {"type": "workspace_base", "slug": w.slug, "uuid": w.uuid},
            }
            for w in account.workspaces
        ]
    )


@bp.get("/2.0/workspaces")
@bp.get("/2.0/user/permissions/workspaces")
def removed_workspace_endpoints() -> ResponseReturnValue:
    """The endpoints removed by CHANGE-2770."""
    raise ApiError(
        410,
        "CHANGE-2770 - Functionality has been deprecated",
        "This endpoint was removed; use GET /2.0/user/workspaces instead.",
    )


@bp.route("/2.0/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def api_not_found(rest: str) -> ResponseReturnValue:
    """Any other 2.0 path."""
    raise ApiError(404, "Resource not found", f"There is no API hosted at /2.0/{rest}.")


@bp.get("/avatar/<account_id>.svg")
def avatar(account_id: str) -> ResponseReturnValue:
    """A generated avatar: the account's initials on a colour derived from its id."""
    account = next(
        (a for a in emulator_state().config.accounts if a.account_id == account_id), None
    )
    if account is None:
        return Response("Not found", 404, content_type="text/plain")
    return initials_avatar(account.display_name, account_id)


def initials_avatar(display_name: str, seed: str) -> Response:
    """An SVG avatar: the name's initials on a colour derived from ``seed``."""
    initials = "".join(word[0] for word in display_name.split()[:2]).upper()
    hue = int(hashlib.sha256(seed.encode()).hexdigest()[:4], 16) % 360
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">'
        f'<rect width="128" height="128" fill="hsl({hue},55%,42%)"/>'
        '<text x="64" y="64" dy=".35em" text-anchor="middle" font-family="sans-serif" '
        f'font-size="52" fill="#fff">{escape(initials)}</text></svg>'
    )
    return Response(svg, content_type="image/svg+xml")


# --- control API --------------------------------------------------------------------------


@bp.before_app_request
def control_routes_for_loopback_peers_only() -> ResponseReturnValue | None:
    """Refuse ``/_emulator/`` to any TCP peer not on this machine.

    ``remote_addr`` is the socket's peer here (nothing rewrites it from X-Forwarded-For).
    """
    if request.path.startswith(CONTROL_PREFIX) and not is_loopback(request.remote_addr):
        return jsonify(error="The emulator's control routes answer only on loopback."), 403
    return None


@bp.get("/_emulator/health")
def health() -> ResponseReturnValue:
    """Liveness."""
    return Response("ok", content_type="text/plain")


@bp.get("/_emulator/faults")
def list_faults() -> ResponseReturnValue:
    """The active faults by endpoint name."""
    return jsonify(faults=emulator_state().faults.snapshot())


@bp.put("/_emulator/faults/<name>")
def set_fault(name: str) -> ResponseReturnValue:
    """Install a fault from a JSON body."""
    fault = fault_from_dict(request.get_json(silent=True))
    emulator_state().faults.set(check_endpoint(name), fault)
    return jsonify(endpoint=name, fault=fault.to_json())


@bp.delete("/_emulator/faults/<name>")
@bp.delete("/_emulator/faults")
def clear_faults(name: str | None = None) -> ResponseReturnValue:
    """Remove one endpoint's fault, or all faults."""
    emulator_state().faults.clear(name)
    return "", 204


@bp.get("/_emulator/requests")
def list_requests() -> ResponseReturnValue:
    """The request log, oldest first; ``?endpoint=token`` filters."""
    return jsonify(requests=emulator_state().requests(request.args.get("endpoint")))


@bp.delete("/_emulator/requests")
def clear_requests() -> ResponseReturnValue:
    """Empty the request log."""
    emulator_state().clear_log()
    return "", 204


@bp.post("/_emulator/reset")
def reset() -> ResponseReturnValue:
    """Forget codes, tokens, rate counters, faults, the log and the clock offset."""
    emulator_state().reset()
    return "", 204


@bp.post("/_emulator/clock")
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


def _client_auth_kind() -> str | None:
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return "basic"
    return "body" if "client_secret" in request.form else None


@bp.after_app_request
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
            "client_auth": _client_auth_kind(),
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
