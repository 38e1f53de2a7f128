"""The demo app behind ``wsgi.py``: sign-in plus a protected home page showing who is there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, render_template
from flask_login import login_required
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import ConfigError
from .extension import BitbucketSignIn, get_state


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Configured from ``FLASK_*`` environment variables, then ``config``.

    ``PROXY_FIX`` (``FLASK_PROXY_FIX=1``) is how many proxies in front set X-Forwarded-*;
    ``SESSION_REDIS_URL`` keeps sessions server-side in Redis (Flask-Session), so that a
    sign-out ends the session for every copy of the cookie.
    """
    app = Flask(__name__)
    app.config.from_prefixed_env()
    app.config.update(config or {})
    proxies = int(app.config.get("PROXY_FIX") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    if app.config.get("SESSION_REDIS_URL"):
        use_redis_sessions(app, str(app.config["SESSION_REDIS_URL"]))
    BitbucketSignIn(app)

    @app.get("/")
    @login_required  # type: ignore[untyped-decorator]
    def home() -> str:
        return render_template("bitbucket_signin/home.html", settings=get_state().settings)

    return app


def use_redis_sessions(app: Flask, url: str) -> None:
    """Server-side sessions in Redis through Flask-Session; the cookie holds a random id."""
    try:
        from flask_session import Session
        from redis import Redis
        from redis.exceptions import RedisError
    except ImportError:
        raise ConfigError(
            "SESSION_REDIS_URL needs the redis extra: pip install 'bitbucket-signin[redis]'"
        ) from None
    try:
        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        client.ping()
    except (RedisError, ValueError) as error:
        raise ConfigError(f"SESSION_REDIS_URL: cannot use Redis ({error})") from None
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=client,
        SESSION_PERMANENT=False,
        SESSION_KEY_PREFIX="bitbucket-signin:",
    )
    Session(app)
