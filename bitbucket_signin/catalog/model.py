"""The catalog's entities (``User``, ``Group``) and :class:`Catalog`, their read-only index."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..identity_keys import ascii_lower, email_key
from .bitbucket import annotation_value_key


@dataclass(frozen=True, slots=True)
class Entity:
    """What User and Group entities share; ``ref`` is the lower-cased ``user:default/jdoe``."""

    kind: str
    name: str
    namespace: str
    annotations: Mapping[str, str] = field(hash=False, repr=False)
    source: Path
    document: int
    ref: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ref", ascii_lower(f"{self.kind}:{self.namespace}/{self.name}"))


@dataclass(frozen=True, slots=True)
class UserEntity(Entity):
    """A ``kind: User`` entity; ``member_of`` holds every group ref it belongs to, sorted."""

    display_name: str = ""
    email: str | None = None
    picture: str | None = None
    member_of: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupEntity(Entity):
    """A ``kind: Group`` entity; ``members`` are the user refs of its ``spec.members``."""

    type: str = ""
    members: tuple[str, ...] = ()


# One user, or the users (two or more) that share a key: most keys name one person, and a
# hundred thousand one-user tuples would take 5 MB.
_Found = UserEntity | tuple[UserEntity, ...]


class Catalog:
    """The users and groups of one load, indexed for constant-time lookups. Read-only.

    The indexes hold what lookups ask for and nothing else; ownership refs are put together
    when a user is first asked about (most people of a large catalog never are in a worker).
    """

    __slots__ = (
        "_by_annotation",
        "_by_email",
        "_by_ref",
        "_ownership",
        "files",
        "groups",
        "users",
        "warnings",
    )

    def __init__(
        self,
        users: Iterable[UserEntity],
        groups: Iterable[GroupEntity] = (),
        *,
        files: Iterable[Path] = (),
        warnings: Iterable[str] = (),
    ) -> None:
        self.users = tuple(users)
        self.groups = tuple(groups)
        self.files = tuple(files)
        self.warnings = tuple(warnings)
        self._by_ref = {user.ref: user for user in self.users}
        self._ownership: dict[str, tuple[str, ...]] = {}
        self._by_annotation: dict[str, dict[str, _Found]] = {}
        self._by_email: dict[str, _Found] = {}
        for user in self.users:
            for key, value in user.annotations.items():
                values = self._by_annotation.get(key)
                if values is None:
                    values = self._by_annotation[key] = {}
                _add(values, annotation_value_key(key, value), user)
            if user.email and (address := email_key(user.email)) is not None:
                _add(self._by_email, address, user)

    def user_by_ref(self, ref: str) -> UserEntity | None:
        """The user with this full ref (``user:namespace/name``), ASCII case-insensitive."""
        return self._by_ref.get(ascii_lower(ref))

    def user_by_name(self, name: str, namespace: str = "default") -> UserEntity | None:
        """The user with this name in this namespace, ASCII case-insensitive."""
        return self.user_by_ref(f"user:{namespace}/{name}")

    def users_by_annotation(self, key: str, value: str) -> tuple[UserEntity, ...]:
        """The users whose annotation ``key`` has this value (see :func:`annotation_value_key`)."""
        values = self._by_annotation.get(key)
        return () if values is None else _found(values.get(annotation_value_key(key, value)))

    def users_sharing_annotation(self, key: str) -> Iterator[tuple[UserEntity, ...]]:
        """Each set of two or more users whose annotation ``key`` has one value, in catalog
        order."""
        for found in self._by_annotation.get(key, {}).values():
            if isinstance(found, tuple):
                yield found

    def users_by_email(self, email: str) -> tuple[UserEntity, ...]:
        """The users whose ``spec.profile.email`` has this address's :func:`email_key`."""
        key = email_key(email)
        return () if key is None else _found(self._by_email.get(key))

    def ownership_refs(self, user: UserEntity) -> tuple[str, ...]:
        """The user's own ref and the refs of all its groups, sorted."""
        refs = self._ownership.get(user.ref)
        if refs is None:
            refs = tuple(sorted({user.ref, *user.member_of}))
            if self._by_ref.get(user.ref) is user:
                self._ownership[user.ref] = refs  # two threads at once: both store the same
        return refs


def _add(index: dict[str, _Found], key: str, user: UserEntity) -> None:
    found = index.setdefault(key, user)
    if found is not user:
        index[key] = (*found, user) if isinstance(found, tuple) else (found, user)


def _found(found: _Found | None) -> tuple[UserEntity, ...]:
    if found is None:
        return ()
    return found if isinstance(found, tuple) else (found,)
