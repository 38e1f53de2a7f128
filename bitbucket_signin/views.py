"""The blueprint: the sign-in page, the redirect to Bitbucket, the callback, refresh and logout."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, logout_user
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wrappers import Response as BaseResponse

from .app_extension import AppExtension, get_extension
from .config import (
    CALLBACK_ROUTE,
    OWN_FILES_PATH,
    Settings,
    auth_base_path,
    is_loopback,
    route_paths,
    under_prefix,
)
from .errors import (
    SessionStoreUnavailableError,
    SignInEndedError,
    SignInError,
    UpstreamError,
    UserNotInCatalogError,
    one_line_text,
)
from .frontend import (
    FrontendSignIn,
    allow_origin,
    answer_failure,
    answer_success,
    client_auth_response,
    frontend_sign_in,
    identity_token,
    is_frontend_call,
    json_error,
    preflight,
    refused_call,
)
from .oauth import exchange_code, stale_link
from .profile import Profile
from .providers import CLOUD, DATA_CENTER, Provider
from .redirects import safe_next
from .redis_sessions import RETRY_AFTER_SECONDS
from .security import csrf_token_is_valid
from .session import CatalogUser, start_session
from .signals import SERVER_FLOW, sign_in_failed, signed_in, signed_out
from .tokens import KeptToken, TokenStore
from .waiting import Deadline


def _pending_key(provider: str, state: str = "") -> str:
    """Where Authlib keeps a pending sign-in of ``provider`` in the session (with ``state``
    empty: the prefix of that provider's keys)."""
    return f"_state_{provider}_{state}"


PENDING_STATE_PREFIX = _pending_key(CLOUD)
PENDING_STATE_PREFIXES = (PENDING_STATE_PREFIX, _pending_key(DATA_CENTER))
# The routes the frontend protocol calls across origins (CORS): both providers'.
_CROSS_ORIGIN_ENDPOINTS = frozenset(
    f"bitbucket_signin.{routes}{route}"
    for routes in ("", "server_")
    for route in ("refresh", "logout")
)
_START_ENDPOINTS = frozenset({"bitbucket_signin.start", "bitbucket_signin.server_start"})
_CALLBACK_ENDPOINTS = frozenset({"bitbucket_signin.callback", "bitbucket_signin.server_callback"})
# The session cookie must stay under the 4 KB browsers keep, signed in or not: so at most
# this many unfinished sign-ins, each remembering a ``next`` of at most this many characters.
MAX_PENDING_SIGN_INS = 3
MAX_KEPT_NEXT_LENGTH = 512
logger = logging.getLogger(__name__)

SIGN_IN_NOTICE = "Please sign in to see this page."
_UNCONFIRMED_SIGN_OUT = SignInError(
    "Sign-out was not confirmed by this site's own page. Please use the sign-out button.",
    status=400,
)
_DENIED = "You chose not to let this site use your Bitbucket account, so you are not signed in."
_PROVIDER_ERRORS = {
    "access_denied": (_DENIED, 403),
    "server_error": ("Bitbucket had a problem with the sign-in. Please try again.", 502),
    "temporarily_unavailable": ("Bitbucket is busy right now. Please try again shortly.", 503),
}


def resource_dir(name: str) -> Path:
    """``templates`` or ``static``: inside the installed package, or at the repository's top."""
    packaged = Path(__file__).parent / name
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / name


def create_blueprint(settings: Settings) -> Blueprint:
    blueprint = Blueprint(
        "bitbucket_signin",
        __name__,
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
        static_url_path=f"{OWN_FILES_PATH}/static",
    )
    paths = route_paths(settings)
    blueprint.add_url_rule(paths["signin"], "signin", signin_page)
    for routes, provider in (("", CLOUD), ("server_", DATA_CENTER)):
        if f"{routes}start" not in paths:  # the provider is not on
            continue
        for route, view in (("start", start), ("callback", callback)):
            endpoint = routes + route
            blueprint.add_url_rule(paths[endpoint], endpoint, view, defaults={"provider": provider})
        _add_cross_origin_rule(
            blueprint,
            paths[routes + "refresh"],
            routes + "refresh",
            (refresh, refresh_preflight),
            ["GET", "POST"],
            provider=provider,
        )
    for endpoint in ("logout", "server_logout"):  # either signs out whoever is signed in
        if endpoint in paths:
            pair = (logout, logout_preflight)
            _add_cross_origin_rule(blueprint, paths[endpoint], endpoint, pair, ["POST"])
    blueprint.add_url_rule(paths["jwks"], "jwks", jwks)
    blueprint.add_url_rule(paths["openid_configuration"], "openid_configuration", openid_config)
    if "logout_everywhere" in paths:
        blueprint.add_url_rule(
            paths["logout_everywhere"], "logout_everywhere", logout_everywhere, methods=["POST"]
        )
    blueprint.add_url_rule(paths["theme"], "theme", theme_css)
    if "health" in paths:
        blueprint.add_url_rule(paths["health"], "health", health)
    blueprint.after_request(_no_store)
    blueprint.after_request(_cross_origin)
    return blueprint


def _add_cross_origin_rule(
    blueprint: Blueprint,
    path: str,
    endpoint: str,
    views: tuple[Callable[..., ResponseReturnValue], Callable[[], Response]],
    methods: list[str],
    provider: str | None = None,
) -> None:
    """A route a frontend calls from another origin, and its CORS preflight (``OPTIONS``)."""
    view, answer_preflight = views
    defaults = {"provider": provider} if provider else {}
    blueprint.add_url_rule(
        path, endpoint, view, methods=methods, provide_automatic_options=False, defaults=defaults
    )
    blueprint.add_url_rule(path, f"{endpoint}_preflight", answer_preflight, methods=["OPTIONS"])


def signin_page() -> ResponseReturnValue:
    next_path = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_path)
    # Sent here from a page that needs a sign-in (Flask-Login adds ``next``): said on the page
    # itself rather than flashed, so that no visitor gets a stored session just for a notice.
    notice = SIGN_IN_NOTICE if "next" in request.args else None
    return render_signin(next_path=next_path, notice=notice)


def start(provider: str) -> ResponseReturnValue:
    """Remember ``next`` (or a Backstage frontend's ``origin``, ``flow``, ``scope``, ``env``
    and ``redirectUrl``) and send the browser to the provider with state and PKCE.

    What is remembered is kept with Authlib's pending state (the verifier and redirect_uri),
    so it expires and is forgotten with it; a ``next`` too long to keep in the cookie
    becomes ``/``.
    """
    extension = get_extension()
    signing_in = extension.provider(provider)
    next_path = safe_next(request.args.get("next"))
    try:
        frontend = frontend_sign_in(request.args, extension.settings)
        redirect_uri = _callback_url(signing_in)
        _refuse_another_loopback_host(redirect_uri, signing_in.callback_setting)
    except SignInError as error:
        return refusal_page(error, next_path)
    _forget_old_sign_ins()
    marked = {"state": frontend.state(extension.settings)} if frontend is not None else {}
    authorization = signing_in.oauth_app.create_authorization_url(redirect_uri, **marked)
    if frontend is not None:
        kept = frontend.pending_data()
    else:
        kept = {"next": next_path if len(next_path) <= MAX_KEPT_NEXT_LENGTH else "/"}
    signing_in.oauth_app.save_authorize_data(
        state=authorization["state"],
        code_verifier=authorization["code_verifier"],
        redirect_uri=redirect_uri,
        **kept,
    )
    return redirect(authorization["url"])


def callback(provider: str) -> ResponseReturnValue:
    """The provider sends the browser back here with a code (or an error) and our state.

    Nothing in the request is believed, nor shown, before its state is found pending in
    this browser's session: anyone can send a person a link carrying an error text.
    """
    extension = get_extension()
    signing_in = extension.provider(provider)
    returned_state = request.args.get("state", "")
    kept_under = _pending_key(provider, returned_state)
    next_path = "/"
    profile: Profile | None = None
    frontend: FrontendSignIn | None = None
    try:
        frontend = _pending_frontend(kept_under)
        if frontend is not None:
            frontend.check_still_allowed(extension.settings)
        pending = _pending_sign_in(kept_under, returned_state)
        next_path = safe_next(pending.get("next"))
        _check_provider_error()
        profile, token = _ask_bitbucket(extension, signing_in)
        identity = signing_in.resolve(profile, extension.catalog_store.current())
        redirect_uri = str(pending.get("redirect_uri", ""))
        kept = extension.tokens.token_of_sign_in(token, redirect_uri) if extension.tokens else None
        issuer = _issuer(extension.settings, signing_in) if frontend is not None else ""
    except SignInError as error:
        session.pop(kept_under, None)
        frontend = frontend or FrontendSignIn.from_state(returned_state, extension.settings)
        _log_refusal(error)
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        sign_in_failed.send(app, error=error, profile=profile, flow=_flow(frontend))
        if frontend is not None:
            return answer_failure(frontend, error, extension.settings)
        return error_page(error, next_path, failed=signing_in)
    user = start_session(extension, signing_in, identity, profile)
    if extension.tokens is not None and kept is not None:
        _keep_tokens(extension.tokens, user.get_id(), kept)
    signed_in.send(current_app._get_current_object(), user=user, flow=_flow(frontend))  # type: ignore[attr-defined]
    response: BaseResponse
    if frontend is not None:
        response = answer_success(frontend, _auth_response(user, frontend.scope, issuer))
    else:
        response = redirect(next_path)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _flow(frontend: FrontendSignIn | None) -> str:
    """The sign-in's flow, for the signals: a frontend's ``popup`` or ``redirect``, else
    ``server`` (the sign-in page, then back to ``next``)."""
    return frontend.flow if frontend is not None else SERVER_FLOW


def _ask_bitbucket(
    extension: AppExtension, signing_in: Provider[Any]
) -> tuple[Profile, dict[str, Any]]:
    """Swap the code for a token and ask whose it is: within the callback's deadline, and
    only while fewer than the limit of sign-ins wait on Bitbucket. The profile and the
    token response (kept only with ``BITBUCKET_KEEP_TOKENS``)."""
    deadline = Deadline(extension.settings.callback_timeout)
    with extension.sign_in_limit.slot():
        token = exchange_code(signing_in.oauth_app, deadline)
        profile: Profile = signing_in.client.fetch_profile(token["access_token"], deadline)
        return profile, token


def _keep_tokens(tokens: TokenStore, person: str, kept: KeptToken) -> None:
    """Keep the new session's tokens; a sign-in whose tokens cannot be kept does not stand."""
    try:
        tokens.keep(person, session.sid, kept)  # type: ignore[attr-defined]
    except SessionStoreUnavailableError:
        logout_user()
        session.clear()
        raise


def refresh(provider: str) -> tuple[Response, int] | Response:
    """Backstage's refresh answer for the person this provider signed in, as JSON (GET or
    POST)."""
    extension = get_extension()
    settings = extension.settings
    signing_in = extension.provider(provider)
    refused = refused_call(settings)
    if refused is not None:
        return refused
    # Nobody, a user of the app's own login, or someone the other provider signed in.
    if not isinstance(current_user, CatalogUser) or current_user.profile.provider != provider:
        return json_error(401, f"You are not signed in with {signing_in.label}")
    try:
        issuer = _issuer(settings, signing_in)
    except SignInError as error:
        return json_error(error.status, error.message)
    return jsonify(_auth_response(current_user, request.args.get("scope", ""), issuer))


def _auth_response(user: CatalogUser, requested_scope: str, issuer: str) -> dict[str, Any]:
    """The ``ClientAuthResponse`` for ``user`` (``/refresh`` and the popup's message), with
    a fresh identity token. With kept tokens, the person's Bitbucket token is made fresh
    first (a refused refresh ends the session: a 401); with exposing switched on, it is
    ``providerInfo.accessToken``, and ``expiresInSeconds`` is its time left."""
    extension = get_extension()
    settings = extension.settings
    now = (settings.clock or time.time)()
    token = user.bitbucket.current_token() if extension.tokens is not None else None
    exposed = token if token is not None and settings.expose_access_token else None
    return client_auth_response(
        user,
        identity_token=identity_token(
            user, extension.signing_keys, settings, issuer=issuer, now=now
        ),
        expires_in=settings.token_expiration,
        requested_scope=requested_scope,
        provider_scopes=extension.provider(user.profile.provider).scopes,
        access_token=exposed.access_token if exposed else None,
        access_token_expires_in=int(exposed.expires_at - now) if exposed else None,
    )


def logout() -> ResponseReturnValue:
    """Sign out: a POST carrying the session's CSRF token, or a frontend's call with
    ``X-Requested-With`` from an allowed origin (200, empty)."""
    if is_frontend_call() and not request.headers.get("X-CSRF-Token"):
        refused = refused_call(get_extension().settings)
        return refused if refused is not None else _sign_out()
    if not csrf_token_is_valid():
        return error_page(_UNCONFIRMED_SIGN_OUT)
    return _sign_out()


def logout_everywhere() -> ResponseReturnValue:
    """End every session of the signed-in person (Redis sessions), then sign out here."""
    if not csrf_token_is_valid():
        return error_page(_UNCONFIRMED_SIGN_OUT)
    if isinstance(current_user, CatalogUser):
        person = current_user.get_id()
        ended = get_extension().sign_out_everywhere(person)
        logger.info("Signed out everywhere: %s (%d sessions)", person, ended)
    return _sign_out()


def _sign_out() -> ResponseReturnValue:
    _sign_out_quietly()
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return Response(status=200)
    return redirect(url_for("bitbucket_signin.signin"), code=303)


def _sign_out_quietly() -> None:
    """End this session (and with it any kept tokens) and send ``signed_out``."""
    user = current_user._get_current_object() if isinstance(current_user, CatalogUser) else None
    logout_user()
    session.clear()
    if user is not None:
        signed_out.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]


def health() -> tuple[Response, int]:
    """For load balancers: 200 when the catalog is loaded and the session store answers."""
    extension = get_extension()
    store = extension.catalog_store
    catalog = store.current() if store.loaded_at is not None else None
    sessions = extension.redis_sessions
    sessions_reachable = sessions is None or sessions.is_reachable()
    ready = catalog is not None and sessions_reachable
    body = {
        "status": "ok" if ready else "unavailable",
        "catalog": {
            "loaded": catalog is not None,
            "users": len(catalog.users) if catalog else 0,
            "groups": len(catalog.groups) if catalog else 0,
            "loaded_at": _iso_time(store.loaded_at),
        },
        "sessions": {
            "store": "cookie" if sessions is None else "redis",
            "reachable": sessions_reachable,
        },
    }
    return jsonify(body), 200 if ready else 503


def jwks() -> Response:
    """The public keys that verify identity tokens (JSON Web Key Set)."""
    response = jsonify(get_extension().signing_keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def openid_config() -> tuple[Response, int] | Response:
    """Discovery for services that verify identity tokens: the issuer and its keys."""
    extension = get_extension()
    try:
        issuer = _issuer(extension.settings, next(iter(extension.providers.values())))
    except SignInError as error:
        return json_error(error.status, error.message)
    response = jsonify(
        issuer=issuer,
        jwks_uri=issuer + "/.well-known/jwks.json",
        response_types_supported=["id_token"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["ES256"],
        claims_supported=["iss", "sub", "aud", "iat", "exp", "ent"],
    )
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _issuer(settings: Settings, provider: Provider[Any]) -> str:
    """The auth base URL (``…/api/auth``, where the keys are published): the provider's
    callback URL's origin and the path in front of its callback route, and
    ``BITBUCKET_URL_PREFIX`` one level up."""
    callback = urlsplit(_callback_url(provider))
    mounted_at = callback.path[: -len(under_prefix(provider.url_prefix, CALLBACK_ROUTE))]
    return f"{callback.scheme}://{callback.netloc}{mounted_at}{auth_base_path(settings.url_prefix)}"


def _iso_time(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def theme_css() -> Response:
    """The brand colour, and a text colour that reads on it (white or near-black)."""
    color = get_extension().settings.brand_color
    css = f":root {{ --brand: {color}; --on-brand: {text_color_on(color)}; }}\n"
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def text_color_on(background: str) -> str:
    """White or near-black, whichever contrasts more with a ``#rgb``/``#rrggbb`` colour."""
    hex_digits = background.lstrip("#")
    if len(hex_digits) == 3:
        hex_digits = "".join(digit * 2 for digit in hex_digits)
    channels = [int(hex_digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with white is 1.05 / (L + 0.05); with #172b4d (L ≈ 0.024) it is (L + 0.05) / 0.074.
    return "#ffffff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.074 else "#172b4d"


def render_signin(
    *,
    error: SignInError | None = None,
    next_path: str = "/",
    notice: str | None = None,
    failed: Provider[Any] | None = None,
) -> str:
    """The sign-in page, with a button per provider, showing ``error`` (of the provider
    ``failed``, whose button then says "Try again") or ``notice`` when there is one."""
    buttons = [
        (provider.label, url_for(provider.endpoint("start")), provider is failed)
        for provider in get_extension().providers.values()
    ]
    return render_template(
        "bitbucket_signin/signin.html",
        settings=get_extension().settings,
        error=error,
        notice=notice,
        not_in_catalog=error if isinstance(error, UserNotInCatalogError) else None,
        retryable=isinstance(error, UpstreamError),
        buttons=buttons,
        start_url=buttons[0][1],  # the first provider's, for templates of one button
        start_params=[("next", next_path)] if next_path != "/" else [],
    )


def error_page(
    error: SignInError, next_path: str = "/", failed: Provider[Any] | None = None
) -> tuple[str, int]:
    """The sign-in page showing ``error`` (of the provider ``failed``), and its status."""
    return render_signin(error=error, next_path=next_path, failed=failed), error.status


def refusal_page(
    error: SignInError, next_path: str = "/", *, session_readable: bool = True
) -> ResponseReturnValue:
    """``error`` answered where the sign-in is: in the popup or back at the app for a
    frontend's ``/start`` (its parameters say), or its callback (the pending sign-in says,
    when the session can be read, else the state's mark); else the sign-in page. A refusal
    keeps its status."""
    frontend: FrontendSignIn | None = None
    if request.endpoint in _START_ENDPOINTS:
        frontend = FrontendSignIn.popup_of(request.args)
    elif request.endpoint in _CALLBACK_ENDPOINTS:
        provider = (request.view_args or {}).get("provider", CLOUD)
        state = request.args.get("state", "")
        pending = _pending_frontend(_pending_key(provider, state)) if session_readable else None
        frontend = pending or FrontendSignIn.from_state(state, get_extension().settings)
    if frontend is None:
        return error_page(error, next_path)
    response = answer_failure(frontend, error, get_extension().settings)
    response.status_code = error.status
    return response


def store_unavailable_page(error: SessionStoreUnavailableError) -> Response:
    """The 503 answer for a request whose session Redis could not read or save: Backstage's
    JSON error for a frontend's call, else the refusal page."""
    manager = current_app.login_manager  # type: ignore[attr-defined]
    g._login_user = manager.anonymous_user()  # the page's rendering asks who is there
    if is_frontend_call():  # a frontend's /refresh or /logout: Backstage's JSON error
        response = make_response(json_error(error.status, error.message))
    else:
        response = make_response(refusal_page(error, session_readable=False))
    response.headers.update({"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"})
    return response


def sign_in_ended_page(error: SignInEndedError) -> ResponseReturnValue:
    """Bitbucket no longer accepts the person's sign-in: signed out here, and told so (a
    401: JSON for scripts, the sign-in page for people)."""
    _sign_out_quietly()
    if _wants_json():
        return json_error(error.status, error.message)
    return error_page(
        error, safe_next(request.full_path.rstrip("?") if request.method == "GET" else "/")
    )


def upstream_error_page(error: UpstreamError) -> ResponseReturnValue:
    """Bitbucket failed while a page used the person's token (refreshing it): the status
    and the reason; the person stays signed in."""
    if _wants_json():
        return json_error(error.status, error.message)
    return error_page(error)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return is_frontend_call() or best != "text/html"


def _pending_frontend(key: str) -> FrontendSignIn | None:
    """The frontend sign-in pending under ``key``, expired or not: a stale one is still
    answered in its popup, or back at its app."""
    pending = session.get(key)
    data = pending.get("data") if isinstance(pending, dict) else None
    return FrontendSignIn.from_pending(data) if isinstance(data, dict) else None


def _pending_sign_in(key: str, returned_state: str) -> dict[str, Any]:
    """The data Authlib keeps (under ``key``: the provider's prefix and ``returned_state``)
    for this browser's unexpired sign-in with ``returned_state``."""
    pending = session.get(key) if returned_state else None
    data = pending.get("data") if isinstance(pending, dict) else None
    if not isinstance(data, dict) or _expired(pending, time.time()):
        raise stale_link()
    return data


def _expired(pending: Any, now: float) -> bool:
    expires = pending.get("exp") if isinstance(pending, dict) else None
    return not isinstance(expires, int | float) or expires < now


def _check_provider_error() -> None:
    code = request.args.get("error")
    if code:
        message, status = _PROVIDER_ERRORS.get(
            code, ("Bitbucket could not complete the sign-in.", 400)
        )
        # Whoever holds a pending state writes this text: one line, for pages and logs alike.
        description = one_line_text(request.args.get("error_description", ""))
        if description and code != "access_denied":
            message = f"{message} Bitbucket said: {description}"
        raise SignInError(
            message, status=status, reason="Denied" if code == "access_denied" else "ProviderError"
        )
    if not request.args.get("code"):
        raise SignInError(
            "This sign-in link is incomplete. Please start again from the sign-in page.",
            status=400,
            reason="IncompleteCallback",
        )


def _callback_url(provider: Provider[Any]) -> str:
    """The redirect_uri: configured, or derived from a host Flask was told to trust."""
    if provider.callback_url:
        return provider.callback_url
    if not _host_is_trusted(request.host):
        raise SignInError(
            "Sign-in is not set up for this address: the administrator must set "
            f"{provider.callback_setting} (or TRUSTED_HOSTS).",
            status=400,
        )
    return url_for(provider.endpoint("callback"), _external=True)


def _refuse_another_loopback_host(redirect_uri: str, setting: str) -> None:
    """In development, a browser on ``localhost`` while the callback URL says ``127.0.0.1``
    would come back without the session cookie that holds the pending sign-in, a cookie of
    another host (ports do not matter to cookies): say so now, naming both, rather than
    "expired" later. Only between loopback hosts: behind a proxy the host a request names may
    differ from the public one by design.
    """
    callback, here = urlsplit(redirect_uri), urlsplit(request.host_url)
    if not (is_loopback(callback.hostname) and is_loopback(here.hostname)):
        return
    if callback.hostname != here.hostname:
        raise SignInError(
            f"This page is open at {here.netloc}, but Bitbucket sends the sign-in back to "
            f"{callback.netloc} ({setting}), another host for the browser, "
            f"which would lose the sign-in on the way. Open {callback.scheme}://"
            f"{callback.netloc}/ instead, or set the callback URL to {here.netloc}.",
            status=400,
            reason="HostMismatch",
        )


def _host_is_trusted(host: str) -> bool:
    """In ``TRUSTED_HOSTS`` when that is set (checked here too, not only by Flask); else
    ``SERVER_NAME`` or loopback."""
    trusted_hosts = current_app.config.get("TRUSTED_HOSTS")
    if trusted_hosts:
        return host_is_trusted(host, trusted_hosts)
    server_name = current_app.config.get("SERVER_NAME")
    if server_name and host.lower() == str(server_name).lower():
        return True
    return is_loopback(urlsplit(f"//{host}").hostname)


def _forget_old_sign_ins() -> None:
    """Drop expired sign-ins and keep room for one more among the newest few, so the
    cookie cannot grow without end."""
    now = time.time()
    keys = [key for key in session if key.startswith(PENDING_STATE_PREFIXES)]
    live = sorted(
        (key for key in keys if not _expired(session[key], now)),
        key=lambda key: session[key]["exp"],
    )
    stale = [key for key in keys if key not in live]
    for key in stale + live[: max(0, len(live) - MAX_PENDING_SIGN_INS + 1)]:
        session.pop(key)


def _log_refusal(error: SignInError) -> None:
    level = logging.WARNING if isinstance(error, UpstreamError) else logging.INFO
    logger.log(level, "Sign-in refused (%s): %s", error.status, error.message)


def refresh_preflight() -> Response:
    return preflight(get_extension().settings, "GET, POST")


def logout_preflight() -> Response:
    return preflight(get_extension().settings, "POST")


def _cross_origin(response: Response) -> Response:
    if request.endpoint in _CROSS_ORIGIN_ENDPOINTS:
        return allow_origin(response, get_extension().settings)
    return response


def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response
