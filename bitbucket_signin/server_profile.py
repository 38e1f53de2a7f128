"""The Bitbucket Data Center account of a signed-in visitor, and how it is found.

Data Center has no ``/user``: whoami names the login ``name``, which is not the ``slug`` that
``/rest/api/latest/users/{slug}`` wants (``jane@example.com`` has the slug
``jane_example.com``). The account is the entry of ``users?filter=<name>`` whose ``name`` is
exactly the whoami name (never the first entry: ``filter`` matches substrings of names,
emails and display names, so anyone can be listed first), and its ``slug`` leads to the
profile. The stable key is the numeric ``id``; an inactive or ``SERVICE`` user never signs in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

PROVIDER = "bitbucketServer"
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class ServerProfile:
    """What Data Center said about the account: ``id`` (per instance), login ``name``,
    ``slug``, ``display_name``, and ``email`` (one address, with no "confirmed" flag)."""

    provider: ClassVar[str] = PROVIDER

    id: int
    name: str
    slug: str
    display_name: str
    email: str | None = None
    avatar_url: str | None = None

    @property
    def user_id(self) -> str:
        """The id Flask-Login keeps for this sign-in: never equal to a Cloud uuid."""
        return f"{PROVIDER}:{self.id}"

    @property
    def facts(self) -> tuple[tuple[str, str], ...]:
        """What the not-in-catalog page shows about the account."""
        return (("User name", self.name), ("User id", str(self.id)), ("User slug", self.slug))

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerProfile:
        """The profile a session kept; raises ``KeyError``/``TypeError``/``ValueError``."""
        return server_profile_from_api(
            {
                "id": data["id"],
                "name": data["name"],
                "slug": data["slug"],
                "displayName": data.get("display_name"),
                "emailAddress": data.get("email"),
                "avatarUrl": data.get("avatar_url"),
            },
            base_url=None,
        )


def whoami_name(text: str) -> str | None:
    """The login name whoami answered (trimmed), or ``None`` when nobody is signed in."""
    name = text.strip()
    if not name:
        return None
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise ValueError("whoami answered something that is not a user name")
    return name


def entry_named(values: Iterable[Any], name: str) -> Mapping[str, Any] | None:
    """The listed user whose ``name`` is exactly ``name``; raises ``ValueError`` when the
    listing is malformed or names two."""
    found = []
    for entry in values:
        if not isinstance(entry, Mapping):
            raise ValueError("a listed user is not an object")
        if entry.get("name") == name:
            found.append(entry)
    if len(found) > 1:
        raise ValueError("two listed users have the same name")
    return found[0] if found else None


def sign_in_refusal(user: Mapping[str, Any]) -> tuple[str, str] | None:
    """Why this account may not sign in (inactive, or a service account) and the reason's
    name for the audit log, else ``None``."""
    if user.get("active") is not True:
        message = "Your Bitbucket Data Center account is deactivated, so it cannot sign in here."
        return message, "AccountDeactivated"
    if user.get("type") != "NORMAL":
        return "Service accounts of Bitbucket Data Center cannot sign in here.", "ServiceAccount"
    return None


def server_profile_from_api(user: Mapping[str, Any], base_url: str | None) -> ServerProfile:
    """A profile from ``/rest/api/latest/users/{slug}``; raises ``ValueError`` on a wrong
    shape. A relative ``avatarUrl`` is resolved against ``base_url`` (the browsers' one)."""
    user_id, name, slug = user.get("id"), user.get("name"), user.get("slug")
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 0:
        raise ValueError("the user has no numeric id")
    if not isinstance(name, str) or not name or not isinstance(slug, str) or not slug:
        raise ValueError("the user has no name or slug")
    display_name = user.get("displayName")
    email = user.get("emailAddress")
    return ServerProfile(
        id=user_id,
        name=name,
        slug=slug,
        display_name=display_name if isinstance(display_name, str) else "",
        email=email if isinstance(email, str) and email else None,
        avatar_url=_avatar_url(user.get("avatarUrl"), base_url),
    )


def _avatar_url(value: Any, base_url: str | None) -> str | None:
    """An http(s) picture: absolute (Gravatar) or relative to the instance's origin."""
    if not isinstance(value, str) or not value:
        return None
    url = urljoin(base_url + "/", value) if base_url and not urlsplit(value).scheme else value
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None
