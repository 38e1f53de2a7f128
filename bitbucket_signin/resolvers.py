"""Sign-in resolvers: which catalog User a Bitbucket account signs in as.

The built-in resolvers are Backstage's, by the same names. A resolver is any callable
``(profile, catalog) -> Identity`` that raises :class:`NotFoundError` to let the next
resolver of the chain try; any other :class:`SignInError` refuses the sign-in.

Unlike Backstage, a profile that lacks the field a resolver needs (Bitbucket often
omits ``username``) raises :class:`NotFoundError`, so the chain moves on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import (
    ACCOUNT_ID_ANNOTATION,
    USER_ID_ANNOTATION,
    USERNAME_ANNOTATION,
    Catalog,
    UserEntity,
    is_valid_name,
)
from .errors import ConfigError, ConflictError, NotFoundError, SignInError
from .profile import BitbucketProfile, braced_uuid, normalize_uuid

__all__ = [
    "NOT_IN_CATALOG_MESSAGE",
    "CatalogResolver",
    "Identity",
    "Resolver",
    "ResolverFactory",
    "UserNotInCatalogError",
    "build_chain",
    "build_resolver",
    "identity_for",
    "register_resolver",
    "resolve",
]

NOT_IN_CATALOG_MESSAGE = (
    "Failed to sign-in, unable to resolve user identity. Please verify that your catalog "
    "contains the expected User entities that would match your configured sign-in resolver."
)
_DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"
_DOMAINS = "allowedDomains"
_NOT_A_NAME_CHARACTER = re.compile(r"[^-A-Za-z0-9_.]")


@dataclass(frozen=True)
class Identity:
    """Who a visitor signs in as: Backstage's ``userEntityRef`` and ``ownershipEntityRefs``.

    ``entity`` is ``None`` when ``dangerouslyAllowSignInWithoutUserInCatalog`` let them in.
    """

    user_entity_ref: str
    ownership_entity_refs: tuple[str, ...]
    entity: UserEntity | None = None

    @property
    def display_name(self) -> str:
        """The catalog display name, else the name part of the ref."""
        if self.entity is not None:
            return self.entity.display_name
        return self.user_entity_ref.rpartition("/")[2]


Resolver = Callable[[BitbucketProfile, Catalog], Identity]
ResolverFactory = Callable[[Mapping[str, Any]], Resolver]


class UserNotInCatalogError(NotFoundError):
    """No resolver of the chain found the visitor; says what an administrator should add.

    ``attempts`` pairs each resolver's name with its message; ``suggestion`` is a YAML
    snippet for the visitor's User entity.
    """

    def __init__(
        self,
        profile: BitbucketProfile,
        attempts: tuple[tuple[str, str], ...],
        suggestion: str,
    ) -> None:
        super().__init__(NOT_IN_CATALOG_MESSAGE)
        self.profile = profile
        self.attempts = attempts
        self.suggestion = suggestion


def identity_for(catalog: Catalog, user: UserEntity) -> Identity:
    """The identity of a catalog user, with its groups; for custom resolvers too."""
    return Identity(user.ref, catalog.ownership_refs(user), user)


@dataclass(frozen=True)
class _Match:
    """What one built-in resolver reads from the profile and how it searches the catalog."""

    name: str
    missing: str
    not_found: Callable[[str], str]
    read: Callable[[BitbucketProfile], str | None]
    find: Callable[[Catalog, str], tuple[UserEntity, ...]]
    suggest: Callable[[str], str]
    entity_name: Callable[[str], str] = str
    takes_domains: bool = False
    reads_email: bool = False

    def create(self, options: Mapping[str, Any]) -> CatalogResolver:
        """The resolver with these options; raises :class:`ConfigError` on a wrong one."""
        allowed = {_DANGEROUS, _DOMAINS} if self.takes_domains else {_DANGEROUS}
        for key in options:
            if key not in allowed:
                raise ConfigError(f"Sign-in resolver '{self.name}': unknown option '{key}'")
        dangerous = options.get(_DANGEROUS, False)
        if not isinstance(dangerous, bool):
            raise ConfigError(
                f"Sign-in resolver '{self.name}': option '{_DANGEROUS}' must be true or false"
            )
        domains = options.get(_DOMAINS)
        if domains is not None and (
            not isinstance(domains, list) or not all(isinstance(d, str) for d in domains)
        ):
            raise ConfigError(
                f"Sign-in resolver '{self.name}': option '{_DOMAINS}' must be a list of domains"
            )
        return CatalogResolver(
            self, dangerous, None if domains is None else frozenset(d.lower() for d in domains)
        )


@dataclass(frozen=True)
class CatalogResolver:
    """A built-in resolver, configured: one index lookup per sign-in."""

    match: _Match
    allow_without_catalog: bool = False
    allowed_domains: frozenset[str] | None = None

    @property
    def name(self) -> str:
        return self.match.name

    @property
    def reads_email(self) -> bool:
        """Whether it matches by the email (which takes a call to ``/user/emails``)."""
        return self.match.reads_email

    def __call__(self, profile: BitbucketProfile, catalog: Catalog) -> Identity:
        value = self.match.read(profile)
        if not value:
            raise NotFoundError(self.match.missing)
        if self.allowed_domains is not None and _split_email(value)[1] not in self.allowed_domains:
            raise SignInError("Sign-in user email is not from an allowed domain", status=403)
        found = self.match.find(catalog, value)
        if len(found) > 1:
            raise ConflictError("User lookup resulted in multiple matches")
        if found:
            return identity_for(catalog, found[0])
        if self.allow_without_catalog:
            return self._without_catalog(value)
        raise NotFoundError(self.match.not_found(value))

    def suggestion(self, profile: BitbucketProfile) -> str | None:
        """The YAML an administrator adds to a User entity for this resolver to match."""
        value = self.match.read(profile)
        return self.match.suggest(value) if value else None

    def _without_catalog(self, value: str) -> Identity:
        name = _NOT_A_NAME_CHARACTER.sub("-", self.match.entity_name(value))
        if not is_valid_name(name):
            raise NotFoundError(
                f"Cannot sign in without a User entity: {_quote(name)} is not a valid entity name"
            )
        ref = f"user:default/{name}".lower()
        return Identity(ref, (ref,), None)


def _annotation(
    name: str, key: str, read: Callable[[BitbucketProfile], str | None], missing: str
) -> _Match:
    shown = braced_uuid if key == USER_ID_ANNOTATION else str
    return _Match(
        name=name,
        missing=missing,
        not_found=lambda value: f"No User entity has annotation {key} {_quote(value)}",
        read=lambda profile: shown(value) if (value := read(profile)) else None,
        find=lambda catalog, value: catalog.users_by_annotation(key, value),
        suggest=lambda value: f"metadata:\n  annotations:\n    {key}: {_quote(value)}",
        entity_name=normalize_uuid if key == USER_ID_ANNOTATION else str,
    )


def _split_email(email: str) -> tuple[str, str]:
    """The local part and the lower-cased domain ("" without an ``@``)."""
    local, at, domain = email.rpartition("@")
    return (local, domain.lower()) if at else (email, "")


def _find_by_email(catalog: Catalog, email: str) -> tuple[UserEntity, ...]:
    """Users with this ``spec.profile.email``; else, for ``a+tag@b``, with ``a@b``."""
    found = catalog.users_by_email(email)
    local, domain = _split_email(email)
    if found or "+" not in local:
        return found
    return catalog.users_by_email(f"{local.partition('+')[0]}@{domain}")


def _find_by_local_part(catalog: Catalog, email: str) -> tuple[UserEntity, ...]:
    user = catalog.user_by_name(_split_email(email)[0])
    return () if user is None else (user,)


_NO_EMAIL = "Login failed, user profile does not contain an email"
_BUILT_IN = (
    _annotation(
        "userIdMatchingUserEntityAnnotation",
        USER_ID_ANNOTATION,
        lambda profile: profile.uuid,
        "Bitbucket user profile does not contain an ID",
    ),
    _annotation(
        "usernameMatchingUserEntityAnnotation",
        USERNAME_ANNOTATION,
        lambda profile: profile.username,
        "Bitbucket user profile does not contain a Username",
    ),
    _annotation(
        "accountIdMatchingUserEntityAnnotation",
        ACCOUNT_ID_ANNOTATION,
        lambda profile: profile.account_id,
        "Bitbucket user profile does not contain an account ID",
    ),
    _Match(
        name="emailMatchingUserEntityProfileEmail",
        missing=_NO_EMAIL,
        not_found=lambda email: f"No User entity has spec.profile.email {_quote(email)}",
        read=lambda profile: profile.email,
        find=_find_by_email,
        suggest=lambda email: f"spec:\n  profile:\n    email: {_quote(email)}",
        reads_email=True,
    ),
    _Match(
        name="emailLocalPartMatchingUserEntityName",
        missing=_NO_EMAIL,
        not_found=lambda email: (
            f"No User entity named {_quote(_split_email(email)[0])} in namespace default"
        ),
        read=lambda profile: profile.email,
        find=_find_by_local_part,
        suggest=lambda email: f"metadata:\n  name: {_quote(_split_email(email)[0])}",
        entity_name=lambda email: _split_email(email)[0],
        takes_domains=True,
        reads_email=True,
    ),
)
_ALIASES = {
    "bitbucketUserIdSignInResolver": "userIdMatchingUserEntityAnnotation",
    "bitbucketUsernameSignInResolver": "usernameMatchingUserEntityAnnotation",
}
_registry: dict[str, ResolverFactory] = {match.name: match.create for match in _BUILT_IN}
_registry.update({alias: _registry[name] for alias, name in _ALIASES.items()})


def register_resolver(name: str, factory: ResolverFactory) -> None:
    """Make ``factory(options)`` available as the resolver ``name`` in the configuration."""
    if name in _registry:
        raise ConfigError(f"Sign-in resolver '{name}' is already registered")
    _registry[name] = factory


def build_resolver(spec: str | Mapping[str, Any] | Resolver) -> Resolver:
    """A resolver from a name, a Backstage-style ``{resolver: name, ...options}`` or a callable."""
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, Mapping):
        options = dict(spec)
        name = options.pop("resolver", None)
        if not isinstance(name, str):
            raise ConfigError(f"Sign-in resolver {spec!r} has no 'resolver' name")
    elif callable(spec):
        return spec
    else:
        raise ConfigError(f"Sign-in resolver {spec!r} is not a name, a mapping or a callable")
    factory = _registry.get(name)
    if factory is None:
        raise ConfigError(f"Sign-in resolver '{name}' is not available")
    return factory(options)


def build_chain(
    specs: Iterable[str | Mapping[str, Any] | Resolver],
) -> tuple[Resolver, ...]:
    """The resolvers to try in order; at least one."""
    chain = tuple(build_resolver(spec) for spec in specs)
    if not chain:
        raise ConfigError("At least one sign-in resolver must be configured")
    return chain


def resolve(chain: Iterable[Resolver], profile: BitbucketProfile, catalog: Catalog) -> Identity:
    """Try each resolver in turn; raises :class:`UserNotInCatalogError` when none matches."""
    chain = tuple(chain)
    attempts = []
    for resolver in chain:
        try:
            return resolver(profile, catalog)
        except NotFoundError as error:
            attempts.append((_name_of(resolver), error.message))
    raise UserNotInCatalogError(profile, tuple(attempts), _suggestion(chain, profile))


def _name_of(resolver: Resolver) -> str:
    if isinstance(resolver, CatalogResolver):
        return resolver.name
    return str(getattr(resolver, "__name__", type(resolver).__name__))


def _suggestion(chain: tuple[Resolver, ...], profile: BitbucketProfile) -> str:
    """What the first built-in resolver that can use this profile would match."""
    for resolver in chain:
        if isinstance(resolver, CatalogResolver) and (text := resolver.suggestion(profile)):
            return text
    return "A User entity that one of the configured sign-in resolvers matches."


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)
