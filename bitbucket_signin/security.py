"""Browser-facing protections: security headers, the logout CSRF token, cookie flags."""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import Flask, Response, g, request, session
from flask.sessions import SecureCookieSessionInterface

from .config import Settings
from .errors import ConfigError
from .redirects import origin

CSRF_KEY = "_bitbucket_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' https: data: {api_origin}; "
    "form-action 'self' {authorize_origins}; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
logger = logging.getLogger(__name__)


def csrf_token() -> str:
    """The session's CSRF token for the logout form, made on first use."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def csrf_token_is_valid() -> bool:
    expected = session.get(CSRF_KEY)
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), given.encode())


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked ``Secure`` whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install_security(app: Flask, settings: Settings) -> None:
    """Cookie defaults and security headers, a polite guest's: an app's own
    ``SESSION_COOKIE_SAMESITE``, session interface, security headers and ``Cache-Control``
    win. The session cookie must stay ``HttpOnly`` (it carries the sign-out's CSRF token):
    ``SESSION_COOKIE_HTTPONLY = False`` stops start-up. It becomes ``Secure`` when a callback
    URL is https (Flask's default is ``False``), and a page served to a signed-in person
    without a ``Cache-Control`` of its own is ``no-store``; one with its own keeps it, and
    the first of each is logged as a warning (varying by ``Cookie`` either way)."""
    if app.config.get("SESSION_COOKIE_HTTPONLY") is not True:
        raise ConfigError(
            "SESSION_COOKIE_HTTPONLY must stay True: the session cookie holds the sign-out's "
            "CSRF token, which no script may read"
        )
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    server = settings.server
    callback_urls = (settings.callback_url, server.callback_url if server else None)
    if any(url and url.startswith("https://") for url in callback_urls):
        app.config["SESSION_COOKIE_SECURE"] = True
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = HttpsAwareSessionInterface()
    app.jinja_env.globals["bitbucket_signin_csrf_token"] = csrf_token
    if settings.security_headers:
        # Where the sign-in buttons lead, and avatars (plain http on a local emulator).
        instance = [origin(server.url)] if server else []
        policy = CONTENT_SECURITY_POLICY.format(
            authorize_origins=" ".join(dict.fromkeys([origin(settings.authorize_url), *instance])),
            api_origin=" ".join(dict.fromkeys([origin(settings.api_base_url), *instance])),
        )

        defaults = (
            ("content-security-policy", "Content-Security-Policy", policy),
            ("x-content-type-options", "X-Content-Type-Options", "nosniff"),
            ("x-frame-options", "X-Frame-Options", "DENY"),
            ("referrer-policy", "Referrer-Policy", "same-origin"),
        )

        warned: set[str] = set()  # the endpoints whose own Cache-Control was logged

        @app.after_request
        def add_security_headers(response: Response) -> Response:
            headers = response.headers
            present = {name.lower() for name in headers.keys()}  # noqa: SIM118 - a multidict
            headers.extend([(name, value) for key, name, value in defaults if key not in present])
            if settings.hsts and request.is_secure:
                headers.setdefault("Strict-Transport-Security", settings.hsts)
            if _signed_in_without_loading():
                _no_store_unless_chosen(response, warned)
                headers.add("Vary", "Cookie")
            return response


def _no_store_unless_chosen(response: Response, warned: set[str]) -> None:
    """``Cache-Control: no-store`` for a page served to a signed-in person, unless the page
    chose its own (ours choose theirs); a host page's choice other than ``no-store`` is
    kept, and said once per endpoint: a shared cache may keep a personal page."""
    chosen = response.headers.get("Cache-Control")
    if chosen is None:
        response.headers["Cache-Control"] = "no-store"
        return
    endpoint = request.endpoint or request.path
    if (
        "no-store" in chosen.lower()
        or endpoint.startswith("bitbucket_signin.")
        or endpoint in warned
    ):
        return
    warned.add(endpoint)
    logger.warning(
        "%s sets its own Cache-Control (%r) on a page for a signed-in person: kept; "
        "bitbucket-signin would send no-store",
        endpoint,
        chosen,
    )


def _signed_in_without_loading() -> bool:
    """Whether this request served a signed-in person, without loading one just to ask."""
    user = g.get("_login_user")
    return user is not None and bool(user.is_authenticated)
