"""The extension's per-app object (:class:`AppExtension`) and its accessor :func:`get_extension`.

The views, the CLI and the session find what the extension keeps for the current app here.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, current_app, session
from flask_login import LoginManager

from ._version import __version__
from .catalog import CatalogStore
from .catalog.check import no_users
from .client import BitbucketClient
from .config import Settings
from .errors import CatalogConfigError, CatalogError, ConfigError, SignInError, TokensNotKeptError
from .identity_token import load_signing_keys
from .metrics import Metrics
from .person_client import PersonClient
from .profile import BitbucketProfile
from .providers import CLOUD, AnyProfile, Provider, cloud_provider, server_provider
from .redis_sessions import RedisSessions
from .resolvers import CatalogResolver, Identity, Resolver, build_chain
from .tokens import TokenStore
from .waiting import SignInLimit

EXTENSION_NAME = "bitbucket_signin"  # our key in app.extensions


class AppExtension:
    """What the extension keeps per app, in ``app.extensions["bitbucket_signin"]``.

    ``providers``: Bitbucket Cloud and/or Data Center by name (``bitbucket``,
    ``bitbucketServer``), in the order the sign-in page shows them.
    """

    def __init__(self, app: Flask, settings: Settings) -> None:
        self.settings = settings
        self.catalog_store = CatalogStore(
            settings.catalog_path,
            check_interval=settings.catalog_check_interval,
            clock=settings.clock or time.monotonic,
            max_bytes=settings.catalog_max_bytes,
        )
        try:
            catalog = self.catalog_store.load()
        except CatalogError as error:
            raise CatalogConfigError(f"BITBUCKET_CATALOG: {error}", settings.catalog_path) from None
        if not catalog.users:
            raise CatalogConfigError(
                f"BITBUCKET_CATALOG: {no_users(settings.catalog_path)}", settings.catalog_path
            )
        user_agent = f"bitbucket-signin/{__version__}"
        self.providers: dict[str, Provider[Any]] = {}
        if settings.client_id is not None:
            label = "Bitbucket Cloud" if settings.server is not None else "Bitbucket"
            self.providers[CLOUD] = _cloud(settings, user_agent, label)
        if settings.server is not None:
            server = server_provider(settings, settings.server, user_agent)
            self.providers[server.name] = server
        self.sign_in_limit = SignInLimit(settings.max_concurrent_sign_ins)
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

    def provider(self, name: str) -> Provider[Any]:
        """The configured provider ``name``; a ``SignInError`` (404) when it is not on."""
        provider = self.providers.get(name)
        if provider is None:
            raise SignInError(f"Sign-in with {name} is not set up on this site.", status=404)
        return provider

    def resolve(self, profile: AnyProfile) -> Identity:
        """The catalog identity of ``profile`` now, by the resolvers of its provider (a
        ``BitbucketProfile``: Bitbucket Cloud's, a ``ServerProfile``: Data Center's); raises a
        ``SignInError`` when there is none, or when the app does not sign in with it (404)."""
        return self.provider(profile.provider).resolve(profile, self.catalog_store.current())

    def person_client(self, person: str, provider: str) -> PersonClient:
        """The API of ``provider`` as ``person`` (its user id there), signed in with this
        request's session."""
        sid = getattr(session, "sid", None)
        if self.tokens is None or not isinstance(sid, str):
            raise TokensNotKeptError()
        api = self.provider(provider).person_api
        return PersonClient(self.settings, api, self.tokens, person, sid, self.user_agent)

    def sign_out_everywhere(self, person: str) -> int:
        """End every session of the Bitbucket account ``person`` (its uuid); how many ended.

        Needs ``BITBUCKET_SESSION_REDIS_URL``: a signed cookie cannot be recalled.
        """
        if self.redis_sessions is None:
            raise RuntimeError("sign_out_everywhere needs BITBUCKET_SESSION_REDIS_URL")
        return self.redis_sessions.sign_out_everywhere(person)


def _cloud(settings: Settings, user_agent: str, label: str) -> Provider[BitbucketProfile]:
    """Bitbucket Cloud: its resolvers, and a client that asks only for what they need."""
    try:
        resolvers: tuple[Resolver, ...] = build_chain(settings.resolvers)
    except ConfigError as error:
        raise ConfigError(f"BITBUCKET_SIGNIN_RESOLVERS: {error}") from None
    client = BitbucketClient(
        settings.api_base_url,
        timeout=settings.timeout,
        max_body_bytes=settings.max_response_bytes,
        user_agent=user_agent,
        emails=_fetches_emails(settings, resolvers),
        workspaces=bool(settings.allowed_workspaces),
    )
    return cloud_provider(settings, resolvers, client, user_agent, label)


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


def get_extension(app: Flask | None = None) -> AppExtension:
    """The extension's per-app object for ``app`` (default: the current app)."""
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    extension: AppExtension = target.extensions[EXTENSION_NAME]
    return extension
