"""Backstage's frontend protocol beside the server-rendered flow: the parameters of ``/start``,
the popup page and the redirect flow after the callback, the JSON answer, Backstage's error
bodies, and CORS for ``/refresh`` and ``/logout`` (from the allowed app origins only)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from flask import Response, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from .config import Settings
from .errors import SignInError
from .identity_token import SigningKeys
from .redirects import bare_origin, url_origin
from .session import CatalogUser

FLOWS = ("popup", "redirect")
XHR_HEADER = "X-Requested-With"
XHR_VALUE = "XMLHttpRequest"
# Kept with the pending sign-in in the session (a cookie of at most 4 KB): an app origin is
# one of the configured ones; the scope and the page to return to share the room a ``next``
# has in the server-rendered flow.
MAX_SCOPE_LENGTH = 100
MAX_KEPT_TEXT = 512
_SCOPE_SEPARATORS = re.compile(r"[\s,|]+")
# A frontend sign-in's state ends with its flow's initial and its origin's place among the
# allowed ones: a callback whose pending sign-in is gone (spent, expired with its Redis
# session, cleared by another sign-in) can still answer in the popup, or back at the app.
_STATE_MARK = re.compile(r"\.([pr])(\d{1,4})\Z")
_ERROR_NAMES = {400: "InputError", 401: "AuthenticationError", 403: "NotAllowedError"}
_PREFLIGHT_MAX_AGE = "600"
_POPUP_PAGE = (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Signing in</title>'
    "</head><body><script>{script}</script></body></html>\n"
)
# The only script of the popup page; the CSP allows exactly this text by its hash.
_POPUP_SCRIPT = (
    "(function(){{"
    "var origin=decodeURIComponent('{origin}');"
    "var message=JSON.parse(decodeURIComponent('{message}'));"
    "var target=window.opener||window.parent;"
    "target.postMessage({{type:'config_info',targetOrigin:origin}},'*');"
    "target.postMessage(message,origin);"
    "setTimeout(function(){{window.close();}},100);"
    "}})();"
)


@dataclass(frozen=True)
class FrontendSignIn:
    """A sign-in a Backstage frontend started: what the callback needs to answer it."""

    flow: str
    origin: str
    scope: str
    env: str
    redirect_url: str | None = None

    def pending_data(self) -> dict[str, Any]:
        """Kept with Authlib's pending state (so it expires and is spent with it)."""
        return {"frontend": asdict(self)}

    @classmethod
    def from_pending(cls, data: Mapping[str, Any]) -> FrontendSignIn | None:
        kept = data.get("frontend")
        if not isinstance(kept, Mapping):
            return None
        try:
            return cls(**kept)
        except TypeError:
            return None

    @classmethod
    def popup_of(cls, args: Mapping[str, str]) -> FrontendSignIn | None:
        """The popup sign-in ``/start``'s parameters ask for, before any of them is checked:
        what a refusal of that ``/start`` answers (in the popup, to an allowed origin)."""
        if args.get("flow") != "popup":
            return None
        return cls("popup", bare_origin(args.get("origin")) or "", "", "")

    def state(self, settings: Settings) -> str:
        """An unguessable OAuth state (as Authlib's: 30 characters) marked with the flow and
        the origin's place among the allowed origins."""
        place = sorted(settings.allowed_origins).index(self.origin)
        return f"{secrets.token_urlsafe(22)}.{self.flow[0]}{place}"

    @classmethod
    def from_state(cls, state: str, settings: Settings) -> FrontendSignIn | None:
        """The flow and origin a callback's ``state`` claims (anyone may write one: only a
        failure is ever answered to it, and only to an allowed origin)."""
        mark = _STATE_MARK.search(state)
        if mark is None:
            return None
        origins = sorted(settings.allowed_origins)
        place = int(mark[2])
        origin = origins[place] if place < len(origins) else ""
        return cls("popup" if mark[1] == "p" else "redirect", origin, "", "")

    def check_still_allowed(self, settings: Settings) -> None:
        """Checked again at the callback (the allowed origins may have changed since
        ``/start``, on this instance or on another sharing the secret): a 403 when the app
        origin, or the page to return to, is no longer allowed."""
        kept = (self.origin, url_origin(self.redirect_url) if self.redirect_url else self.origin)
        if not all(origin in settings.allowed_origins for origin in kept):
            raise SignInError(
                "This app is no longer allowed to sign in here: its origin is not among the "
                "allowed app origins.",
                status=403,
                reason="OriginNotAllowed",
            )


def frontend_sign_in(args: Mapping[str, str], settings: Settings) -> FrontendSignIn | None:
    """Backstage's ``/start`` parameters checked; ``None`` without ``flow`` (the
    server-rendered sign-in). Raises a ``SignInError``: 400 for a bad ``flow``, ``env`` or
    ``scope``, 403 for an ``origin`` or ``redirectUrl`` off the allowed app origins."""
    flow = args.get("flow")
    if flow is None:
        return None
    if flow not in FLOWS:
        raise SignInError("The sign-in flow must be popup or redirect.", status=400)
    check_env(args.get("env"), settings, required=True)
    origin = bare_origin(args.get("origin"))
    if origin is None or origin not in settings.allowed_origins:
        raise SignInError(
            "This app is not allowed to sign in here: its origin is not among the allowed "
            "app origins.",
            status=403,
        )
    scope = args.get("scope", "")
    # Scope names are printable ASCII (RFC 6749, 3.3); any other character would take up to
    # twelve bytes of the cookie as JSON, and three pending sign-ins would pass its 4 KB.
    if len(scope) > MAX_SCOPE_LENGTH or not (scope.isascii() and scope.isprintable()):
        raise SignInError(
            f"The scope must be at most {MAX_SCOPE_LENGTH} printable ASCII characters.",
            status=400,
        )
    redirect_url = None
    if flow == "redirect":
        redirect_url = args.get("redirectUrl")
        if not redirect_url:
            raise SignInError("The redirect flow needs a redirectUrl.", status=400)
        if url_origin(redirect_url) not in settings.allowed_origins:
            raise SignInError("The page to return to is not on an allowed app origin.", status=403)
        if len(redirect_url) + len(scope) + len(origin) > MAX_KEPT_TEXT:
            redirect_url = app_page(settings, origin)
    return FrontendSignIn(flow, origin, scope, settings.environment, redirect_url)


def check_env(value: str | None, settings: Settings, *, required: bool) -> None:
    """``env`` must name the configured environment (Backstage's ``auth.environment``)."""
    if value is None and not required:
        return
    if value != settings.environment:
        problem = "is missing" if value is None else f"{value[:40]!r} is not this server's"
        raise SignInError(f"The environment (env) {problem}.", status=400)


def app_page(settings: Settings, origin: str) -> str:
    """The app's base URL (``app.baseUrl``) when it is on ``origin``, else that origin's root."""
    base = settings.app_base_url
    return base if base and url_origin(base) == origin else origin + "/"


def answer_success(sign_in: FrontendSignIn, response: dict[str, Any]) -> BaseResponse:
    """The callback's answer to a frontend sign-in that worked."""
    if sign_in.flow == "redirect" and sign_in.redirect_url:
        return redirect(sign_in.redirect_url)
    return popup_page(sign_in.origin, {"type": "authorization_response", "response": response})


def answer_failure(sign_in: FrontendSignIn, error: SignInError, settings: Settings) -> BaseResponse:
    """The answer to a frontend sign-in that failed: the popup's message (which closes it),
    or back to the app with ``?error=``; to the sign-in's origin while it is allowed, else
    (as Backstage does) to the app base URL's, else to this site's own (``/``)."""
    origin = reply_origin(sign_in.origin, settings)
    if sign_in.flow == "redirect":
        page = app_page(settings, origin) if origin else "/"
        joiner = "&" if urlsplit(page).query else "?"
        return redirect(page + joiner + urlencode({"error": error.message}))
    body = {"name": error_name(error.status), "message": error.message}
    return popup_page(origin or "/", {"type": "authorization_response", "error": body})


def reply_origin(origin: str, settings: Settings) -> str | None:
    """Where an answer for ``origin`` may go: ``origin`` itself while it is allowed, else the
    app base URL's origin (a page elsewhere receives nothing; Backstage's frontend reports
    "Incorrect app origin, expected …" naming it), else ``None``: none of the apps'."""
    if origin in settings.allowed_origins:
        return origin
    return url_origin(settings.app_base_url)


def popup_page(origin: str, message: dict[str, Any]) -> Response:
    """The page that hands ``message`` to the window that opened the popup, at ``origin``
    only, and closes itself; its one script is allowed by its hash, nothing else runs."""
    script = _POPUP_SCRIPT.format(origin=_js_encoded(origin), message=_js_encoded(message))
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    response = Response(_POPUP_PAGE.format(script=script), mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'sha256-{digest}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'; object-src 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _js_encoded(value: Any) -> str:
    """JSON percent-encoded like ``encodeURIComponent`` with ``'`` escaped too: only letters,
    digits, ``-_.!~*()`` and ``%XX`` remain, so it cannot leave a quoted string or the script."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return quote(text, safe="!*()~")


def client_auth_response(
    user: CatalogUser,
    *,
    identity_token: str,
    expires_in: int,
    requested_scope: str,
    provider_scopes: Iterable[str],
    access_token: str | None = None,
    access_token_expires_in: int | None = None,
) -> dict[str, Any]:
    """Backstage's ``ClientAuthResponse``: ``profile``, ``providerInfo`` and
    ``backstageIdentity``. ``accessToken`` is there only when given (kept tokens, exposing
    switched on), and ``providerInfo.expiresInSeconds`` is then its time left (the frontend
    refreshes before it runs out); ``scope`` names the scopes asked of the provider that
    signed the person in (``provider_scopes``) and every scope the frontend asked for."""
    scopes = dict.fromkeys(
        (*provider_scopes, *filter(None, _SCOPE_SEPARATORS.split(requested_scope)))
    )
    provider_info: dict[str, Any] = {"scope": " ".join(scopes), "expiresInSeconds": expires_in}
    if access_token is not None:
        provider_info["accessToken"] = access_token
        provider_info["expiresInSeconds"] = access_token_expires_in or expires_in
    return {
        "profile": {  # Bitbucket's, as Backstage gives; the email: the catalog's first
            "displayName": user.profile.display_name,
            "email": user.email,
            "picture": user.profile.avatar_url,
        },
        "providerInfo": provider_info,
        "backstageIdentity": {
            "token": identity_token,
            "expiresInSeconds": expires_in,
            "identity": {
                "type": "user",
                "userEntityRef": user.user_entity_ref,
                "ownershipEntityRefs": list(user.ownership_entity_refs),
            },
        },
    }


def identity_token(
    user: CatalogUser, keys: SigningKeys, settings: Settings, *, issuer: str, now: float
) -> str:
    """The signed identity token of ``user``, valid ``BITBUCKET_TOKEN_EXPIRATION`` seconds."""
    return keys.issue(
        issuer=issuer,
        subject=user.user_entity_ref,
        ownership=user.ownership_entity_refs if settings.token_ownership_claim else None,
        issued_at=int(now),
        lifetime=settings.token_expiration,
    )


def error_name(status: int) -> str:
    return _ERROR_NAMES.get(status, "Error")


def json_error(status: int, message: str) -> tuple[Response, int]:
    """Backstage's error body: ``{error: {name, message}, request, response: {statusCode}}``."""
    body = {
        "error": {"name": error_name(status), "message": message},
        "request": {"method": request.method, "url": request.full_path.rstrip("?")},
        "response": {"statusCode": status},
    }
    return jsonify(body), status


def is_frontend_call() -> bool:
    return XHR_HEADER in request.headers


def refused_call(settings: Settings) -> tuple[Response, int] | None:
    """Why a frontend's ``/refresh`` or ``/logout`` call is refused, as Backstage's error
    answer, or ``None``: it needs ``X-Requested-With`` (a header no plain form or link can
    send, so a cross-origin request with it is preflighted), an allowed ``Origin`` (or this
    site's own, or none: not a browser), and the configured ``env`` when it names one."""
    if request.headers.get(XHR_HEADER) != XHR_VALUE:
        return json_error(401, "Invalid X-Requested-With header")
    if not _origin_allowed(settings, own_too=True):
        return json_error(403, "This app's origin is not allowed to call here.")
    try:
        check_env(request.args.get("env"), settings, required=False)
    except SignInError as error:
        return json_error(error.status, error.message)
    return None


def preflight(settings: Settings, methods: str) -> Response:
    """The answer to a CORS preflight: allowed origins may send ``X-Requested-With`` with
    credentials; any other origin gets no CORS headers, so the browser sends nothing."""
    response = Response(status=204)
    if _origin_allowed(settings, own_too=False):
        response.headers["Access-Control-Allow-Methods"] = methods
        response.headers["Access-Control-Allow-Headers"] = "X-Requested-With, Content-Type"
        response.headers["Access-Control-Max-Age"] = _PREFLIGHT_MAX_AGE
    return allow_origin(response, settings)


def allow_origin(response: Response, settings: Settings) -> Response:
    """Let an allowed app origin read the answer, with credentials (cookies)."""
    origin = request.headers.get("Origin")
    if origin is not None and bare_origin(origin) in settings.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
    response.vary.add("Origin")
    return response


def _origin_allowed(settings: Settings, *, own_too: bool) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return own_too
    normalized = bare_origin(origin)
    if normalized in settings.allowed_origins:
        return True
    return own_too and normalized is not None and normalized == url_origin(request.host_url)
