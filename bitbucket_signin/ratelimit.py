"""At most ``BITBUCKET_RATE_LIMIT`` sign-in attempts per client address, with Flask-Limiter.

Each start and each callback costs calls to Bitbucket, whose hourly quota every visitor
shares; so both routes are limited (each with its own count) before anything is called. The
client is ``request.remote_addr`` (behind a proxy, ProxyFix must set it, or every visitor
shares the proxy's count), and an IPv6 client is its /64 network: one subscriber or host
usually owns a whole /64, and would otherwise get a count per address.
"""

from __future__ import annotations

import ipaddress
import math
import time
from typing import Any, cast

from flask import Flask, Response, current_app, make_response, request
from flask_limiter import Limiter, RequestLimit
from limits.errors import ConfigurationError

from .config import PREFIX, Settings
from .errors import ConfigError, SignInError
from .redirects import safe_next
from .signals import RATE_LIMITED_REASON, sign_in_rate_limited
from .views import refusal_page

LIMITED_ENDPOINTS = frozenset(
    {
        "bitbucket_signin.start",
        "bitbucket_signin.callback",
        "bitbucket_signin.server_start",
        "bitbucket_signin.server_callback",
    }
)
KEY_PREFIX = "bitbucket-signin"
STORAGE_TIMEOUT = 2  # seconds for each Redis call; then the per-process fallback counts
STORAGE_SETTING = f"{PREFIX}RATE_LIMIT_STORAGE_URL"
IPV6_CLIENT_PREFIX = 64  # the network one IPv6 subscriber or host is given (RFC 6177)


def limit_sign_in_attempts(app: Flask, settings: Settings) -> None:
    """Install our own Limiter next to any the app has (none when the limit is off).

    It limits only the start and callback routes, and it reads none of the app's
    ``RATELIMIT_*`` settings: those configure the app's own Limiter.
    """
    if settings.rate_limit is None:
        return
    in_memory = settings.rate_limit_storage_url.startswith("memory://")
    limiter = Limiter(
        client_key,
        default_limits=[settings.rate_limit],
        strategy="moving-window",  # at most N in any window, also across a minute's boundary
        storage_uri=settings.rate_limit_storage_url,
        storage_options={}
        if in_memory
        else {"socket_timeout": STORAGE_TIMEOUT, "socket_connect_timeout": STORAGE_TIMEOUT},
        in_memory_fallback_enabled=not in_memory,  # Redis down: count per process until back
        headers_enabled=False,  # the refusal page sets Retry-After itself
        key_prefix=KEY_PREFIX,
        on_breach=_refusal,
    )
    limiter.request_filter(lambda: request.endpoint not in LIMITED_ENDPOINTS)
    try:
        limiter.init_app(cast(Flask, _WithOwnConfig(app)))
    except ConfigurationError:  # the scheme is known (config checked it): a missing driver
        raise ConfigError(
            f"{STORAGE_SETTING}: Redis needs the redis extra: pip install 'bitbucket-signin[redis]'"
        ) from None
    if not in_memory and not limiter.storage.check():
        raise ConfigError(f"{STORAGE_SETTING}: the rate-limit storage does not answer")


def client_key() -> str:
    """Who is counted: an IPv4 address (also when written IPv4-mapped, ``::ffff:a.b.c.d``),
    or the /64 network of an IPv6 address; anything else (a Unix socket's peer) as it is."""
    address = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        network = ipaddress.IPv6Network((ip.packed, IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return str(ip)


class _WithOwnConfig:
    """``app`` as our Limiter sees it: the app's hooks and extensions, a config of its own.

    Flask-Limiter reads ``RATELIMIT_*`` keys from ``app.config`` and writes defaults into
    it; those keys belong to the app's own Limiter, if it has one.
    """

    def __init__(self, app: Flask) -> None:
        self._app = app
        self.config: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


def _refusal(limit: RequestLimit) -> Response:
    """The sign-in page with a 429 and ``Retry-After``; nothing is sent to Bitbucket."""
    seconds = max(1, math.ceil(limit.window.reset_time - time.time()))
    error = SignInError(
        f"Too many sign-in attempts from your network address. "
        f"Please try again in {seconds} seconds.",
        status=429,
        reason=RATE_LIMITED_REASON,
    )
    response = make_response(refusal_page(error, safe_next(request.args.get("next"))))
    response.headers["Retry-After"] = str(seconds)
    sign_in_rate_limited.send(current_app._get_current_object(), address=request.remote_addr)  # type: ignore[attr-defined]
    return response
