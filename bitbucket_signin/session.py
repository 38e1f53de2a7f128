"""The signed-in person, and Flask-Login's user loader that re-resolves them on every request.

The session holds the Bitbucket identity the resolvers need and which provider (Cloud or
Data Center) gave it, never a token (kept tokens live beside it: see ``tokens.py``). Each
request runs that provider's resolver chain against the current catalog, so catalog edits
apply at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from functools import cached_property
from typing import Any

from flask import Flask, current_app, session
from flask_login import UserMixin, login_user, user_accessed

from .app_extension import EXTENSION_NAME, AppExtension, get_extension
from .errors import SignInError
from .person_client import PersonClient
from .profile import Profile
from .providers import CLOUD, Provider
from .resolvers import Identity, P
from .session_keys import (
    PROFILE_KEY,
    PROVIDER_KEY,
    SEEN_AT_KEY,
    SEEN_AT_RESOLUTION_SECONDS,
    SIGNED_IN_AT_KEY,
)

logger = logging.getLogger(__name__)


class CatalogUser(UserMixin):  # type: ignore[misc]
    """``current_user`` when signed in: a catalog identity and the Bitbucket profile behind it
    (a ``BitbucketProfile``, or a ``ServerProfile`` for Data Center: ``profile.provider``)."""

    def __init__(self, identity: Identity, profile: Profile) -> None:
        self.identity = identity
        self.profile = profile

    @property
    def user_entity_ref(self) -> str:
        return self.identity.user_entity_ref

    @property
    def ownership_entity_refs(self) -> tuple[str, ...]:
        return self.identity.ownership_entity_refs

    @property
    def groups(self) -> tuple[str, ...]:
        """Refs of the groups the person belongs to (ownership refs without their own)."""
        return tuple(ref for ref in self.ownership_entity_refs if ref != self.user_entity_ref)

    @property
    def entity(self) -> Any:
        """The catalog User entity, or ``None`` for a sign-in allowed without one."""
        return self.identity.entity

    @property
    def display_name(self) -> str:
        entity = self.entity
        return (entity.display_name if entity else None) or self.profile.display_name

    @property
    def email(self) -> str | None:
        entity = self.entity
        return (entity.email if entity else None) or self.profile.email

    @property
    def picture(self) -> str | None:
        entity = self.entity
        return (entity.picture if entity else None) or self.profile.avatar_url

    @cached_property
    def bitbucket(self) -> PersonClient:
        """The API of the Bitbucket that signed this person in, as them, with paths relative
        to its API base (Cloud's ``BITBUCKET_API_BASE_URL``: ``get("repositories/acme")``;
        Data Center's REST API: ``get("projects")``); needs ``BITBUCKET_KEEP_TOKENS`` (else
        :class:`~bitbucket_signin.errors.TokensNotKeptError`)."""
        return get_extension().person_client(self.get_id(), self.profile.provider)

    def get_id(self) -> str:
        return self.profile.user_id


def start_session(
    extension: AppExtension, provider: Provider[Any], identity: Identity, profile: Profile
) -> CatalogUser:
    """Replace whatever the session held with a fresh signed-in session (no fixation).

    A server-side session store (Flask-Session) also gets a new session id.
    """
    interface = current_app.session_interface
    regenerate = getattr(interface, "regenerate", None)
    if regenerate is not None:
        regenerate(session)
    session.clear()
    user = CatalogUser(identity, write_sign_in(extension, provider, profile, session))
    login_user(user)
    return user


def write_sign_in(
    extension: AppExtension,
    provider: Provider[P],
    profile: P,
    target: MutableMapping[str, Any],
) -> P:
    """Put a sign-in of ``profile`` through ``provider``, starting now, into the session
    mapping ``target`` (all but Flask-Login's own keys); returns the profile as kept there."""
    kept = provider.kept(profile)
    now = int(_now(extension))
    target[PROVIDER_KEY] = provider.name
    target[PROFILE_KEY] = kept.to_dict()
    target[SIGNED_IN_AT_KEY] = now
    target[SEEN_AT_KEY] = now
    return kept


def install_user_loader(app: Flask) -> None:
    """Make Flask-Login load a Bitbucket session with our loader, any other with the app's.

    A Bitbucket session is one whose profile (written only by :func:`start_session`) names the
    signed-in user id; everything else goes to the app's own ``user_loader``. The chain is put
    in place now and again just before each load, so that a loader (or a LoginManager) the app
    registers after ``init_app`` is chained too.
    """
    _chain_loaders(app)
    user_accessed.connect(_chain_loaders, app)


def _chain_loaders(app: Flask, **_: Any) -> None:
    manager = app.login_manager  # type: ignore[attr-defined]
    if not isinstance(manager.user_callback, _ChainedLoader):
        manager.user_loader(_ChainedLoader(manager.user_callback))


class _ChainedLoader:
    """Flask-Login's user loader: Bitbucket sessions by us, other sessions by the app's loader.

    It finds the extension of the app serving the request, since one LoginManager may serve
    several apps (the app-factory pattern).
    """

    def __init__(self, app_loader: Callable[[str], Any] | None) -> None:
        self.app_loader = app_loader

    def __call__(self, user_id: str) -> Any:
        extension: AppExtension | None = current_app.extensions.get(EXTENSION_NAME)
        found = _session_profile(extension, user_id) if extension is not None else None
        if found is None and self.app_loader is not None:
            return self.app_loader(user_id)
        if extension is None:
            return None
        if found is None:  # a session that names a user but holds no profile of theirs
            session.clear()
            return None
        return _load_user(extension, *found)


def _load_user(
    extension: AppExtension, provider: Provider[Any], profile: Profile
) -> CatalogUser | None:
    if _expired(extension, provider) or _idle(extension):
        session.clear()
        return None
    try:
        identity = provider.resolve(profile, extension.catalog_store.current())
    except SignInError as error:
        logger.info("Signing out %r %r: %s", profile.display_name, profile.user_id, error.message)
        session.clear()
        return None
    return CatalogUser(identity, profile)


def _session_profile(extension: AppExtension, user_id: str) -> tuple[Provider[Any], Profile] | None:
    """The provider that signed this session in (still configured) and the profile it kept,
    when that profile is of ``user_id``."""
    data = session.get(PROFILE_KEY)
    provider = extension.providers.get(str(session.get(PROVIDER_KEY, CLOUD)))
    if not isinstance(data, dict) or provider is None:
        return None
    try:
        profile: Profile = provider.load_profile(data)
    except (KeyError, TypeError, ValueError):
        return None
    return (provider, profile) if provider.same_user(profile, user_id) else None


def _idle(extension: AppExtension) -> bool:
    """Whether the person was away longer than the idle timeout; renews the stamp if not."""
    seen_at = session.get(SEEN_AT_KEY)
    now = int(_now(extension))
    if (
        not isinstance(seen_at, int)
        or now - seen_at > extension.settings.session_idle_timeout.total_seconds()
    ):
        return True
    if now - seen_at >= SEEN_AT_RESOLUTION_SECONDS:
        session[SEEN_AT_KEY] = now
    return False


def _expired(extension: AppExtension, provider: Provider[Any]) -> bool:
    duration = provider.session_duration
    if duration is None:
        return False
    signed_in_at = session.get(SIGNED_IN_AT_KEY)
    if not isinstance(signed_in_at, int):
        return True
    return _now(extension) - signed_in_at > duration.total_seconds()


def _now(extension: AppExtension) -> float:
    """Seconds since the epoch: ``BITBUCKET_CLOCK`` when set (tests move it), else the system's."""
    return (extension.settings.clock or time.time)()
