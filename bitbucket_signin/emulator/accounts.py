"""Loading and validating the emulator's accounts file (consumers and Bitbucket accounts)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

DEFAULT_RATE_LIMIT = 1000
DEFAULT_CREATED_ON = "2019-02-19T10:36:46.361566+00:00"
GENERATED_NAMESPACE = uuid.UUID("6f1c9a52-3b8e-4d0e-9a57-0c2b5e7d4f11")
GENERATED_WORKSPACE = "loadtest"

_T = TypeVar("_T")


class AccountsError(ValueError):
    """The accounts file cannot be used; the message is one line naming the file and the entry."""


@dataclass(frozen=True)
class Consumer:
    """An OAuth consumer with its one registered callback URL and fixed scopes."""

    key: str
    secret: str
    callback_url: str
    scopes: tuple[str, ...]
    name: str
    rate_limit: int = DEFAULT_RATE_LIMIT
    token_scope_field: str = "scope"  # noqa: S105 - a field name, not a secret
    workspace_membership: bool = True


@dataclass(frozen=True)
class Email:
    """One address of an account, as /2.0/user/emails reports it."""

    email: str
    is_primary: bool
    is_confirmed: bool


@dataclass(frozen=True)
class WorkspaceMembership:
    """A workspace the account belongs to."""

    slug: str
    uuid: str
    administrator: bool


@dataclass(frozen=True)
class Account:
    """A Bitbucket Cloud user that can sign in at the emulator."""

    uuid: str
    account_id: str
    display_name: str
    nickname: str
    username: str | None = None
    emails: tuple[Email, ...] = ()
    workspaces: tuple[WorkspaceMembership, ...] = ()
    avatar: str | None = None
    account_status: str = "active"
    created_on: str = DEFAULT_CREATED_ON

    def matches(self, who: str, who_uuid: str | None) -> bool:
        """True when ``who`` is this account's uuid, id or username; ``who_uuid`` is
        ``canonical_uuid(who)``, worked out once for many accounts."""
        return who_uuid == self.uuid or who in (self.account_id, self.username)


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the emulator serves: consumers by key and accounts in file order."""

    consumers: Mapping[str, Consumer]
    accounts: tuple[Account, ...] = field(default=())
    source: str = "<config>"

    def find_account(self, who: str) -> Account | None:
        """The account whose uuid, account_id or username is ``who``."""
        who_uuid = canonical_uuid(who)
        return next((a for a in self.accounts if a.matches(who, who_uuid)), None)


def canonical_uuid(value: str) -> str | None:
    """``{lower-case-uuid}`` for a UUID given with or without braces, else None."""
    try:
        return _braced(uuid.UUID(value.strip().strip("{}")))
    except ValueError:
        return None


def _braced(value: uuid.UUID) -> str:
    return f"{{{value}}}"


def generated_account(i: int) -> dict[str, Any]:
    """The raw accounts-file entry of synthetic account number ``i`` (deterministic)."""
    name = f"user{i:04d}"
    return {
        "uuid": _braced(uuid.uuid5(GENERATED_NAMESPACE, name)),
        "account_id": hashlib.sha256(name.encode()).hexdigest()[:24],
        "username": name,
        "nickname": name,
        "display_name": f"User {i:04d}",
        "emails": [{"email": f"{name}@example.com", "is_primary": True, "is_confirmed": True}],
        "workspaces": [
            {
                "slug": GENERATED_WORKSPACE,
                "uuid": _braced(uuid.uuid5(GENERATED_NAMESPACE, GENERATED_WORKSPACE)),
                "administrator": False,
            }
        ],
    }


def generated_accounts(n: int) -> list[dict[str, Any]]:
    """Synthetic accounts user0001 … user{n:04d}."""
    return [generated_account(i) for i in range(1, n + 1)]


def load_accounts(path: str | Path, *, generate: int = 0) -> EmulatorConfig:
    """Read a YAML or JSON accounts file, adding ``generate`` synthetic accounts."""
    return config_from_dict(read_document(path), source=str(path), generate=generate)


def read_document(path: str | Path) -> Any:
    """The parsed YAML or JSON of an accounts file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AccountsError(f"accounts file {source}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise AccountsError(f"accounts file {source}: invalid syntax: {_one_line(exc)}") from exc


def config_from_dict(data: Any, *, source: str = "<config>", generate: int = 0) -> EmulatorConfig:
    """Validate an accounts document already parsed into Python objects."""
    checker = Checker(source)
    if not isinstance(data, dict):
        raise checker.error("must be a mapping with 'consumers' and 'accounts'")
    consumers = checker.items(data, "consumers", required=True)
    raw_accounts = [*checker.items(data, "accounts", required=False), *generated_accounts(generate)]
    config = EmulatorConfig(
        consumers=_unique(
            checker, "consumer", "key", [checker.consumer(i, c) for i, c in enumerate(consumers, 1)]
        ),
        accounts=tuple(checker.account(i, a) for i, a in enumerate(raw_accounts, 1)),
        source=source,
    )
    for attr in ("uuid", "account_id", "username"):
        _unique(checker, "account", attr, [a for a in config.accounts if getattr(a, attr)])
    return config


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _unique(checker: Checker, kind: str, attr: str, items: list[_T]) -> dict[str, _T]:
    seen: dict[str, _T] = {}
    for item in items:
        value = getattr(item, attr)
        if value in seen:
            raise checker.error(f"two {kind}s have {attr} {value!r}")
        seen[value] = item
    return seen


class Checker:
    """Field-by-field validation producing one-line errors that name the entry."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: str) -> AccountsError:
        return AccountsError(f"accounts file {self.source}: {message}")

    def items(self, data: dict[str, Any], key: str, *, required: bool) -> list[Any]:
        value = data.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list) or (required and not value):
            raise self.error(f"'{key}' must be a non-empty list")
        return value

    def text(self, entry: Any, what: str, key: str, default: str | None = None) -> str:
        if not isinstance(entry, dict):
            raise self.error(f"{what} must be a mapping")
        value = entry.get(key, default)
        if value is None:
            raise self.error(f"{what} has no {key}")
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{what}: {key} must be a non-empty string")
        return value

    def optional_text(self, entry: dict[str, Any], what: str, key: str) -> str | None:
        return self.text(entry, what, key) if entry.get(key) is not None else None

    def flag(self, entry: dict[str, Any], what: str, key: str, default: bool) -> bool:
        value = entry.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"{what}: {key} must be true or false")
        return value

    def entries(self, entry: dict[str, Any], what: str, key: str) -> list[tuple[str, Any]]:
        value = entry.get(key, [])
        if not isinstance(value, list):
            raise self.error(f"{what}: {key} must be a list")
        return [(f"{what} {key[:-1]} {i}", item) for i, item in enumerate(value, 1)]

    def consumer(self, index: int, entry: Any) -> Consumer:
        what = f"consumer {index}"
        key = self.text(entry, what, "key")
        callback_url = self.text(entry, what, "callback_url")
        if not callback_url.startswith(("http://", "https://")):
            raise self.error(f"{what}: callback_url must be an http(s) URL")
        scopes = entry.get("scopes", ["account"])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise self.error(f"{what}: scopes must be a list of strings")
        rate_limit = entry.get("rate_limit", DEFAULT_RATE_LIMIT)
        if not isinstance(rate_limit, int) or isinstance(rate_limit, bool) or rate_limit < 1:
            raise self.error(f"{what}: rate_limit must be a positive integer")
        scope_field = entry.get("token_scope_field", "scope")
        if scope_field not in ("scope", "scopes"):
            raise self.error(f"{what}: token_scope_field must be 'scope' or 'scopes'")
        return Consumer(
            key=key,
            secret=self.text(entry, what, "secret"),
            callback_url=callback_url,
            scopes=tuple(scopes),
            name=self.text(entry, what, "name", default=key),
            rate_limit=rate_limit,
            token_scope_field=scope_field,
            workspace_membership=self.flag(entry, what, "workspace_membership", True),
        )

    def uuid(self, entry: dict[str, Any], what: str) -> str:
        value = canonical_uuid(self.text(entry, what, "uuid"))
        if value is None:
            raise self.error(f"{what}: uuid is not a UUID")
        return value

    def account(self, index: int, entry: Any) -> Account:
        what = f"account {index}"
        account_uuid = self.uuid(entry, what)
        display_name = self.text(entry, what, "display_name")
        username = self.optional_text(entry, what, "username")
        return Account(
            uuid=account_uuid,
            account_id=self.text(entry, what, "account_id"),
            display_name=display_name,
            nickname=self.text(entry, what, "nickname", default=username or display_name),
            username=username,
            emails=tuple(
                Email(
                    email=self.text(item, where, "email"),
                    is_primary=self.flag(item, where, "is_primary", False),
                    is_confirmed=self.flag(item, where, "is_confirmed", True),
                )
                for where, item in self.entries(entry, what, "emails")
            ),
            workspaces=tuple(
                WorkspaceMembership(
                    slug=self.text(item, where, "slug"),
                    uuid=self.uuid(item, where),
                    administrator=self.flag(item, where, "administrator", False),
                )
                for where, item in self.entries(entry, what, "workspaces")
            ),
            avatar=self.optional_text(entry, what, "avatar"),
            account_status=self.text(entry, what, "account_status", default="active"),
            created_on=self.text(entry, what, "created_on", default=DEFAULT_CREATED_ON),
        )
