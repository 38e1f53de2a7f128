"""Sign-in resolvers: which catalog User a Bitbucket account signs in as.

The built-in resolvers are Backstage's, by the same names. A resolver is any callable
``(profile, catalog) -> Identity`` that raises :class:`NotFoundError` to let the next
resolver of the chain try; any other :class:`SignInError` refuses the sign-in.

Unlike Backstage, a profile that lacks the field a resolver needs (Bitbucket often
omits ``username``) raises :class:`NotFoundError`, so the chain moves on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from .catalog import (
    ACCOUNT_ID_ANNOTATION,
    USER_ID_ANNOTATION,
    USERNAME_ANNOTATION,
    Catalog,
    UserEntity,
    annotation_value_key,
    is_valid_name,
)
from .errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    SignInError,
    UserNotInCatalogError,
    quoted,
)
from .identity_keys import ascii_lower, domain_key, email_key_parts
from .profile import BitbucketProfile, Profile, braced_uuid

__all__ = [
    "CatalogResolver",
    "Explanation",
    "Identity",
    "Resolver",
    "ResolverFactory",
    "Step",
    "annotation_match",
    "build_chain",
    "build_resolver",
    "chain_from",
    "email_matches",
    "explain",
    "identity_for",
    "register_resolver",
    "resolve",
]

_DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"
_DOMAINS = "allowedDomains"
_ANY_DOMAIN = "dangerouslyAllowAnyEmailDomain"


@dataclass(frozen=True)
class Identity:
    """Who a visitor signs in as: Backstage's ``userEntityRef`` and ``ownershipEntityRefs``.

    ``entity`` is ``None`` when ``dangerouslyAllowSignInWithoutUserInCatalog`` let them in;
    ``resolver`` names the resolver of the chain that matched (set by :func:`resolve`).
    """

    user_entity_ref: str
    ownership_entity_refs: tuple[str, ...]
    entity: UserEntity | None = None
    resolver: str | None = None


P = TypeVar("P", bound=Profile)
# A resolver of one provider's profiles (Bitbucket Cloud's: ``Resolver``), and its factory.
ProviderResolver = Callable[[P, Catalog], Identity]
Resolver = ProviderResolver[BitbucketProfile]
ProviderResolverFactory = Callable[[Mapping[str, Any]], ProviderResolver[P]]
ResolverFactory = ProviderResolverFactory[BitbucketProfile]


def identity_for(catalog: Catalog, user: UserEntity) -> Identity:
    """The identity of a catalog user, with its groups; for custom resolvers too."""
    return Identity(user.ref, catalog.ownership_refs(user), user)


@dataclass(frozen=True)
class CatalogMatch(Generic[P]):
    """What one built-in resolver reads from the profile and how it searches the catalog."""

    name: str
    missing: str
    what: str  # what it compares, for messages: "annotation bitbucket.org/user-id"
    read: Callable[[P], str | None]
    find: Callable[[Catalog, str], tuple[UserEntity, ...]]
    suggest: Callable[[str], str]
    shown: Callable[[str], str] = str  # the part of the value it compares, for messages
    # The entity name a value signs in as without a User entity: its comparison key, so that
    # two accounts get one name only when the resolver takes them for one. None: no fallback.
    fallback_name: Callable[[str], str | None] | None = None
    takes_domains: bool = False
    reads_email: bool = False

    def sought(self, value: str) -> str:
        """What it looks for in the catalog given ``value``."""
        return f"{self.what} {quoted(self.shown(value), limit=None)}"

    def create(self, options: Mapping[str, Any]) -> CatalogResolver[P]:
        """The resolver with these options; raises :class:`ConfigError` on a wrong one."""
        allowed = {_DANGEROUS, _DOMAINS, _ANY_DOMAIN} if self.takes_domains else {_DANGEROUS}
        for key in options:
            if key not in allowed:
                raise self._error(f"unknown option '{key}'")
        dangerous = self._flag(options, _DANGEROUS)
        domains = self._domains(options) if self.takes_domains else None
        if dangerous and self.fallback_name is None:
            raise self._error(
                f"option '{_DANGEROUS}' is not available: an email address is not an entity "
                "name (emailLocalPartMatchingUserEntityName can use the part before the @)"
            )
        if dangerous and self.takes_domains and (domains is None or len(domains) != 1):
            raise self._error(
                f"option '{_DANGEROUS}' needs exactly one '{_DOMAINS}' entry: the same local "
                "part at two domains would be two people signing in as one"
            )
        return CatalogResolver(self, dangerous, domains)

    def _error(self, problem: str) -> ConfigError:
        return ConfigError(f"Sign-in resolver '{self.name}': {problem}")

    def _flag(self, options: Mapping[str, Any], key: str) -> bool:
        value = options.get(key, False)
        if not isinstance(value, bool):
            raise self._error(f"option '{key}' must be true or false")
        return value

    def _domains(self, options: Mapping[str, Any]) -> frozenset[str] | None:
        """The keys of ``allowedDomains``; ``None`` only with ``dangerouslyAllowAnyEmailDomain``."""
        any_domain = self._flag(options, _ANY_DOMAIN)
        domains = options.get(_DOMAINS)
        if domains is None:
            if any_domain:
                return None
            raise self._error(
                f"option '{_DOMAINS}' is required (or '{_ANY_DOMAIN}: true'): without it "
                "jdoe@any-domain signs in as the User named jdoe"
            )
        if any_domain:
            raise self._error(f"give '{_DOMAINS}' or '{_ANY_DOMAIN}: true', not both")
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise self._error(f"option '{_DOMAINS}' must be a list of domains")
        if not domains:
            raise self._error(f"option '{_DOMAINS}' is empty: nobody could sign in")
        keys = []
        for domain in domains:
            key = domain_key(domain)
            if key is None:
                raise self._error(
                    f"option '{_DOMAINS}': {quoted(domain, limit=None)} is not a domain name "
                    "(IDNA 2008)"
                )
            keys.append(key)
        return frozenset(keys)


@dataclass(frozen=True)
class CatalogResolver(Generic[P]):
    """A built-in resolver, configured: one index lookup per sign-in."""

    match: CatalogMatch[P]
    allow_without_catalog: bool = False
    allowed_domains: frozenset[str] | None = None

    @property
    def name(self) -> str:
        return self.match.name

    @property
    def reads_email(self) -> bool:
        """Whether it matches by the email (which takes a call to ``/user/emails``)."""
        return self.match.reads_email

    def __call__(self, profile: P, catalog: Catalog) -> Identity:
        value = self.match.read(profile)
        if not value:
            raise NotFoundError(self.match.missing)
        if self.allowed_domains is not None and _domain_key(value) not in self.allowed_domains:
            raise SignInError(
                "Sign-in user email is not from an allowed domain",
                status=403,
                reason="DomainNotAllowed",
            )
        found = self.match.find(catalog, value)
        if len(found) > 1:
            raise ConflictError("User lookup resulted in multiple matches")
        if found:
            return identity_for(catalog, found[0])
        if self.allow_without_catalog:
            return self._without_catalog(value, catalog)
        raise NotFoundError(f"No User entity has {self.match.sought(value)}")

    def looking_for(self, profile: P) -> str | None:
        """What it looks for in the catalog for this profile (``None``: the profile lacks
        what it reads, so it looks for nothing)."""
        value = self.match.read(profile)
        return self.match.sought(value) if value else None

    def suggestion(self, profile: P) -> str | None:
        """The YAML an administrator adds to a User entity for this resolver to match."""
        value = self.match.read(profile)
        return self.match.suggest(value) if value else None

    def _without_catalog(self, value: str, catalog: Catalog) -> Identity:
        """``user:default/<the value's key>``: never changed to fit, never a catalog User's."""
        name = self.match.fallback_name(value) if self.match.fallback_name else None
        if name is None or not is_valid_name(name) or name != ascii_lower(name):
            raise NotFoundError(
                f"Cannot sign in without a User entity: {quoted(value, limit=None)} is not a "
                "valid entity name in lower case"
            )
        ref = f"user:default/{name}"
        if catalog.user_by_ref(ref) is not None:
            raise SignInError(
                f"You cannot sign in as {ref}: that is a User of the catalog, and nothing links "
                "it to your Bitbucket account. Ask an administrator to add you to the catalog.",
                status=403,
                reason="CatalogRefTaken",
            )
        return Identity(ref, (ref,), None)


def annotation_match(
    name: str, key: str, read: Callable[[P], str | None], missing: str
) -> CatalogMatch[P]:
    """The resolver ``name``: the catalog User whose annotation ``key`` is ``read(profile)``."""
    shown = braced_uuid if key == USER_ID_ANNOTATION else str
    return CatalogMatch(
        name=name,
        missing=missing,
        what=f"annotation {key}",
        read=lambda profile: shown(value) if (value := read(profile)) else None,
        find=lambda catalog, value: catalog.users_by_annotation(key, value),
        suggest=lambda value: f"metadata:\n  annotations:\n    {key}: {quoted(value, limit=None)}",
        fallback_name=lambda value: annotation_value_key(key, value),
    )


def _local_part(email: str) -> str:
    """The address as written before its last ``@`` (all of it without one), for messages."""
    local, at, _ = email.rpartition("@")
    return local if at else email


def _local_part_key(email: str) -> str | None:
    parts = email_key_parts(email)
    return None if parts is None else parts[0]


def _domain_key(email: str) -> str | None:
    parts = email_key_parts(email)
    return None if parts is None else parts[1]


def _find_by_email(catalog: Catalog, email: str) -> tuple[UserEntity, ...]:
    """Users with this ``spec.profile.email``; else, for ``a+tag@b``, with ``a@b``."""
    found = catalog.users_by_email(email)
    parts = email_key_parts(email)
    if found or parts is None or "+" not in parts[0]:
        return found
    return catalog.users_by_email(f"{parts[0].partition('+')[0]}@{parts[1]}")


def _find_by_local_part(catalog: Catalog, email: str) -> tuple[UserEntity, ...]:
    local = _local_part_key(email)
    user = None if local is None else catalog.user_by_name(local)
    return () if user is None else (user,)


_NO_EMAIL = "Login failed, user profile does not contain an email"


def email_matches() -> tuple[CatalogMatch[P], CatalogMatch[P]]:
    """Backstage's two email resolvers, for any provider's profiles."""
    return (
        CatalogMatch(
            name="emailMatchingUserEntityProfileEmail",
            missing=_NO_EMAIL,
            what="spec.profile.email",
            read=lambda profile: profile.email,
            find=_find_by_email,
            suggest=lambda email: f"spec:\n  profile:\n    email: {quoted(email, limit=None)}",
            reads_email=True,
        ),
        CatalogMatch(
            name="emailLocalPartMatchingUserEntityName",
            missing=_NO_EMAIL,
            what="metadata.name (namespace default)",
            read=lambda profile: profile.email,
            find=_find_by_local_part,
            suggest=lambda email: f"metadata:\n  name: {quoted(_local_part(email), limit=None)}",
            shown=_local_part,
            fallback_name=_local_part_key,
            takes_domains=True,
            reads_email=True,
        ),
    )


_EMAIL_MATCHES: tuple[CatalogMatch[BitbucketProfile], ...] = email_matches()
_BUILT_IN: tuple[CatalogMatch[BitbucketProfile], ...] = (
    annotation_match(
        "userIdMatchingUserEntityAnnotation",
        USER_ID_ANNOTATION,
        lambda profile: profile.uuid,
        "Bitbucket user profile does not contain an ID",
    ),
    annotation_match(
        "usernameMatchingUserEntityAnnotation",
        USERNAME_ANNOTATION,
        lambda profile: profile.username,
        "Bitbucket user profile does not contain a Username",
    ),
    annotation_match(
        "accountIdMatchingUserEntityAnnotation",
        ACCOUNT_ID_ANNOTATION,
        lambda profile: profile.account_id,
        "Bitbucket user profile does not contain an account ID",
    ),
    *_EMAIL_MATCHES,
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
    """A Bitbucket Cloud resolver from a name, a Backstage-style ``{resolver: name,
    ...options}`` or a callable."""
    return resolver_from(spec, _registry)


def resolver_from(
    spec: str | Mapping[str, Any] | ProviderResolver[P],
    registry: Mapping[str, ProviderResolverFactory[P]],
) -> ProviderResolver[P]:
    """A resolver of ``registry`` (a provider's, by name) from a name, a Backstage-style
    ``{resolver: name, ...options}`` or a callable."""
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
    factory = registry.get(name)
    if factory is None:
        raise ConfigError(f"Sign-in resolver '{name}' is not available")
    return factory(options)


def build_chain(
    specs: Iterable[str | Mapping[str, Any] | Resolver],
) -> tuple[Resolver, ...]:
    """The Bitbucket Cloud resolvers to try in order; at least one."""
    return chain_from(specs, _registry)


def chain_from(
    specs: Iterable[str | Mapping[str, Any] | ProviderResolver[P]],
    registry: Mapping[str, ProviderResolverFactory[P]],
) -> tuple[ProviderResolver[P], ...]:
    """The resolvers (of ``registry``, a provider's) to try in order; at least one."""
    chain = tuple(resolver_from(spec, registry) for spec in specs)
    if not chain:
        raise ConfigError("At least one sign-in resolver must be configured")
    fallbacks = [
        resolver.name
        for resolver in chain
        if isinstance(resolver, CatalogResolver) and resolver.allow_without_catalog
    ]
    if len(fallbacks) > 1:
        raise ConfigError(
            f"Sign-in resolvers {', '.join(fallbacks)}: only one may use '{_DANGEROUS}', "
            "or two Bitbucket accounts could sign in as one ref"
        )
    return chain


def resolve(chain: Iterable[ProviderResolver[P]], profile: P, catalog: Catalog) -> Identity:
    """Try each resolver in turn; raises :class:`UserNotInCatalogError` when none matches."""
    chain = tuple(chain)
    attempts = []
    for resolver in chain:
        try:
            return replace(resolver(profile, catalog), resolver=_name_of(resolver))
        except NotFoundError as error:
            attempts.append((_name_of(resolver), error.message))
    raise UserNotInCatalogError(profile, tuple(attempts), _suggestion(chain, profile))


@dataclass(frozen=True)
class Step:
    """One resolver's turn: what it looked for, what it found, and whom it matched."""

    resolver: str
    looked_for: str
    found: str
    identity: Identity | None = None


@dataclass(frozen=True)
class Explanation:
    """Each resolver's turn until one matched or refused; ``suggestion`` when nobody matched."""

    steps: tuple[Step, ...]
    suggestion: str | None


def explain(chain: Iterable[ProviderResolver[P]], profile: P, catalog: Catalog) -> Explanation:
    """What :func:`resolve` does for ``profile``, step by step, for an administrator."""
    chain = tuple(chain)
    steps = []
    for resolver in chain:
        name = _name_of(resolver)
        sought, found = "what it reads", None  # a custom resolver's own business
        if isinstance(resolver, CatalogResolver):
            value = resolver.looking_for(profile)
            sought = value or f"nothing ({resolver.match.missing})"
            found = "no User entity" if value else "nothing"
        try:
            identity = resolver(profile, catalog)
        except NotFoundError as error:
            steps.append(Step(name, sought, found or error.message))
            continue
        except SignInError as error:
            steps.append(Step(name, sought, f"refused: {error.message}"))
            return Explanation(tuple(steps), None)
        found = identity.user_entity_ref if identity.entity else "no User entity"
        steps.append(Step(name, sought, found, replace(identity, resolver=name)))
        return Explanation(tuple(steps), None)
    return Explanation(tuple(steps), _suggestion(chain, profile))


def _name_of(resolver: ProviderResolver[P]) -> str:
    if isinstance(resolver, CatalogResolver):
        return resolver.name
    return str(getattr(resolver, "__name__", type(resolver).__name__))


def _suggestion(chain: tuple[ProviderResolver[P], ...], profile: P) -> str:
    """What the first built-in resolver that can use this profile would match."""
    for resolver in chain:
        if isinstance(resolver, CatalogResolver) and (text := resolver.suggestion(profile)):
            return text
    return "A User entity that one of the configured sign-in resolvers matches."
