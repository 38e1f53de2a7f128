"""The identity providers a site signs people in with: Bitbucket Cloud, Bitbucket Data Center,
or both (during a migration). Each is one :class:`Provider`: its OAuth client, how it finds
the account behind a token, its resolvers, and what its sessions keep, so that the routes,
the session and the pages handle either the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

from .catalog import Catalog
from .client import BitbucketClient
from .config import ServerSettings, Settings
from .errors import ConfigError, SignInError
from .oauth import bitbucket_oauth_app, requested_scopes
from .person_client import PersonApi
from .profile import PROVIDER as CLOUD
from .profile import BitbucketProfile, for_session, normalize_uuid, workspace_refusal
from .resolvers import Identity, P, ProviderResolver, Resolver, resolve
from .server_client import REST_PATH, DataCenterClient
from .server_oauth import server_oauth_app
from .server_profile import PROVIDER as DATA_CENTER
from .server_profile import ServerProfile
from .server_resolvers import server_chain
from .waiting import Deadline

__all__ = [
    "CLOUD",
    "DATA_CENTER",
    "AnyProfile",
    "ProfileClient",
    "Provider",
    "cloud_provider",
    "server_provider",
]

#: An account of either provider; its type names its provider (``profile.provider``).
AnyProfile: TypeAlias = BitbucketProfile | ServerProfile

P_co = TypeVar("P_co", covariant=True)


class ProfileClient(Protocol[P_co]):
    """What finds the account behind an access token (``BitbucketClient``,
    ``DataCenterClient``)."""

    def fetch_profile(self, access_token: str, deadline: Deadline) -> P_co: ...


@dataclass(frozen=True)
class Provider(Generic[P]):
    """One identity provider, configured.

    ``name`` is Backstage's (``bitbucket``, ``bitbucketServer``): Authlib's client name and
    the routes' last segment; ``routes`` prefixes the endpoints of its routes (``start``,
    ``server_start``, …), which live under ``url_prefix``; ``label`` names it on the
    sign-in button; ``scopes`` are those asked of it; ``person_api`` is its API as the
    signed-in person (``current_user.bitbucket``, with ``BITBUCKET_KEEP_TOKENS``).
    """

    name: str
    label: str
    routes: str
    url_prefix: str
    scopes: tuple[str, ...]
    callback_url: str | None
    callback_setting: str
    session_duration: timedelta | None
    oauth_app: Any
    client: ProfileClient[P]
    resolvers: tuple[ProviderResolver[P], ...]
    load_profile: Callable[[Mapping[str, Any]], P]
    same_user: Callable[[P, str], bool]
    kept: Callable[[P], P]
    refusal: Callable[[P], SignInError | None]
    person_api: PersonApi

    def endpoint(self, route: str) -> str:
        """The blueprint endpoint of one of its routes: ``start``, ``callback``, …"""
        return f"bitbucket_signin.{self.routes}{route}"

    def resolve(self, profile: P, catalog: Catalog) -> Identity:
        """The catalog identity of ``profile``; raises a ``SignInError`` when there is none."""
        refusal = self.refusal(profile)
        if refusal is not None:
            raise refusal
        return resolve(self.resolvers, profile, catalog)


def cloud_provider(
    settings: Settings,
    resolvers: tuple[Resolver, ...],
    client: BitbucketClient,
    user_agent: str,
    label: str,
) -> Provider[BitbucketProfile]:
    """Bitbucket Cloud (``BITBUCKET_CLIENT_ID`` is set)."""
    allowed = settings.allowed_workspaces
    return Provider(
        name=CLOUD,
        label=label,
        routes="",
        url_prefix=settings.url_prefix,
        scopes=requested_scopes(settings),
        callback_url=settings.callback_url,
        callback_setting="BITBUCKET_CALLBACK_URL",
        session_duration=settings.session_duration,
        oauth_app=bitbucket_oauth_app(settings, user_agent),
        client=client,
        resolvers=resolvers,
        load_profile=BitbucketProfile.from_dict,
        same_user=lambda profile, user_id: normalize_uuid(profile.uuid) == normalize_uuid(user_id),
        kept=partial(for_session, allowed=allowed),
        refusal=partial(_workspace_refusal, allowed=allowed),
        person_api=PersonApi(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            token_url=settings.token_url,
            auth_method="client_secret_basic",
            api_base_url=settings.api_base_url,
            upstream="Bitbucket",
        ),
    )


def _workspace_refusal(profile: BitbucketProfile, allowed: frozenset[str]) -> SignInError | None:
    """The refusal of an account outside ``BITBUCKET_ALLOWED_WORKSPACES``, if it is."""
    refusal = workspace_refusal(profile, allowed)
    if refusal is None:
        return None
    return SignInError(refusal, status=403, reason="WorkspaceNotAllowed")


def server_provider(
    settings: Settings, server: ServerSettings, user_agent: str
) -> Provider[ServerProfile]:
    """Bitbucket Data Center (``BITBUCKET_SERVER_URL`` is set)."""
    try:
        resolvers = server_chain(server.resolvers, server.host)
    except ConfigError as error:
        raise ConfigError(f"BITBUCKET_SERVER_SIGNIN_RESOLVERS: {error}") from None
    client = DataCenterClient(
        server.api_url,
        server.url,
        timeout=settings.timeout,
        max_body_bytes=settings.max_response_bytes,
        user_agent=user_agent,
    )
    return Provider(
        name=DATA_CENTER,
        label=server.name,
        routes="server_",
        url_prefix=server.url_prefix,
        scopes=server.scopes,
        callback_url=server.callback_url,
        callback_setting="BITBUCKET_SERVER_CALLBACK_URL",
        session_duration=server.session_duration or settings.session_duration,
        oauth_app=server_oauth_app(settings, server, user_agent),
        client=client,
        resolvers=resolvers,
        load_profile=ServerProfile.from_dict,
        same_user=lambda profile, user_id: profile.user_id == user_id,
        kept=lambda profile: profile,
        refusal=lambda profile: None,
        person_api=PersonApi(
            client_id=server.client_id,
            client_secret=server.client_secret,
            token_url=server.token_url,
            auth_method="client_secret_post",  # the form body: Data Center documents no other
            api_base_url=server.api_url + REST_PATH,
            upstream="Bitbucket Data Center",
            refresh_sends_redirect_uri=True,
        ),
    )
