"""The Bitbucket account of a signed-in visitor, as the resolvers see it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, Protocol

from .identity_keys import ascii_lower

PROVIDER = "bitbucket"  # Bitbucket Cloud, by Backstage's name


def normalize_uuid(value: str) -> str:
    """Bitbucket UUIDs compare case-insensitively, with or without braces."""
    return ascii_lower(value.strip().strip("{}"))


def braced_uuid(value: str) -> str:
    """The form Bitbucket prints and the catalog annotation documents: ``{…}``."""
    return "{" + normalize_uuid(value) + "}"


class Profile(Protocol):
    """What the extension reads from any provider's account (Cloud's or Data Center's)."""

    provider: ClassVar[str]  # the provider's name in Backstage's routes: bitbucket, …

    @property
    def display_name(self) -> str: ...

    @property
    def email(self) -> str | None: ...

    @property
    def avatar_url(self) -> str | None: ...

    @property
    def user_id(self) -> str:
        """Flask-Login's id for the sign-in: unique across providers."""
        ...

    @property
    def facts(self) -> tuple[tuple[str, str], ...]:
        """What the not-in-catalog page shows about the account, as (label, value)."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Workspace:
    """A workspace the account belongs to; the session keeps its ``slug`` only."""

    slug: str
    uuid: str | None = None
    administrator: bool = False


@dataclass(frozen=True)
class BitbucketProfile:
    """What ``/2.0/user``, ``/2.0/user/emails`` and ``/2.0/user/workspaces`` said.

    ``workspaces`` is ``None`` when it was not asked for (no workspace restriction) or
    Bitbucket would not tell (no permission, or the endpoint gone): unknown, which is not
    the same as "member of none". ``email`` is ``None`` when no resolver needed it asked
    for, or no address is confirmed.
    """

    uuid: str
    account_id: str | None
    display_name: str
    nickname: str | None = None
    username: str | None = None
    email: str | None = None
    avatar_url: str | None = None
    workspaces: tuple[Workspace, ...] | None = field(default=None)

    provider: ClassVar[str] = PROVIDER

    @property
    def user_id(self) -> str:
        return self.uuid

    @property
    def facts(self) -> tuple[tuple[str, str], ...]:
        return (("Account UUID", self.uuid),)

    def to_dict(self) -> dict[str, Any]:
        """The fields that hold something: ``from_dict`` gives the others their defaults."""
        return asdict(self, dict_factory=_without_empty)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BitbucketProfile:
        workspaces = data.get("workspaces")
        return cls(
            uuid=str(data["uuid"]),
            account_id=data.get("account_id"),
            display_name=str(data.get("display_name") or ""),
            nickname=data.get("nickname"),
            username=data.get("username"),
            email=data.get("email"),
            avatar_url=data.get("avatar_url"),
            workspaces=None
            if workspaces is None
            else tuple(Workspace(**workspace) for workspace in workspaces),
        )


def _without_empty(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in items if value not in (None, "", False)}


def select_email(addresses: Iterable[Mapping[str, Any]]) -> str | None:
    """The primary address if confirmed, else the first confirmed one, else none.

    Bitbucket lists unconfirmed addresses too; those never identify anyone.
    """
    confirmed = [
        entry
        for entry in addresses
        if entry.get("is_confirmed") is True and isinstance(entry.get("email"), str)
    ]
    for entry in confirmed:
        if entry.get("is_primary") is True:
            return str(entry["email"])
    return str(confirmed[0]["email"]) if confirmed else None


def profile_from_api(
    user: Mapping[str, Any],
    emails: Iterable[Mapping[str, Any]],
    workspaces: Iterable[Mapping[str, Any]] | None,
) -> BitbucketProfile:
    """Build a profile from the three API answers; raises ``ValueError`` on a wrong shape."""
    uuid = user.get("uuid")
    if not isinstance(uuid, str) or not normalize_uuid(uuid):
        raise ValueError("the Bitbucket user has no uuid")
    links = user.get("links")
    avatar = links.get("avatar") if isinstance(links, Mapping) else None
    avatar_url = avatar.get("href") if isinstance(avatar, Mapping) else None
    return BitbucketProfile(
        uuid=braced_uuid(uuid),
        account_id=_optional_str(user.get("account_id")),
        display_name=_optional_str(user.get("display_name")) or "",
        nickname=_optional_str(user.get("nickname")),
        username=_optional_str(user.get("username")),
        email=select_email(emails),
        avatar_url=_optional_str(avatar_url),
        workspaces=None if workspaces is None else _workspaces(workspaces),
    )


def _workspaces(entries: Iterable[Mapping[str, Any]]) -> tuple[Workspace, ...]:
    result = []
    for entry in entries:
        workspace = entry.get("workspace")
        if not isinstance(workspace, Mapping) or not isinstance(workspace.get("slug"), str):
            raise ValueError("a workspace entry has no slug")
        result.append(
            Workspace(
                slug=workspace["slug"],
                uuid=_optional_str(workspace.get("uuid")),
                administrator=entry.get("administrator") is True,
            )
        )
    return tuple(result)


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def workspace_refusal(profile: BitbucketProfile, allowed: frozenset[str]) -> str | None:
    """Why ``profile`` may not sign in under a workspace restriction, or ``None`` if it may."""
    if not allowed:
        return None
    listed = ", ".join(sorted(allowed))
    if profile.workspaces is None:
        return (
            "Bitbucket did not say which workspaces you belong to, and this site is only "
            f"for members of: {listed}."
        )
    if not any(ascii_lower(workspace.slug) in allowed for workspace in profile.workspaces):
        return f"This site is only for members of the Bitbucket workspaces: {listed}."
    return None


def for_session(profile: BitbucketProfile, allowed: frozenset[str]) -> BitbucketProfile:
    """The profile to keep in the cookie: of the workspaces, only the slugs a restriction
    asks about (what :func:`workspace_refusal` reads again on every request)."""
    if profile.workspaces is None:
        return profile
    kept = (
        tuple(Workspace(w.slug) for w in profile.workspaces if ascii_lower(w.slug) in allowed)
        if allowed
        else None
    )
    return replace(profile, workspaces=kept)
