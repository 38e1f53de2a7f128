"""The standalone app, for ``gunicorn wsgi:app`` (deployments and the demo alike): sign-in plus
a protected home page showing who is there, configured from ``FLASK_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, render_template
from flask_login import login_required
from werkzeug.middleware.proxy_fix import ProxyFix

from .app_extension import get_extension
from .audit import log_to_stderr
from .extension import BitbucketSignIn


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Configured from ``FLASK_*`` environment variables, then ``config``.

    ``PROXY_FIX`` (``FLASK_PROXY_FIX=1``) is how many proxies in front set X-Forwarded-*.
    The audit log goes to standard error unless logging is configured (see :mod:`.audit`).
    """
    app = Flask(__name__)
    app.config.from_prefixed_env()
    app.config.update(config or {})
    proxies = int(app.config.get("PROXY_FIX") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    BitbucketSignIn(app)
    log_to_stderr()

    @app.get("/")
    @login_required  # type: ignore[untyped-decorator]
    def home() -> str:
        return render_template("bitbucket_signin/home.html", settings=get_extension().settings)

    return app
