"""Load a Backstage-style catalog of ``User`` and ``Group`` entities, and keep it current.

:func:`load_catalog` reads one file (and the files its ``Location`` entities name),
validates it with Backstage's rules and returns an immutable, indexed :class:`Catalog`.
:class:`CatalogStore` holds the current catalog and reloads it when its files change.
"""

from __future__ import annotations

import json
import logging
import os
import re
import reprlib
import stat
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .errors import CatalogError
from .identity_keys import ascii_lower, email_key, username_key
from .profile import normalize_uuid

__all__ = [
    "ACCOUNT_ID_ANNOTATION",
    "DEFAULT_MAX_BYTES",
    "USERNAME_ANNOTATION",
    "USER_ID_ANNOTATION",
    "Catalog",
    "CatalogStore",
    "GroupEntity",
    "UserEntity",
    "annotation_value_key",
    "is_valid_name",
    "load_catalog",
]

USER_ID_ANNOTATION = "bitbucket.org/user-id"
ACCOUNT_ID_ANNOTATION = "bitbucket.org/account-id"
USERNAME_ANNOTATION = "bitbucket.org/username"
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

_API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
_SKIPPED_KINDS = frozenset({"Component", "API", "System", "Domain", "Resource", "Template"})
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NAMESPACE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# (st_mtime_ns, st_size, st_ino) of a regular file; None when missing or not a regular file.
_Stamp = tuple[int, int, int] | None


def is_valid_name(value: str) -> bool:
    """Backstage's rule for ``metadata.name``: 1-63 characters, alphanumeric at both ends."""
    return len(value) <= 63 and _NAME.fullmatch(value) is not None


def annotation_value_key(key: str, value: str) -> str:
    """How annotation values compare: uuids without braces, usernames by :func:`username_key`."""
    if key == USER_ID_ANNOTATION:
        return normalize_uuid(value)
    if key == USERNAME_ANNOTATION:
        return username_key(value)
    return value


@dataclass(frozen=True)
class _Entity:
    kind: str
    name: str
    namespace: str
    annotations: Mapping[str, str] = field(hash=False, repr=False)
    source: Path
    document: int
    raw: Mapping[str, Any] = field(hash=False, repr=False)

    @property
    def ref(self) -> str:
        """The entity ref, lower-cased: ``user:default/jdoe``."""
        return ascii_lower(f"{self.kind}:{self.namespace}/{self.name}")


@dataclass(frozen=True)
class UserEntity(_Entity):
    """A ``kind: User`` entity; ``member_of`` holds every group ref it belongs to."""

    display_name: str = ""
    email: str | None = None
    picture: str | None = None
    member_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupEntity(_Entity):
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


def load_catalog(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Catalog:
    """Read, validate and index a catalog file; raises :class:`CatalogError` and nothing else."""
    return _Loader(Path(path), max_bytes).load()


class CatalogStore:
    """The current catalog, reloaded (at most once per ``check_interval``) when its files change.

    What a caller sees, the one rule: :meth:`current` returns the newest catalog whose load has
    finished, never one half-built. The call that notices a change reloads inline and returns
    the result, unless the last load took ``inline_reload_limit`` seconds or more (0: always):
    then the reload runs in a background thread, so that no request waits for it, and every
    call returns the previous catalog, the one that started it included, until the new one
    replaces it in one step when the load ends. :meth:`wait_for_reload` waits for that.

    A reload that fails keeps the last good catalog and logs the error once. ``clock`` (seconds)
    paces the checks and times the loads.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        inline_reload_limit: float = 0.2,
    ) -> None:
        self.path = Path(path)
        self.check_interval = check_interval
        self.inline_reload_limit = inline_reload_limit
        self._clock = clock
        self._logger = logger or logging.getLogger(__name__)
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._no_background_reload = threading.Event()
        self._no_background_reload.set()
        self._catalog: Catalog | None = None
        self.loaded_at: float | None = None  # wall-clock time of the last successful load
        self._stamps: dict[Path, _Stamp] = {}
        self._next_check = 0.0
        self._load_seconds = 0.0

    def load(self) -> Catalog:
        """Load the catalog now; raises :class:`CatalogError` (start-up must fail)."""
        with self._lock:
            return self._reload()

    def current(self) -> Catalog:
        """The current catalog; cheap enough to call on every request."""
        catalog = self._catalog
        if catalog is None:
            raise RuntimeError("CatalogStore.load() must be called first")
        if self._clock() < self._next_check or not self._lock.acquire(blocking=False):
            return catalog
        if not self._changed():
            self._lock.release()
            return catalog
        if self._load_seconds >= self.inline_reload_limit:
            self._no_background_reload.clear()
            threading.Thread(
                target=self._reload_and_release, name="catalog-reload", daemon=True
            ).start()
            return catalog
        self._reload_and_release()
        return self._catalog or catalog

    def wait_for_reload(self, timeout: float | None = None) -> bool:
        """Wait until no background reload runs; ``False`` if one still does after ``timeout``."""
        return self._no_background_reload.wait(timeout)

    def _changed(self) -> bool:
        """With the lock held: whether a file changed since the last attempt (if time to look)."""
        if self._clock() < self._next_check:
            return False
        self._next_check = self._clock() + self.check_interval
        return any(_stamp(path) != seen for path, seen in self._stamps.items())

    def _reload_and_release(self) -> None:
        """Reload (the lock is held), log a failure, and release the lock."""
        try:
            self._reload(previous=self._catalog)
        except CatalogError as error:
            self._logger.error("catalog reload failed, keeping the previous catalog: %s", error)
        finally:
            self._no_background_reload.set()  # before the release: a new reload may clear it
            self._lock.release()

    def _reload(self, previous: Catalog | None = None) -> Catalog:
        loader = _Loader(self.path, self._max_bytes)
        started = self._clock()
        try:
            catalog = loader.load()
        finally:
            self._load_seconds = self._clock() - started
            self._stamps = loader.stamps
            self._next_check = self._clock() + self.check_interval
        if previous is not None and previous.users and not catalog.users:
            # Most likely a file caught half-written (truncated, not yet filled): signing
            # everyone out for it would be worse than waiting for the next change.
            raise CatalogError(
                f"{self.path.name}: the catalog now has no users; restart the app "
                "if that is intended"
            )
        for warning in catalog.warnings:
            self._logger.warning("catalog: %s", warning)
        self._catalog = catalog
        self.loaded_at = time.time()
        self._logger.info(
            "catalog loaded from %s: %d users, %d groups",
            self.path,
            len(catalog.users),
            len(catalog.groups),
        )
        return catalog


def _stamp(path: Path) -> _Stamp:
    try:
        info = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


@dataclass(frozen=True)
class _Where:
    """Where a problem is, for error messages: file, document and entity."""

    file: str
    document: int | None = None
    kind: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        place = self.file
        if self.kind is not None:
            place += f": {self.kind}" + (f" {_quote(self.name)}" if self.name else "")
        if self.document is not None:
            place += f" (document {self.document})" if self.kind else f": document {self.document}"
        return place

    def error(self, problem: str) -> CatalogError:
        return CatalogError(f"{self}: {problem}")


class _Loader:
    """One load: walks the files, validates the documents, links users and groups."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root.absolute()
        self.max_bytes = max_bytes
        self.stamps: dict[Path, _Stamp] = {}
        self._done: set[Path] = set()
        self._users: list[UserEntity] = []
        self._groups: list[GroupEntity] = []

    def load(self) -> Catalog:
        self._folder = _real(self.root.parent, _Where(self._label(self.root)))
        self._walk(self.root, ())
        return self._link()

    def _label(self, path: Path) -> str:
        return os.path.relpath(path, self.root.parent)

    def _walk(self, path: Path, chain: tuple[Path, ...]) -> None:
        """Load the file at ``path``, named by the Locations in the files of ``chain``."""
        where = _Where(self._label(path))
        real = _real(path, where)
        if any(_real(named, where) == real for named in chain):
            names = " → ".join(self._label(named) for named in (*chain, path))
            raise CatalogError(f"{self._label(chain[-1])}: Location cycle: {names}")
        if real in self._done:
            return
        self._done.add(real)
        for index, document in enumerate(self._documents(path, where), start=1):
            if document is not None:
                self._entity(path, index, document, (*chain, path))

    def _documents(self, path: Path, where: _Where) -> list[Any]:
        text = self._read(path, where)
        is_json = path.suffix.lower() == ".json"
        try:
            if not is_json:
                return list(yaml.load_all(text, Loader=_YAML_LOADER))
            data = json.loads(text)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as error:
            syntax = "JSON" if is_json else "YAML"
            raise where.error(f"invalid {syntax}: {_one_line(error)}") from None
        if isinstance(data, Mapping) and "items" in data and "kind" not in data:
            data = data["items"]
            if not isinstance(data, list):
                raise where.error('"items" must be a list of entities')
        return data if isinstance(data, list) else [data]

    def _read(self, path: Path, where: _Where) -> str:
        self.stamps[path] = None
        try:
            info = path.stat()
            if stat.S_ISDIR(info.st_mode):
                raise where.error("is a directory, not a catalog file")
            if not stat.S_ISREG(info.st_mode):
                raise where.error("is not a regular file")
            if info.st_size > self.max_bytes:
                raise where.error(f"is larger than the limit of {self.max_bytes} bytes")
            with path.open("rb") as file:
                data = file.read(self.max_bytes + 1)
                info = os.fstat(file.fileno())
        except FileNotFoundError:
            raise where.error("file not found") from None
        except OSError as error:
            raise where.error(f"cannot be read: {error.strerror or error}") from None
        if len(data) > self.max_bytes:
            raise where.error(f"is larger than the limit of {self.max_bytes} bytes")
        self.stamps[path] = (info.st_mtime_ns, info.st_size, info.st_ino)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise where.error(f"is not UTF-8 (byte {error.start})") from None

    def _entity(self, path: Path, index: int, document: Any, chain: tuple[Path, ...]) -> None:
        where = _Where(self._label(path), index)
        if not isinstance(document, Mapping):
            raise where.error(f"is not a mapping but {_type_name(document)}")
        kind = document.get("kind")
        if not isinstance(kind, str) or not kind:
            raise where.error("kind is missing or not a string")
        if kind in _SKIPPED_KINDS:
            return
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        where = _Where(where.file, index, kind, name if isinstance(name, str) else None)
        if kind not in ("User", "Group", "Location"):
            raise where.error(f"unknown kind {_quote(kind)}")
        if document.get("apiVersion") not in _API_VERSIONS:
            raise where.error(
                f"apiVersion {_quote(document.get('apiVersion'))} is not one of "
                + ", ".join(_API_VERSIONS)
            )
        fields = _Fields(where)
        metadata = fields.mapping(document, "metadata", required=True)
        name = fields.name(metadata)
        namespace = fields.namespace(metadata)
        spec = fields.mapping(document, "spec", required=kind != "User")
        common: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "annotations": MappingProxyType(fields.annotations(metadata)),
            "source": path,
            "document": index,
            "raw": MappingProxyType(dict(document)),
        }
        if kind == "User":
            profile = fields.mapping(spec, "profile", prefix="spec.")
            self._users.append(
                UserEntity(
                    **common,
                    display_name=fields.string(profile, "displayName", "spec.profile.") or name,
                    email=fields.string(profile, "email", "spec.profile.") or None,
                    picture=fields.string(profile, "picture", "spec.profile.") or None,
                    member_of=fields.refs(spec, "memberOf", "group", namespace),
                )
            )
        elif kind == "Group":
            group_type = fields.string(spec, "type", "spec.")
            if not group_type:
                raise where.error("spec.type is required")
            self._groups.append(
                GroupEntity(
                    **common,
                    type=group_type,
                    members=fields.refs(spec, "members", "user", namespace),
                )
            )
        else:
            for target in fields.targets(spec):
                self._walk(self._target(path, target, where), chain)

    def _target(self, path: Path, target: str, where: _Where) -> Path:
        if _URL.match(target):
            raise where.error(f"target {_quote(target)}: only file targets are supported")
        named = path.parent / target.removeprefix("file:")
        if not _real(named, where).is_relative_to(self._folder):
            raise where.error(
                f"target {_quote(target)} is outside the catalog folder {self._folder}"
            )
        return named

    def _link(self) -> Catalog:
        """Check what spans entities, then add the memberships groups declare to the users."""
        seen: dict[str, _Entity] = {}
        claims: dict[tuple[str, str], UserEntity] = {}
        for entity in (*self._users, *self._groups):
            if entity.ref in seen:
                raise CatalogError(
                    f"{self._describe(entity)}: duplicate entity {entity.ref}, "
                    f"already defined in {self._describe(seen[entity.ref])}"
                )
            seen[entity.ref] = entity
        for user in self._users:
            for key in (USER_ID_ANNOTATION, ACCOUNT_ID_ANNOTATION, USERNAME_ANNOTATION):
                if key in user.annotations:
                    claim = (key, annotation_value_key(key, user.annotations[key]))
                    if claim in claims:
                        raise CatalogError(
                            f"{self._describe(user)}: annotation {key} "
                            f"{_quote(user.annotations[key])} is already claimed by "
                            f"{self._describe(claims[claim])}"
                        )
                    claims[claim] = user
        memberships: defaultdict[str, set[str]] = defaultdict(set)
        warnings = []
        for group in self._groups:
            for member in group.members:
                memberships[member].add(group.ref)
                if member not in seen:
                    warnings.append(
                        f"{self._describe(group)}: member {member} is not in the catalog"
                    )
        for user in self._users:
            warnings.extend(
                f"{self._describe(user)}: group {ref} is not in the catalog"
                for ref in user.member_of
                if ref not in seen
            )
        warnings.extend(
            f"{self._describe(user)}: spec.profile.email {_quote(user.email)} never matches: "
            "it has no domain that is a valid IDNA 2008 name"
            for user in self._users
            if user.email and email_key(user.email) is None
        )
        users = [
            replace(user, member_of=tuple(sorted({*user.member_of, *memberships[user.ref]})))
            for user in self._users
        ]
        return Catalog(users, self._groups, files=self.stamps, warnings=warnings)

    def _describe(self, entity: _Entity) -> str:
        return str(_Where(self._label(entity.source), entity.document, entity.kind, entity.name))


class _Fields:
    """Reads and validates the fields of one entity document."""

    def __init__(self, where: _Where) -> None:
        self.where = where

    def mapping(
        self, parent: Mapping[str, Any], key: str, *, required: bool = False, prefix: str = ""
    ) -> Mapping[str, Any]:
        value = parent.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            raise self.where.error(f"{prefix}{key} must be a mapping, not {_type_name(value)}")
        return value

    def string(self, parent: Mapping[str, Any], key: str, prefix: str) -> str | None:
        value = parent.get(key)
        if value is not None and not isinstance(value, str):
            raise self.where.error(f"{prefix}{key} must be a string, not {_type_name(value)}")
        return value

    def name(self, metadata: Mapping[str, Any]) -> str:
        name = self.string(metadata, "name", "metadata.")
        if name is None:
            raise self.where.error("metadata.name is required")
        self.check_name(name, "metadata.name")
        return name

    def check_name(self, name: str, what: str) -> None:
        if not is_valid_name(name):
            raise self.where.error(
                f"{what} {_quote(name)} is not a valid name: 1-63 letters, digits, '-', '_' "
                "or '.', beginning and ending with a letter or digit"
            )

    def namespace(self, metadata: Mapping[str, Any]) -> str:
        namespace = self.string(metadata, "namespace", "metadata.")
        if namespace is None:
            return "default"
        self.check_namespace(namespace, "metadata.namespace")
        return namespace

    def check_namespace(self, namespace: str, what: str) -> None:
        if len(namespace) > 63 or not _NAMESPACE.fullmatch(namespace):
            raise self.where.error(
                f"{what} {_quote(namespace)} is not a valid namespace: 1-63 lower-case "
                "letters and digits, separated by single '-'"
            )

    def annotations(self, metadata: Mapping[str, Any]) -> dict[str, str]:
        annotations = self.mapping(metadata, "annotations", prefix="metadata.")
        for key, value in annotations.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise self.where.error(
                    f"metadata.annotations {_quote(key)} must map a string to a string"
                )
        user_id = annotations.get(USER_ID_ANNOTATION)
        if user_id is not None and not _UUID.fullmatch(_unbrace(user_id.strip())):
            raise self.where.error(
                f"annotation {USER_ID_ANNOTATION} {_quote(user_id)} is not a uuid, "
                'e.g. "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"'
            )
        return dict(annotations)

    def refs(self, spec: Mapping[str, Any], key: str, kind: str, namespace: str) -> tuple[str, ...]:
        values = spec.get(key)
        if values is None:
            return ()
        if not isinstance(values, list):
            raise self.where.error(f"spec.{key} must be a list, not {_type_name(values)}")
        return tuple(dict.fromkeys(self.ref(value, key, kind, namespace) for value in values))

    def ref(self, value: Any, key: str, kind: str, namespace: str) -> str:
        """Parse ``[kind:][namespace/]name`` into a lower-cased full ref of the given kind."""
        if not isinstance(value, str):
            raise self.where.error(f"spec.{key} entries must be strings, not {_type_name(value)}")
        ref_kind, _, rest = value.partition(":") if ":" in value else (kind, "", value)
        ref_namespace, _, name = rest.partition("/") if "/" in rest else (namespace, "", rest)
        if ascii_lower(ref_kind) != kind:
            raise self.where.error(f"spec.{key} entry {_quote(value)} must refer to a {kind}")
        self.check_namespace(
            ascii_lower(ref_namespace), f"spec.{key} entry {_quote(value)}: namespace"
        )
        self.check_name(name, f"spec.{key} entry {_quote(value)}: name")
        return ascii_lower(f"{kind}:{ref_namespace}/{name}")

    def targets(self, spec: Mapping[str, Any]) -> Iterator[str]:
        if spec.get("type", "file") != "file":
            raise self.where.error(
                f"spec.type {_quote(spec.get('type'))}: only file targets are supported"
            )
        targets = spec.get("targets", [])
        if not isinstance(targets, list):
            raise self.where.error(f"spec.targets must be a list, not {_type_name(targets)}")
        if "target" in spec:
            targets = [spec["target"], *targets]
        if not targets:
            raise self.where.error("spec.target or spec.targets is required")
        for target in targets:
            if not isinstance(target, str) or not target.strip() or "\0" in target:
                raise self.where.error(f"Location target {_quote(target)} must be a file path")
            yield target.strip()


def _real(path: Path, where: _Where) -> Path:
    """The path with symlinks and ``..`` resolved."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as error:
        raise where.error(f"cannot resolve {_quote(str(path))}: {error}") from None


def _unbrace(value: str) -> str:
    return value[1:-1] if value.startswith("{") and value.endswith("}") else value


def _quote(value: Any) -> str:
    """A value for a message: quoted, escaped, short (even for a YAML alias bomb)."""
    text = value if isinstance(value, str) else reprlib.repr(value)
    return json.dumps(text if len(text) <= 80 else text[:77] + "...", ensure_ascii=False)


def _type_name(value: Any) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
