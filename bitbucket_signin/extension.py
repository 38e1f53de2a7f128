"""The Flask extension object: ``BitbucketSignIn(app)`` or ``init_app(app)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app
from flask_login import LoginManager

from . import __version__
from .catalog import CatalogStore
from .client import BitbucketClient
from .config import Settings, load_settings
from .errors import CatalogError, ConfigError, SignInError
from .oauth import register_bitbucket
from .profile import BitbucketProfile, workspace_refusal
from .resolvers import Identity, Resolver, build_chain, resolve
from .security import install_security
from .session import install_user_loader

EXTENSION_NAME = "bitbucket_signin"


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
        extension = SignInState(app, settings)
        app.extensions[EXTENSION_NAME] = extension

        from .views import create_blueprint

        app.register_blueprint(create_blueprint(settings))
        install_user_loader(extension)
        install_security(app, settings)

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
            max_bytes=settings.catalog_max_bytes,
        )
        try:
            self.catalog_store.load()
        except CatalogError as error:
            raise ConfigError(f"BITBUCKET_CATALOG: {error}") from None
        user_agent = f"bitbucket-signin/{__version__}"
        self.client = BitbucketClient(
            settings.api_base_url, timeout=settings.timeout, user_agent=user_agent
        )
        self.oauth = OAuth(app)
        self.oauth_app = register_bitbucket(self.oauth, settings, user_agent)
        self.login_manager = _login_manager(app)

    def resolve(self, profile: BitbucketProfile) -> Identity:
        """The catalog identity of ``profile`` now; raises a ``SignInError`` when there is none."""
        refusal = workspace_refusal(profile, self.settings.allowed_workspaces)
        if refusal is not None:
            raise SignInError(refusal, status=403)
        return resolve(self.resolvers, profile, self.catalog_store.current())


def _login_manager(app: Flask) -> LoginManager:
    manager: LoginManager | None = getattr(app, "login_manager", None)
    if manager is None:
        manager = LoginManager(app)
    manager.login_view = "bitbucket_signin.signin"
    manager.login_message = "Please sign in to see this page."
    manager.login_message_category = "info"
    return manager


def get_state(app: Flask | None = None) -> SignInState:
    """The extension's per-app object for ``app`` (default: the current app)."""
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    extension: SignInState = target.extensions[EXTENSION_NAME]
    return extension
