"""The Data Center part of an accounts file: its context path, incoming links and users.

```yaml
datacenter:
  context_path: /bitbucket          # the instance's base URL is the emulator's URL + this
  code_lifetime: 10                 # seconds an authorization code lives (Data Center's default)
  consumers:                        # incoming application links
    - {key: …, secret: …, redirect_url: http://…/api/auth/bitbucketServer/handler/frame}
  users:                            # in the order ``users?filter=`` lists them
    - {id: 102, name: jane@example.com, display_name: Jane Doe, email: jane@example.com}
```
A user's ``slug`` defaults to what Data Center makes of its name: ``jane@example.com`` is
``jane_example.com``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .accounts import Checker, read_document

DEFAULT_CONTEXT_PATH = "/bitbucket"
DEFAULT_CODE_LIFETIME = 10
USER_TYPES = ("NORMAL", "SERVICE")
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_CONTEXT_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")


@dataclass(frozen=True)
class ServerConsumer:
    """An incoming application link: one redirect URL, matched exactly."""

    key: str
    secret: str
    redirect_url: str
    name: str


@dataclass(frozen=True)
class ServerUser:
    """A Data Center user: ``name`` is the login (what whoami says), ``slug`` the URL part."""

    id: int
    name: str
    slug: str
    display_name: str
    email: str | None = None
    active: bool = True
    type: str = "NORMAL"

    def matches_filter(self, text: str) -> bool:
        """Whether ``users?filter=text`` lists this user (a substring of name, email or
        display name, any case)."""
        needle = text.lower()
        return any(
            needle in (field or "").lower() for field in (self.name, self.email, self.display_name)
        )


@dataclass(frozen=True)
class DataCenterConfig:
    """The emulated instance."""

    context_path: str
    code_lifetime: float
    consumers: dict[str, ServerConsumer]
    users: tuple[ServerUser, ...]

    def user_named(self, name: str) -> ServerUser | None:
        return next((user for user in self.users if user.name == name), None)

    def user_by_slug(self, slug: str) -> ServerUser | None:
        return next((user for user in self.users if user.slug == slug), None)

    def user_by_id(self, user_id: int) -> ServerUser | None:
        return next((user for user in self.users if user.id == user_id), None)


def default_slug(name: str) -> str:
    """The slug Data Center gives a login name: unsafe characters become ``_``, lower case."""
    return _SLUG_UNSAFE.sub("_", name).lower()


def load_datacenter(
    path: str | Path, *, context_path: str | None = None
) -> DataCenterConfig | None:
    """The ``datacenter`` section of an accounts file (``context_path`` overrides its own),
    or ``None`` when it has none."""
    data = read_document(path)
    section = data.get("datacenter") if isinstance(data, dict) else None
    if isinstance(section, dict) and context_path is not None:
        section = {**section, "context_path": context_path}
    return datacenter_from_dict(section, str(path))


def datacenter_from_dict(data: Any, source: str = "<config>") -> DataCenterConfig | None:
    """Validate the ``datacenter`` section (already parsed); ``None`` stays ``None``."""
    if data is None:
        return None
    checker = Checker(source)
    if not isinstance(data, dict):
        raise checker.error("'datacenter' must be a mapping")
    context_path = data.get("context_path", DEFAULT_CONTEXT_PATH)
    if not isinstance(context_path, str) or not _CONTEXT_PATH.match(context_path):
        raise checker.error("datacenter: context_path must be a path such as /bitbucket")
    lifetime = data.get("code_lifetime", DEFAULT_CODE_LIFETIME)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        raise checker.error("datacenter: code_lifetime must be a positive number of seconds")
    consumers = [
        _consumer(checker, f"datacenter consumer {i}", entry)
        for i, entry in enumerate(checker.items(data, "consumers", required=True), 1)
    ]
    users = [
        _user(checker, f"datacenter user {i}", entry)
        for i, entry in enumerate(checker.items(data, "users", required=False), 1)
    ]
    for attr in ("id", "name", "slug"):
        values = [getattr(user, attr) for user in users]
        if len(set(values)) != len(values):
            raise checker.error(f"two datacenter users have the same {attr}")
    if len({c.key for c in consumers}) != len(consumers):
        raise checker.error("two datacenter consumers have the same key")
    return DataCenterConfig(
        context_path=context_path,
        code_lifetime=float(lifetime),
        consumers={consumer.key: consumer for consumer in consumers},
        users=tuple(users),
    )


def _consumer(checker: Checker, what: str, entry: Any) -> ServerConsumer:
    key = checker.text(entry, what, "key")
    redirect_url = checker.text(entry, what, "redirect_url")
    if not redirect_url.startswith(("http://", "https://")):
        raise checker.error(f"{what}: redirect_url must be an http(s) URL")
    return ServerConsumer(
        key=key,
        secret=checker.text(entry, what, "secret"),
        redirect_url=redirect_url,
        name=checker.text(entry, what, "name", default=key),
    )


def _user(checker: Checker, what: str, entry: Any) -> ServerUser:
    name = checker.text(entry, what, "name")
    user_id = entry.get("id")
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
        raise checker.error(f"{what}: id must be a positive integer")
    user_type = checker.text(entry, what, "type", default="NORMAL")
    if user_type not in USER_TYPES:
        raise checker.error(f"{what}: type must be NORMAL or SERVICE")
    return ServerUser(
        id=user_id,
        name=name,
        slug=checker.text(entry, what, "slug", default=default_slug(name)),
        display_name=checker.text(entry, what, "display_name", default=name),
        email=checker.optional_text(entry, what, "email"),
        active=checker.flag(entry, what, "active", True),
        type=user_type,
    )
