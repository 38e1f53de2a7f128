"""The blueprint: the sign-in page, the redirect to Bitbucket, the callback, refresh and logout."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, logout_user

from .client import Deadline, UpstreamError
from .config import Settings
from .errors import SignInError
from .extension import SignInState, get_state
from .oauth import PROVIDER, exchange_code
from .profile import BitbucketProfile
from .redirects import safe_next
from .resolvers import UserNotInCatalogError
from .security import csrf_token_is_valid
from .session import CatalogUser, start_session
from .signals import sign_in_failed, signed_in, signed_out

NEXT_KEY = "_bitbucket_next"
PENDING_STATE_PREFIX = f"_state_{PROVIDER}_"
MAX_PENDING_SIGN_INS = 3
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
logger = logging.getLogger(__name__)

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
        static_url_path="/_bitbucket_signin/static",
    )
    prefix = settings.url_prefix
    blueprint.add_url_rule(settings.signin_url, "signin", signin_page)
    blueprint.add_url_rule(f"{prefix}/start", "start", start)
    blueprint.add_url_rule(f"{prefix}/handler/frame", "callback", callback)
    blueprint.add_url_rule(f"{prefix}/refresh", "refresh", refresh)
    blueprint.add_url_rule(f"{prefix}/logout", "logout", logout, methods=["POST"])
    blueprint.add_url_rule("/_bitbucket_signin/theme.css", "theme", theme_css)
    blueprint.after_request(_no_store)
    return blueprint


def signin_page() -> ResponseReturnValue:
    next_path = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_path)
    return render_signin(next_path=next_path)


def start() -> ResponseReturnValue:
    """Remember ``next`` and send the browser to Bitbucket with state and PKCE."""
    extension = get_state()
    next_path = safe_next(request.args.get("next"))
    try:
        redirect_uri = _callback_url(extension.settings)
    except SignInError as error:
        return render_signin(error=error, next_path=next_path)
    _forget_old_sign_ins()
    authorization = extension.oauth_app.create_authorization_url(redirect_uri)
    extension.oauth_app.save_authorize_data(redirect_uri=redirect_uri, **authorization)
    session[NEXT_KEY] = {**session.get(NEXT_KEY, {}), authorization["state"]: next_path}
    return redirect(authorization["url"])


def callback() -> ResponseReturnValue:
    """Bitbucket sends the browser back here with a code (or an error) and our state."""
    extension = get_state()
    returned_state = request.args.get("state", "")
    next_path = safe_next(session.get(NEXT_KEY, {}).get(returned_state))
    try:
        _check_provider_error(returned_state)
        profile = _ask_bitbucket(extension)
        identity = extension.resolve(profile)
    except SignInError as error:
        _forget_sign_in(returned_state)
        _log_refusal(error)
        sign_in_failed.send(current_app._get_current_object(), error=error)  # type: ignore[attr-defined]
        return render_signin(error=error, next_path=next_path)
    user = start_session(extension, identity, profile)
    signed_in.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]
    response = redirect(next_path)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _ask_bitbucket(extension: SignInState) -> BitbucketProfile:
    """Swap the code for a token and ask whose it is: within the callback's deadline, and
    only while fewer than the limit of sign-ins wait on Bitbucket. The token is never kept."""
    deadline = Deadline(extension.settings.callback_timeout)
    with extension.sign_in_limit.slot():
        token = exchange_code(extension.oauth_app, deadline)
        return extension.client.fetch_profile(token["access_token"], deadline)


def refresh() -> tuple[Response, int] | Response:
    """Backstage's refresh answer for the signed-in person, as JSON."""
    if request.headers.get("X-Requested-With") != "XMLHttpRequest":
        return _auth_error("Invalid X-Requested-With header")
    if not current_user.is_authenticated:
        return _auth_error("You are not signed in")
    user: CatalogUser = current_user
    return jsonify(
        profile={
            "displayName": user.profile.display_name,
            "email": user.email,
            "picture": user.profile.avatar_url,
        },
        backstageIdentity={
            "identity": {
                "type": "user",
                "userEntityRef": user.user_entity_ref,
                "ownershipEntityRefs": list(user.ownership_entity_refs),
            }
        },
    )


def logout() -> ResponseReturnValue:
    """Sign out; a POST carrying the session's CSRF token."""
    if not csrf_token_is_valid():
        error = SignInError(
            "Sign-out was not confirmed by this site's own page. Please use the sign-out button.",
            status=400,
        )
        return render_signin(error=error)
    user = current_user._get_current_object() if current_user.is_authenticated else None
    logout_user()
    session.clear()
    if user is not None:
        signed_out.send(current_app._get_current_object(), user=user)  # type: ignore[attr-defined]
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return Response(status=200)
    return redirect(url_for("bitbucket_signin.signin"), code=303)


def theme_css() -> Response:
    """The brand colour, and a text colour that reads on it (white or near-black)."""
    color = get_state().settings.brand_color
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
    *, error: SignInError | None = None, next_path: str = "/"
) -> tuple[str, int] | str:
    """The sign-in page, with the error (and its status) when there is one."""
    settings = get_state().settings
    page = render_template(
        "bitbucket_signin/signin.html",
        settings=settings,
        error=error,
        not_in_catalog=error if isinstance(error, UserNotInCatalogError) else None,
        retryable=isinstance(error, UpstreamError),
        start_url=url_for("bitbucket_signin.start"),
        start_params=[("next", next_path)] if next_path != "/" else [],
    )
    return (page, error.status) if error is not None else page


def _check_provider_error(returned_state: str) -> None:
    code = request.args.get("error")
    if code:
        message, status = _PROVIDER_ERRORS.get(
            code, ("Bitbucket could not complete the sign-in.", 400)
        )
        description = request.args.get("error_description")
        if description and code != "access_denied":
            message = f"{message} Bitbucket said: {description[:300]}"
        raise SignInError(message, status=status)
    if not returned_state or not request.args.get("code"):
        raise SignInError(
            "This sign-in link is incomplete. Please start again from the sign-in page.",
            status=400,
        )


def _callback_url(settings: Settings) -> str:
    """The redirect_uri: configured, or derived from a host Flask was told to trust."""
    if settings.callback_url:
        return settings.callback_url
    if not _host_is_trusted(request.host):
        raise SignInError(
            "Sign-in is not set up for this address: the administrator must set "
            "BITBUCKET_CALLBACK_URL (or TRUSTED_HOSTS).",
            status=400,
        )
    return url_for("bitbucket_signin.callback", _external=True)


def _host_is_trusted(host: str) -> bool:
    """Flask itself refuses a Host outside ``TRUSTED_HOSTS``; ``SERVER_NAME`` must match."""
    if current_app.config.get("TRUSTED_HOSTS"):
        return True
    server_name = current_app.config.get("SERVER_NAME")
    if server_name and host.lower() == str(server_name).lower():
        return True
    return urlsplit(f"//{host}").hostname in LOOPBACK_HOSTS


def _forget_sign_in(returned_state: str) -> None:
    session.pop(PENDING_STATE_PREFIX + returned_state, None)
    pending_next = session.get(NEXT_KEY)
    if isinstance(pending_next, dict) and returned_state in pending_next:
        session[NEXT_KEY] = {k: v for k, v in pending_next.items() if k != returned_state}


def _forget_old_sign_ins() -> None:
    """Keep only the newest few unfinished sign-ins, so the cookie cannot grow without end."""
    pending = sorted(
        (key for key in session if key.startswith(PENDING_STATE_PREFIX)),
        key=lambda key: session[key].get("exp", 0) if isinstance(session[key], dict) else 0,
    )
    for key in pending[: max(0, len(pending) - MAX_PENDING_SIGN_INS + 1)]:
        _forget_sign_in(key.removeprefix(PENDING_STATE_PREFIX))


def _log_refusal(error: SignInError) -> None:
    level = logging.WARNING if isinstance(error, UpstreamError) else logging.INFO
    logger.log(level, "Sign-in refused (%s): %s", error.status, error.message)


def _auth_error(message: str) -> tuple[Response, int]:
    return jsonify(error={"name": "AuthenticationError", "message": message}), 401


def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response
