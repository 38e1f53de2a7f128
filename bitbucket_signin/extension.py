"""The Flask extension object: ``BitbucketSignIn(app)`` or ``init_app(app)`` wires the parts
(blueprint, user loader, sessions, security headers, rate limits, metrics, CLI) into an app."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import Flask

from .app_extension import EXTENSION_NAME, AppExtension
from .audit import install_audit
from .cli import cli
from .config import load_settings, refuse_taken_paths
from .errors import SessionStoreUnavailableError, SignInEndedError, UpstreamError
from .metrics import install_metrics
from .ratelimit import limit_sign_in_attempts
from .redis_sessions import install_redis_sessions, refuse_unreadable_sessions
from .security import install_security
from .session import install_user_loader
from .tokens import TokenStore
from .views import (
    create_blueprint,
    sign_in_ended_page,
    store_unavailable_page,
    upstream_error_page,
)


class BitbucketSignIn:
    """Sign in with Bitbucket Cloud, with people from a catalog file.

    ``resolvers`` may list custom resolver callables (or names, or Backstage-style
    mappings); when given, they replace ``BITBUCKET_SIGNIN_RESOLVERS``.
    """

    def __init__(self, app: Flask | None = None, *, resolvers: Sequence[Any] | None = None) -> None:
        self.custom_resolvers = resolvers
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        config = dict(app.config)
        if self.custom_resolvers is not None:
            config["BITBUCKET_SIGNIN_RESOLVERS"] = list(self.custom_resolvers)
        settings = load_settings(config)
        refuse_taken_paths(settings, ((r.rule, r.endpoint) for r in app.url_map.iter_rules()))
        extension = AppExtension(app, settings)
        app.extensions[EXTENSION_NAME] = extension
        if settings.session_redis_url:
            sessions = install_redis_sessions(
                app,
                settings.session_redis_url,
                idle_timeout=settings.session_idle_timeout,
                error_page=store_unavailable_page,
            )
            extension.redis_sessions = sessions
            refuse_unreadable_sessions(app)
            if settings.keep_tokens:
                extension.tokens = TokenStore(
                    sessions.client,
                    clock=settings.clock or time.time,
                    lifetime=sessions.idle_timeout,
                    refresh_seconds=settings.timeout,
                )
                app.register_error_handler(SignInEndedError, sign_in_ended_page)
                app.register_error_handler(UpstreamError, upstream_error_page)
        app.register_blueprint(create_blueprint(settings))
        if settings.metrics_path:
            extension.metrics = install_metrics(app, settings.metrics_path, extension.catalog_store)
        app.register_error_handler(SessionStoreUnavailableError, store_unavailable_page)
        install_user_loader(app)
        install_audit(app)
        install_security(app, settings)
        limit_sign_in_attempts(app, settings)
        app.cli.add_command(cli)
