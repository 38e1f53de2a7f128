"""Sign-in resolvers for Bitbucket Data Center accounts.

Backstage's two email resolvers (``emailMatchingUserEntityProfileEmail``,
``emailLocalPartMatchingUserEntityName``, with their options), and ours on annotations that
name the instance: ``<host>/user-id`` (the numeric id, stable while names change) and
``<host>/user-slug``, where ``<host>`` is the host of ``BITBUCKET_SERVER_URL``. An id means
something only on its own instance, so the key says which instance, and never collides with
Bitbucket Cloud's ``bitbucket.org/…`` annotations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .catalog.bitbucket import SERVER_USER_ID, SERVER_USER_SLUG
from .resolvers import (
    CatalogMatch,
    ProviderResolver,
    ProviderResolverFactory,
    annotation_match,
    chain_from,
    email_matches,
)
from .server_profile import ServerProfile

ServerResolver = ProviderResolver[ServerProfile]
USER_ID_RESOLVER = "userIdMatchingUserEntityAnnotation"
USER_SLUG_RESOLVER = "userSlugMatchingUserEntityAnnotation"


def user_id_annotation(host: str) -> str:
    """The annotation naming a user's numeric id on the instance at ``host``."""
    return f"{host}/{SERVER_USER_ID}"


def user_slug_annotation(host: str) -> str:
    """The annotation naming a user's slug on the instance at ``host``."""
    return f"{host}/{SERVER_USER_SLUG}"


def server_resolvers(host: str) -> dict[str, ProviderResolverFactory[ServerProfile]]:
    """The resolvers available for the Data Center instance at ``host``, by name."""
    emails: tuple[CatalogMatch[ServerProfile], ...] = email_matches()
    matches = (
        annotation_match(
            USER_ID_RESOLVER,
            user_id_annotation(host),
            lambda profile: str(profile.id),
            "Bitbucket Data Center user profile does not contain an ID",
        ),
        annotation_match(
            USER_SLUG_RESOLVER,
            user_slug_annotation(host),
            lambda profile: profile.slug,
            "Bitbucket Data Center user profile does not contain a slug",
        ),
        *emails,
    )
    return {match.name: match.create for match in matches}


def server_chain(
    specs: Iterable[str | Mapping[str, Any] | ServerResolver], host: str
) -> tuple[ServerResolver, ...]:
    """The Data Center resolvers to try in order (names, mappings or callables)."""
    return chain_from(specs, server_resolvers(host))
