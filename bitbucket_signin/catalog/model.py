"""The catalog's entities (``User``, ``Group``) and :class:`Catalog`, their read-only index."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
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


class Catalog:
    """The users and groups of one load, indexed for constant-time lookups. Read-only."""

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
        self._ownership = {user.ref: _ownership(user) for user in self.users}
        by_annotation: defaultdict[tuple[str, str], list[UserEntity]] = defaultdict(list)
        by_email: defaultdict[str, list[UserEntity]] = defaultdict(list)
        for user in self.users:
            for key, value in user.annotations.items():
                by_annotation[key, annotation_value_key(key, value)].append(user)
            if user.email and (address := email_key(user.email)) is not None:
                by_email[address].append(user)
        self._by_annotation = {key: tuple(found) for key, found in by_annotation.items()}
        self._by_email = {key: tuple(found) for key, found in by_email.items()}

    def user_by_ref(self, ref: str) -> UserEntity | None:
        """The user with this full ref (``user:namespace/name``), ASCII case-insensitive."""
        return self._by_ref.get(ascii_lower(ref))

    def user_by_name(self, name: str, namespace: str = "default") -> UserEntity | None:
        """The user with this name in this namespace, ASCII case-insensitive."""
        return self.user_by_ref(f"user:{namespace}/{name}")

    def users_by_annotation(self, key: str, value: str) -> tuple[UserEntity, ...]:
        """The users whose annotation ``key`` has this value (see :func:`annotation_value_key`)."""
        return self._by_annotation.get((key, annotation_value_key(key, value)), ())

    def users_by_email(self, email: str) -> tuple[UserEntity, ...]:
        """The users whose ``spec.profile.email`` has this address's :func:`email_key`."""
        key = email_key(email)
        return () if key is None else self._by_email.get(key, ())

    def ownership_refs(self, user: UserEntity) -> tuple[str, ...]:
        """The user's own ref and the refs of all its groups, sorted."""
        return self._ownership.get(user.ref) or _ownership(user)


def _ownership(user: UserEntity) -> tuple[str, ...]:
    return tuple(sorted({user.ref, *user.member_of}))
