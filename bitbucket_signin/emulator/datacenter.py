"""Bitbucket Data Center, played under its context path next to Cloud in the same emulator.

What it plays (see the project's reference notes on Data Center): the OAuth 2.0 provider at
``{base}/rest/oauth2/latest/authorize`` and ``…/token`` (PKCE S256, client credentials in the
form body only, the identical ``redirect_uri`` on every call, codes that live ``code_lifetime``
seconds on the emulator's clock, refresh tokens that rotate and take the old access token with
them), ``/plugins/servlet/applinks/whoami`` (the login name as plain text, empty when not
signed in), ``/rest/api/latest/users?filter=`` (paged, a substring of name, email or display
name, in file order) and ``/rest/api/latest/users/{slug}``, with Data Center's error body
``{"errors": [{"message": …}]}``. Faults use the endpoint names ``dc-authorize``, ``dc-token``,
``dc-whoami``, ``dc-users`` and ``dc-user``; ``/_emulator/datacenter/authorize-as/<name or id>``
grants without a browser, and ``PUT /_emulator/datacenter/links/<client id>`` (JSON
``{"secret", "redirect_url"}``) registers an application link until the next reset.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from flask import redirect as redirect_to
from flask.typing import ResponseReturnValue

from .api import initials_avatar
from .control import control_routes_for_loopback_peers_only
from .datacenter_accounts import DataCenterConfig, ServerConsumer, ServerUser
from .endpoints import endpoint
from .errors import PageError, TokenEndpointError
from .faults import FaultError
from .oauth import token_response, with_query
from .state import emulator_state, pkce_matches

TOKEN_LIFETIME = 3600
REFRESH_LIFETIME = 90 * 24 * 3600
PAGE_LIMIT = 25
MAX_PAGE_LIMIT = 1000
STATE_KEY = "bitbucket_emulator_datacenter"
FORM_TYPE = "application/x-www-form-urlencoded"
MISCONFIGURED = "The application link is not configured for this request."
NOT_AUTHENTICATED = "Authentication failed. Please check your credentials and try again."

blueprint = Blueprint("emulator_datacenter", __name__)
control = Blueprint("emulator_datacenter_control", __name__)
control.before_request(control_routes_for_loopback_peers_only)


class RestError(Exception):
    """A REST API error answered with Data Center's ``{"errors": [{"message"}]}`` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class _Code:
    consumer: str
    user_id: int
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float


@dataclass(frozen=True)
class _Grant:
    """An access and refresh token pair: refreshing ends both."""

    consumer: str
    user_id: int
    access_token: str
    refresh_token: str
    access_expires: float
    refresh_expires: float


class DataCenterState:
    """Codes and tokens of the emulated instance, on the emulator's clock."""

    def __init__(self, config: DataCenterConfig, now: Callable[[], float]) -> None:
        self.config = config
        self.now = now
        self.lock = threading.Lock()
        self.codes: dict[str, _Code] = {}
        self.by_access: dict[str, _Grant] = {}
        self.by_refresh: dict[str, _Grant] = {}
        self.links = dict(config.consumers)

    def add_link(self, link: ServerConsumer) -> None:
        """Register an incoming application link (until the next reset), as an admin would:
        tests give it the callback URL of an app on a free port."""
        with self.lock:
            self.links[link.key] = link

    def link(self, key: str) -> ServerConsumer | None:
        with self.lock:
            return self.links.get(key)

    def reset(self) -> None:
        """Forget codes and tokens, and links added at run time."""
        with self.lock:
            self.links = dict(self.config.consumers)
            self.codes.clear()
            self.by_access.clear()
            self.by_refresh.clear()

    def issue_code(
        self, consumer: ServerConsumer, user: ServerUser, params: Mapping[str, str]
    ) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = _Code(
                consumer=consumer.key,
                user_id=user.id,
                redirect_uri=params.get("redirect_uri", ""),
                code_challenge=params.get("code_challenge"),
                code_challenge_method=params.get("code_challenge_method"),
                expires=self.now() + self.config.code_lifetime,
            )
        return code

    def redeem_code(self, consumer: ServerConsumer, form: Mapping[str, str]) -> dict[str, Any]:
        """Tokens for a code; any attempt uses the code up."""
        with self.lock:
            code = self.codes.pop(form.get("code", ""), None)
            if code is None or code.consumer != consumer.key:
                raise TokenEndpointError(400, "invalid_grant", "Invalid authorization code")
            if code.expires <= self.now():
                raise TokenEndpointError(400, "invalid_grant", "Authorization code expired")
            if form.get("redirect_uri") != code.redirect_uri:
                raise TokenEndpointError(400, "invalid_grant", "Redirect URI mismatch")
            if code.code_challenge and not pkce_matches(
                code.code_challenge, code.code_challenge_method, form.get("code_verifier", "")
            ):
                raise TokenEndpointError(400, "invalid_grant", "PKCE verification failed")
            return self._issue(consumer, code.user_id)

    def refresh(self, consumer: ServerConsumer, form: Mapping[str, str]) -> dict[str, Any]:
        """New tokens; the old access and refresh tokens stop working."""
        with self.lock:
            old = self.by_refresh.get(form.get("refresh_token", ""))
            if old is None or old.consumer != consumer.key or old.refresh_expires <= self.now():
                raise TokenEndpointError(400, "invalid_grant", "Invalid refresh token")
            if form.get("redirect_uri") != consumer.redirect_url:
                raise TokenEndpointError(400, "invalid_grant", "Redirect URI mismatch")
            del self.by_refresh[old.refresh_token]
            self.by_access.pop(old.access_token, None)
            return self._issue(consumer, old.user_id)

    def _issue(self, consumer: ServerConsumer, user_id: int) -> dict[str, Any]:
        now = self.now()
        grant = _Grant(
            consumer=consumer.key,
            user_id=user_id,
            access_token=secrets.token_urlsafe(32),
            refresh_token=secrets.token_urlsafe(32),
            access_expires=now + TOKEN_LIFETIME,
            refresh_expires=now + REFRESH_LIFETIME,
        )
        self.by_access[grant.access_token] = grant
        self.by_refresh[grant.refresh_token] = grant
        return {
            "access_token": grant.access_token,
            "token_type": "bearer",
            "expires_in": TOKEN_LIFETIME,
            "refresh_token": grant.refresh_token,
            "created_at": int(now),
        }

    def user_of(self, access_token: str) -> ServerUser | None:
        """The user a live access token acts for."""
        with self.lock:
            grant = self.by_access.get(access_token)
            if grant is None or grant.access_expires <= self.now():
                return None
        return self.config.user_by_id(grant.user_id)


def install_datacenter(app: Flask, config: DataCenterConfig) -> None:
    """Serve Data Center under ``config.context_path`` of the emulator ``app``."""
    state = emulator_state(app)
    datacenter = DataCenterState(config, state.now)
    state.on_reset.append(datacenter.reset)
    app.extensions[STATE_KEY] = datacenter
    app.register_blueprint(blueprint, url_prefix=config.context_path)
    app.register_blueprint(control)


def datacenter_state(app: Flask | None = None) -> DataCenterState:
    state: DataCenterState = (app or current_app).extensions[STATE_KEY]
    return state


@blueprint.errorhandler(RestError)
def _rest_error(error: RestError) -> ResponseReturnValue:
    body = {"errors": [{"context": None, "message": error.message, "exceptionName": None}]}
    return jsonify(body), error.status


def _page_fault(status: int, phrase: str) -> Exception:
    return PageError(status, phrase, "Something went wrong. Please try again later.")


def _token_fault(status: int, phrase: str) -> Exception:
    return TokenEndpointError(
        status, "server_error" if status >= 500 else "invalid_request", phrase
    )


# --- OAuth ----------------------------------------------------------------------------------


def _check_authorize(params: Mapping[str, str]) -> ServerConsumer:
    consumer = datacenter_state().link(params.get("client_id", ""))
    if consumer is None:
        raise PageError(400, "Invalid client_id", MISCONFIGURED)
    if params.get("redirect_uri") != consumer.redirect_url:
        raise PageError(400, "Invalid redirect_uri", MISCONFIGURED)
    if params.get("response_type") != "code":
        raise PageError(400, "Unsupported response_type", MISCONFIGURED)
    if "code_challenge" in params and params.get("code_challenge_method") != "S256":
        raise PageError(400, "Unsupported code_challenge_method", MISCONFIGURED)
    return consumer


def _back_to_client(
    consumer: ServerConsumer, params: Mapping[str, str], **extra: str
) -> ResponseReturnValue:
    target = with_query(consumer.redirect_url, {**extra, "state": params.get("state")})
    return redirect_to(target, 302)


def _grant(consumer: ServerConsumer, who: str, params: Mapping[str, str]) -> ResponseReturnValue:
    state = datacenter_state()
    user = state.config.user_named(who) or (
        state.config.user_by_id(int(who)) if who.isdecimal() else None
    )
    if user is None:
        raise PageError(400, "Unknown user", f"There is no user {who!r}.")
    return _back_to_client(consumer, params, code=state.issue_code(consumer, user, params))


@blueprint.get("/rest/oauth2/latest/authorize")
@endpoint("dc-authorize", _page_fault)
def authorize_page() -> ResponseReturnValue:
    """The consent page: one button per user, and Deny."""
    consumer = _check_authorize(request.args)
    return render_template(
        "emulator/datacenter_authorize.html",
        consumer=consumer,
        users=datacenter_state().config.users,
        params=[(k, v) for k, v in request.args.items(multi=True) if k not in ("user", "action")],
        action=request.path,
    )


@blueprint.post("/rest/oauth2/latest/authorize")
@endpoint("dc-authorize", _page_fault)
def authorize_decision() -> ResponseReturnValue:
    """A button of the consent page: ``action=grant`` with ``user``, or ``action=deny``."""
    consumer = _check_authorize(request.form)
    if request.form.get("action") == "deny":
        return _back_to_client(consumer, request.form, error="access_denied")
    return _grant(consumer, request.form.get("user", ""), request.form)


@control.get("/_emulator/datacenter/authorize-as/<path:who>")
@endpoint("dc-authorize", _page_fault)
def authorize_as(who: str) -> ResponseReturnValue:
    """Grant as ``who`` (a login name or a numeric id) without a browser."""
    return _grant(_check_authorize(request.args), who, request.args)


@control.put("/_emulator/datacenter/links/<key>")
def put_link(key: str) -> ResponseReturnValue:
    """Register an incoming application link (an app's callback on a port chosen at run
    time): ``{"secret": …, "redirect_url": …, "name": …}``."""
    data = request.get_json(silent=True)
    fields = data if isinstance(data, dict) else {}
    secret, redirect_url = fields.get("secret"), fields.get("redirect_url")
    name = fields.get("name", key)
    if not all(isinstance(value, str) and value for value in (secret, redirect_url, name)):
        raise FaultError("a link needs a secret, a redirect_url and (optionally) a name")
    if not str(redirect_url).startswith(("http://", "https://")):
        raise FaultError("redirect_url must be an http(s) URL")
    datacenter_state().add_link(ServerConsumer(key, str(secret), str(redirect_url), str(name)))
    return jsonify(key=key, redirect_url=redirect_url)


def _client() -> ServerConsumer:
    """The link named by ``client_id``/``client_secret`` in the form body (no HTTP Basic)."""
    form = request.form
    consumer = datacenter_state().link(form.get("client_id", ""))
    if consumer is None or not secrets.compare_digest(
        consumer.secret.encode(), form.get("client_secret", "").encode()
    ):
        raise TokenEndpointError(401, "invalid_client", "Client authentication failed")
    return consumer


@blueprint.post("/rest/oauth2/latest/token")
@endpoint("dc-token", _token_fault)
def token() -> ResponseReturnValue:
    """``authorization_code`` and ``refresh_token`` grants, form-encoded only."""
    if request.mimetype != FORM_TYPE:
        raise TokenEndpointError(400, "invalid_request", f"Content-Type must be {FORM_TYPE}")
    consumer, state = _client(), datacenter_state()
    return token_response(
        lambda: state.redeem_code(consumer, request.form),
        lambda: state.refresh(consumer, request.form),
        unsupported="unsupported_grant_type",
    )


# --- who is signed in, and the users API ----------------------------------------------------


def _bearer_user() -> ServerUser | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return datacenter_state().user_of(value.strip())


def _signed_in() -> ServerUser:
    user = _bearer_user()
    if user is None:
        raise RestError(401, NOT_AUTHENTICATED)
    return user


@blueprint.get("/plugins/servlet/applinks/whoami")
@endpoint("dc-whoami", RestError)
def whoami() -> ResponseReturnValue:
    """The login name as plain text (and a newline); empty, still 200, when not signed in."""
    user = _bearer_user()
    response = Response(f"{user.name}\n" if user else "", content_type="text/plain")
    if user is not None:
        response.headers["X-AUSERNAME"] = user.name
    return response


def _user_json(user: ServerUser) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": user.name,
        "id": user.id,
        "displayName": user.display_name,
        "active": user.active,
        "slug": user.slug,
        "type": user.type,
        "links": {"self": [{"href": f"{request.host_url.rstrip('/')}{_base()}/users/{user.slug}"}]},
    }
    if user.email is not None:
        body["emailAddress"] = user.email
    size = request.args.get("avatarSize", type=int)
    if size:
        body["avatarUrl"] = f"{_base()}/users/{user.slug}/avatar.png?s={size}"
    return body


def _base() -> str:
    return datacenter_state().config.context_path


def _int_arg(name: str, default: int, maximum: int) -> int:
    value = request.args.get(name, type=int)
    return default if value is None or value < 0 else min(value, maximum)


@blueprint.get("/rest/api/latest/users")
@endpoint("dc-users", RestError)
def users() -> ResponseReturnValue:
    """Users whose name, email or display name holds ``filter``, paged with ``start``/``limit``."""
    _signed_in()
    text = request.args.get("filter", "")
    found = [u for u in datacenter_state().config.users if u.matches_filter(text)]
    start = _int_arg("start", 0, len(found))
    limit = _int_arg("limit", PAGE_LIMIT, MAX_PAGE_LIMIT) or PAGE_LIMIT
    page = found[start : start + limit]
    last = start + limit >= len(found)
    body: dict[str, Any] = {
        "size": len(page),
        "limit": limit,
        "isLastPage": last,
        "values": [_user_json(user) for user in page],
        "start": start,
    }
    if not last:
        body["nextPageStart"] = start + len(page)
    return jsonify(body)


@blueprint.get("/rest/api/latest/users/<slug>")
@endpoint("dc-user", RestError)
def user(slug: str) -> ResponseReturnValue:
    """One user by slug; a name that is not a slug is a 404, as on a real instance."""
    _signed_in()
    found = datacenter_state().config.user_by_slug(slug)
    if found is None:
        raise RestError(404, f"User {slug} does not exist.")
    return jsonify(_user_json(found))


@blueprint.get("/users/<slug>/avatar.png")
def avatar(slug: str) -> ResponseReturnValue:
    """A generated avatar (SVG, whatever the name says)."""
    found = datacenter_state().config.user_by_slug(slug)
    if found is None:
        return Response("Not found", 404, content_type="text/plain")
    return initials_avatar(found.display_name, found.slug)
