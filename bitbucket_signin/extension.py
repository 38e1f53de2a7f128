"""The Flask extension object: ``BitbucketSignIn(app)`` or ``init_app(app)``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import Flask, current_app, session
from flask_login import LoginManager

from . import __version__
from .catalog import CatalogStore
from .client import BitbucketClient, SignInLimit, UpstreamError
from .config import Settings, load_settings, refuse_taken_paths
from .errors import (
    CatalogError,
    ConfigError,
    SessionStoreUnavailableError,
    SignInEndedError,
    SignInError,
    TokensNotKeptError,
)
from .identity_token import load_signing_keys
from .metrics import Metrics, install_metrics
from .oauth import bitbucket_oauth_app
from .person_client import PersonClient
from .profile import BitbucketProfile, workspace_refusal
from .redis_sessions import RedisSessions, install_redis_sessions, refuse_unreadable_sessions
from .resolvers import CatalogResolver, Identity, Resolver, build_chain, resolve
from .security import install_security
from .session import EXTENSION_NAME, install_user_loader
from .tokens import TokenStore


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
        extension = SignInState(app, settings)
        app.extensions[EXTENSION_NAME] = extension

        from .ratelimit import limit_sign_in_attempts
        from .views import (
            create_blueprint,
            error_page,
            sign_in_ended_page,
            store_unavailable_page,
            upstream_error_page,
        )

        if settings.session_redis_url:
            sessions = install_redis_sessions(
                app,
                settings.session_redis_url,
                idle_timeout=settings.session_idle_timeout,
                error_page=error_page,
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
        install_security(app, settings)
        limit_sign_in_attempts(app, settings)

        from .cli import cli

        app.cli.add_command(cli)


class SignInState:
    """What the extension keeps per app, in ``app.extensions["bitbucket_signin"]``."""

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.settings = settings
        try:
            self.resolvers: tuple[Resolver, ...] = build_chain(settings.resolvers)
        except ConfigError as error:
            raise ConfigError(f"BITBUCKET_SIGNIN_RESOLVERS: {error}") from None
        self.catalog_store = CatalogStore(
            settings.catalog_path,
            check_interval=settings.catalog_check_interval,
            clock=settings.clock or time.monotonic,
            max_bytes=settings.catalog_max_bytes,
        )
        try:
            self.catalog_store.load()
        except CatalogError as error:
            raise ConfigError(f"BITBUCKET_CATALOG: {error}") from None
        user_agent = f"bitbucket-signin/{__version__}"
        self.client = BitbucketClient(
            settings.api_base_url,
            timeout=settings.timeout,
            max_body_bytes=settings.max_response_bytes,
            user_agent=user_agent,
            emails=_fetches_emails(settings, self.resolvers),
            workspaces=bool(settings.allowed_workspaces),
        )
        self.sign_in_limit = SignInLimit(settings.max_concurrent_sign_ins)
        self.oauth_app = bitbucket_oauth_app(settings, user_agent)
        self.user_agent = user_agent
        secret = app.secret_key
        self.signing_keys = load_signing_keys(
            settings.signing_key,
            settings.previous_public_keys,
            secret if isinstance(secret, bytes) else str(secret).encode(),
        )
        _use_login_manager(app)
        self.redis_sessions: RedisSessions | None = None
        self.tokens: TokenStore | None = None  # BITBUCKET_KEEP_TOKENS
        self.metrics: Metrics | None = None

    def resolve(self, profile: BitbucketProfile) -> Identity:
        """The catalog identity of ``profile`` now; raises a ``SignInError`` when there is none."""
        refusal = workspace_refusal(profile, self.settings.allowed_workspaces)
        if refusal is not None:
            raise SignInError(refusal, status=403)
        return resolve(self.resolvers, profile, self.catalog_store.current())

    def person_client(self, person: str) -> PersonClient:
        """Bitbucket's API as ``person`` (a uuid), signed in with this request's session."""
        sid = getattr(session, "sid", None)
        if self.tokens is None or not isinstance(sid, str):
            raise TokensNotKeptError()
        return PersonClient(self.settings, self.tokens, person, sid, self.user_agent)

    def sign_out_everywhere(self, person: str) -> int:
        """End every session of the Bitbucket account ``person`` (its uuid); how many ended.

        Needs ``BITBUCKET_SESSION_REDIS_URL``: a signed cookie cannot be recalled.
        """
        if self.redis_sessions is None:
            raise RuntimeError("sign_out_everywhere needs BITBUCKET_SESSION_REDIS_URL")
        return self.redis_sessions.sign_out_everywhere(person)


def _fetches_emails(settings: Settings, chain: tuple[Resolver, ...]) -> bool:
    """Whether sign-in asks Bitbucket for the emails: by default when a resolver may read
    one (an email resolver, or a custom callable, which may read anything)."""
    by_email = [r.name for r in chain if isinstance(r, CatalogResolver) and r.reads_email]
    if settings.fetch_emails is False and by_email:
        raise ConfigError(
            f"BITBUCKET_FETCH_EMAILS is false, but the resolver {by_email[0]} matches by email"
        )
    if settings.fetch_emails is not None:
        return settings.fetch_emails
    return bool(by_email) or not all(isinstance(r, CatalogResolver) for r in chain)


def _use_login_manager(app: Flask) -> None:
    """Keep the app's own LoginManager and its settings (our sign-in page becomes its
    ``login_view`` only when it has none), or make one with our page that flashes nothing
    (the sign-in page says why the visitor is there)."""
    manager: LoginManager | None = getattr(app, "login_manager", None)
    if manager is None:
        manager = LoginManager(app)
        manager.login_message = None
    if manager.login_view is None:
        manager.login_view = "bitbucket_signin.signin"


def get_state(app: Flask | None = None) -> SignInState:
    """The extension's per-app object for ``app`` (default: the current app)."""
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    extension: SignInState = target.extensions[EXTENSION_NAME]
    return extension
