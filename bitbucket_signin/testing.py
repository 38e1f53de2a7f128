"""Testing an app that uses bitbucket-signin, without Bitbucket.

:class:`SignedInClient` is a Flask test client signed in as a catalog user, for unit tests of
the app's own protected views (like Flask-Login's ``FlaskLoginClient``)::

    app.test_client_class = SignedInClient
    client = app.test_client(user="user:default/jdoe")
    client = app.test_client(user="jdoe", provider="bitbucketServer")  # with Data Center

For whole sign-ins over real HTTP, start the Bitbucket emulator (the pytest fixtures of
:mod:`bitbucket_signin.pytest_plugin` do), point the app at it with
:func:`emulator_settings`, serve the app, and call :func:`sign_in`.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from flask.testing import FlaskClient

from .app_extension import AppExtension, get_extension
from .catalog import ACCOUNT_ID_ANNOTATION, USER_ID_ANNOTATION, USERNAME_ANNOTATION, UserEntity
from .client import EMAILS, BitbucketClient
from .identity_keys import ascii_lower
from .profile import BitbucketProfile, Workspace, braced_uuid
from .providers import CLOUD, DATA_CENTER, AnyProfile
from .server_profile import ServerProfile
from .server_resolvers import user_id_annotation, user_slug_annotation
from .session import write_sign_in

__all__ = [
    "SignedInClient",
    "emulator_settings",
    "grant_at_emulator",
    "profile_for",
    "server_profile_for",
    "sign_in",
    "start_sign_in",
]

# Flask-Login's session keys, as its own login_user and FlaskLoginClient write them.
_USER_ID_KEY = "_user_id"
_FRESH_KEY = "_fresh"
_UNANNOTATED = uuid.UUID("0b7c6a52-0c43-4d37-9a61-2f1d5c3e8b90")  # uuids for users without one


class SignedInClient(FlaskClient):
    """A test client signed in as a catalog user: ``app.test_client(user=...)``.

    ``user`` is a User entity ref (``user:default/jdoe``, or just ``jdoe``) or an account: a
    :class:`~bitbucket_signin.BitbucketProfile` (Bitbucket Cloud) or a
    :class:`~bitbucket_signin.ServerProfile` (Data Center). A ref signs in with ``provider``
    (``"bitbucket"`` or ``"bitbucketServer"``; by default the app's Cloud, or its Data Center
    when that is its only provider). The session is the one a real sign-in leaves, so
    ``current_user``, ``login_required``, the idle timeout and the catalog checks on every
    request behave as in production. Without ``user``, the client is signed out.
    """

    def __init__(
        self,
        *args: Any,
        user: str | AnyProfile | None = None,
        provider: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:
            self.sign_in_as(user, provider)

    def sign_in_as(self, user: str | AnyProfile, provider: str | None = None) -> AnyProfile:
        """Replace the client's session with a sign-in as ``user``; returns its profile.

        Raises ``ValueError`` when the app's resolvers would not sign that profile in as the
        named user (or at all), as the app itself would refuse it, and a ``SignInError``
        (404) when the app does not sign in with that provider.
        """
        extension = get_extension(self.application)
        profile = user if not isinstance(user, str) else _profile_for(extension, user, provider)
        if provider is not None and provider != profile.provider:
            raise ValueError(f"a {type(profile).__name__} signs in with {profile.provider}")
        with self.application.app_context():  # as on a request: custom resolvers may need it
            identity = extension.resolve(profile)  # a SignInError says why the app refuses it
        if isinstance(user, str) and identity.user_entity_ref != _user_ref(user):
            raise ValueError(
                f"{user}: the app's resolvers sign its {profile.provider} profile in as "
                f"{identity.user_entity_ref}; pass a {type(profile).__name__} instead"
            )
        with self.session_transaction() as session:
            session.clear()
            kept: AnyProfile = write_sign_in(
                extension, extension.provider(profile.provider), profile, session
            )
            session[_USER_ID_KEY] = kept.user_id
            session[_FRESH_KEY] = True
        return kept


def _profile_for(extension: AppExtension, ref: str, provider: str | None) -> AnyProfile:
    """The profile of the catalog user ``ref`` at ``provider`` (default: the app's first)."""
    name = provider if provider is not None else next(iter(extension.providers))
    extension.provider(name)  # a SignInError (404) when the app does not sign in with it
    return (
        server_profile_for(extension, ref) if name == DATA_CENTER else profile_for(extension, ref)
    )


def profile_for(extension: AppExtension, ref: str) -> BitbucketProfile:
    """The Bitbucket Cloud profile of the catalog user ``ref``, made from its annotations and
    email.

    The uuid is the ``bitbucket.org/user-id`` annotation (else one made from the ref); the
    email is known when the app asks Bitbucket for it, and the profile belongs to the
    workspaces ``BITBUCKET_ALLOWED_WORKSPACES`` asks for.
    """
    entity = _entity(extension, ref)
    allowed = extension.settings.allowed_workspaces
    client = extension.provider(CLOUD).client
    asks_for_emails = isinstance(client, BitbucketClient) and EMAILS in client.listings
    return BitbucketProfile(
        uuid=braced_uuid(entity.annotations.get(USER_ID_ANNOTATION) or str(_made_up_uuid(entity))),
        account_id=entity.annotations.get(ACCOUNT_ID_ANNOTATION),
        display_name=entity.display_name or entity.name,
        username=entity.annotations.get(USERNAME_ANNOTATION),
        email=entity.email if asks_for_emails else None,
        workspaces=tuple(Workspace(slug) for slug in sorted(allowed)) if allowed else None,
    )


def server_profile_for(extension: AppExtension, ref: str) -> ServerProfile:
    """The Bitbucket Data Center profile of the catalog user ``ref``, made from its
    annotations and email.

    The id is the ``<host>/user-id`` annotation (else one made from the ref), the slug the
    ``<host>/user-slug`` annotation (else the entity's name), and the login name is the
    slug; Data Center always tells the email.
    """
    server = extension.settings.server
    if server is None:
        raise ValueError("the app does not sign in with Bitbucket Data Center")
    entity = _entity(extension, ref)
    user_id = entity.annotations.get(user_id_annotation(server.host), "")
    slug = entity.annotations.get(user_slug_annotation(server.host)) or entity.name
    return ServerProfile(
        id=int(user_id) if user_id.isascii() and user_id.isdigit() else _made_up_id(entity),
        name=slug,
        slug=slug,
        display_name=entity.display_name or entity.name,
        email=entity.email,
    )


def _entity(extension: AppExtension, ref: str) -> UserEntity:
    """The catalog's User ``ref``; a ``ValueError`` when there is none."""
    entity = extension.catalog_store.current().user_by_ref(_user_ref(ref))
    if entity is None:
        raise ValueError(f"{_user_ref(ref)}: no such User in the catalog")
    return entity


def _made_up_uuid(entity: UserEntity) -> uuid.UUID:
    """A stable account key for a User without one in its annotations."""
    return uuid.uuid5(_UNANNOTATED, entity.ref)


def _made_up_id(entity: UserEntity) -> int:
    """A stable Data Center id for a User without one, as Data Center's ids are: 31 bits."""
    return _made_up_uuid(entity).int % 2**31


def _user_ref(ref: str) -> str:
    """A full User ref: ``jdoe`` is ``user:default/jdoe``, ``user:jdoe`` too."""
    kind, _, rest = ref.rpartition(":") if ":" in ref else ("user", "", ref)
    namespace, _, name = rest.rpartition("/") if "/" in rest else ("default", "", rest)
    return ascii_lower(f"{kind or 'user'}:{namespace}/{name}")


def emulator_settings(emulator_url: str) -> dict[str, str]:
    """The three Flask settings that send an app to the emulator at ``emulator_url``."""
    return {
        "BITBUCKET_AUTHORIZE_URL": f"{emulator_url}/site/oauth2/authorize",
        "BITBUCKET_TOKEN_URL": f"{emulator_url}/site/oauth2/access_token",
        "BITBUCKET_API_BASE_URL": f"{emulator_url}/2.0",
    }


def start_sign_in(http: requests.Session, app_url: str, next_path: str = "/") -> str:
    """Press "Sign in with Bitbucket"; returns the authorize URL the app sent the browser to."""
    response = http.get(
        f"{app_url}/api/auth/bitbucket/start",
        params={"next": next_path},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302:
        raise AssertionError(f"sign-in start answered {response.status_code}: {response.text}")
    return response.headers["Location"]


def grant_at_emulator(emulator_url: str, authorize_url: str, account: str) -> str:
    """Press the account's button on the emulator's authorize page; returns the callback URL.

    ``account`` is the account's uuid, account id or username in the emulator's accounts.
    """
    query = urlsplit(authorize_url).query
    response = requests.get(
        f"{emulator_url}/_emulator/authorize-as/{quote(account)}?{query}",
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code != 302:
        raise AssertionError(f"the emulator answered {response.status_code}: {response.text}")
    return response.headers["Location"]


def sign_in(
    http: requests.Session, app_url: str, emulator_url: str, account: str, next_path: str = "/"
) -> requests.Response:
    """A whole sign-in over real HTTP; returns the app's answer to the callback (302 to
    ``next_path`` when it worked, the sign-in page with the reason when not)."""
    authorize_url = start_sign_in(http, app_url, next_path)
    callback_url = grant_at_emulator(emulator_url, authorize_url, account)
    return http.get(callback_url, allow_redirects=False, timeout=30)
