"""Load a Backstage-style catalog of ``User`` and ``Group`` entities, and keep it current.

:func:`load_catalog` reads one file (and the files its ``Location`` entities name),
validates it with Backstage's rules and returns an immutable, indexed :class:`Catalog`.
:class:`CatalogStore` holds the current catalog and reloads it when its files change.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import reprlib
import stat
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .config import DEFAULTS
from .errors import CatalogError
from .identity_keys import ascii_lower, email_key, username_key
from .profile import normalize_uuid

__all__ = [
    "ACCOUNT_ID_ANNOTATION",
    "DEFAULT_MAX_BYTES",
    "MAX_ENTITIES",
    "MAX_YAML_ALIASES",
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
DEFAULT_MAX_BYTES: int = DEFAULTS["CATALOG_MAX_BYTES"]
# Limits against hostile files (deep nesting is refused by the parsers themselves: libyaml
# at 1000 levels, JSON at Python's recursion limit).
MAX_ENTITIES = 1_000_000
# Aliases of a mapping or list per YAML document, like SnakeYAML (50) and Symfony (128): the
# parser shares the aliased object, but each alias of a list makes the loader read it again.
MAX_YAML_ALIASES = 100

_API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
_SKIPPED_KINDS = frozenset({"Component", "API", "System", "Domain", "Resource", "Template"})
_CLAIMED = (USER_ID_ANNOTATION, ACCOUNT_ID_ANNOTATION, USERNAME_ANNOTATION)
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NAMESPACE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PARSE_ERRORS = (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError)
_NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})
_JSON = json.JSONDecoder()
_JSON_NEXT = re.compile(r"[ \t\n\r]*(?:(?P<comma>,)[ \t\n\r]*)?")
_JSON_LIST = re.compile(
    r'[ \t\n\r]*(?P<items>\{[ \t\n\r]*"items"[ \t\n\r]*:[ \t\n\r]*)?\[[ \t\n\r]*'
)
_JSON_LIST_END = re.compile(r"[ \t\n\r]*\Z")
_JSON_ITEMS_END = re.compile(r"[ \t\n\r]*\}[ \t\n\r]*\Z")

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


@dataclass(frozen=True, slots=True)
class _Entity:
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
class UserEntity(_Entity):
    """A ``kind: User`` entity; ``member_of`` holds every group ref it belongs to, sorted."""

    display_name: str = ""
    email: str | None = None
    picture: str | None = None
    member_of: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
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


BACKGROUND_PAUSE_EVERY = 100  # entities (about half a millisecond of loading)
BACKGROUND_PAUSE_SECONDS = 0.0002


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
                target=self._reload_and_release,
                args=(True,),
                name="catalog-reload",
                daemon=True,
            ).start()
            return catalog
        self._reload_and_release(background=False)
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

    def _reload_and_release(self, background: bool) -> None:
        """Reload (the lock is held), log a failure, and release the lock."""
        try:
            self._reload(previous=self._catalog, background=background)
        except CatalogError as error:
            self._logger.error("catalog reload failed, keeping the previous catalog: %s", error)
        finally:
            self._no_background_reload.set()  # before the release: a new reload may clear it
            self._lock.release()

    def _reload(self, previous: Catalog | None = None, *, background: bool = False) -> Catalog:
        # In the background, the reload steps aside now and then, so that requests served
        # meanwhile wait for the interpreter a fraction of a millisecond, not a whole slice.
        loader = _Loader(
            self.path, self._max_bytes, pause_every=BACKGROUND_PAUSE_EVERY if background else 0
        )
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


class _Loader:
    """One load: walks the files, validates the documents, links users and groups.

    Files are read one entity at a time and duplicates checked as entities arrive; at the end
    what groups declare is added to their users, and claims are checked through the index. The
    cyclic garbage collector is paused meanwhile: everything built stays alive until the load
    ends, so its passes over the growing heap would find nothing (and took 3/4 of the time).
    """

    def __init__(self, root: Path, max_bytes: int, *, pause_every: int = 0) -> None:
        self.root = root.absolute()
        self.max_bytes = max_bytes
        self.pause_every = pause_every
        self.stamps: dict[Path, _Stamp] = {}
        self._done: set[Path] = set()
        self._labels: dict[Path, str] = {}
        self._users: list[UserEntity] = []
        self._groups: list[GroupEntity] = []
        self._entities: dict[str, _Entity] = {}
        self._group_refs: dict[tuple[str, str], str] = {}
        self._count = 0

    def load(self) -> Catalog:
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._folder = _real(self.root.parent, self._label(self.root))
            self._walk(self.root, ())
            return self._link()
        finally:
            if collecting:
                gc.enable()

    def _label(self, path: Path) -> str:
        return os.path.relpath(path, self.root.parent)

    def _walk(self, path: Path, chain: tuple[Path, ...]) -> None:
        """Load the file at ``path``, named by the Locations in the files of ``chain``."""
        label = self._label(path)
        real = _real(path, label)
        if any(_real(named, label) == real for named in chain):
            names = " → ".join(self._label(named) for named in (*chain, path))
            raise CatalogError(f"{self._label(chain[-1])}: Location cycle: {names}")
        if real in self._done:
            return
        self._done.add(real)
        self._labels[path] = label
        fields = _Fields(label, self._group_refs)
        chain = (*chain, path)
        documents = self._documents(path, label)
        for index, document in enumerate(documents, start=1):
            if document is None:
                continue
            self._count += 1
            if self._count > MAX_ENTITIES:
                raise CatalogError(f"{label}: more than {MAX_ENTITIES} entities, the limit")
            if self.pause_every and self._count % self.pause_every == 0:
                time.sleep(BACKGROUND_PAUSE_SECONDS)  # the request threads' turn
            fields.at(index)
            try:
                self._entity(path, fields, document, chain)
            except CatalogError:
                for _ in documents:  # a syntax error further on is the first thing to fix
                    pass
                raise

    def _documents(self, path: Path, label: str) -> Iterator[Any]:
        """The file's documents, each dropped once the next is asked for."""
        text = self._read(path, label)
        if path.suffix.lower() == ".json":
            return _json_documents(text, label)
        return _yaml_documents(text, label)

    def _read(self, path: Path, label: str) -> str:
        self.stamps[path] = None
        try:
            info = path.stat()
            if stat.S_ISDIR(info.st_mode):
                raise CatalogError(f"{label}: is a directory, not a catalog file")
            if not stat.S_ISREG(info.st_mode):
                raise CatalogError(f"{label}: is not a regular file")
            if info.st_size > self.max_bytes:
                raise CatalogError(f"{label}: is larger than the limit of {self.max_bytes} bytes")
            with path.open("rb") as file:
                data = file.read(self.max_bytes + 1)
                info = os.fstat(file.fileno())
        except FileNotFoundError:
            raise CatalogError(f"{label}: file not found") from None
        except OSError as error:
            raise CatalogError(f"{label}: cannot be read: {error.strerror or error}") from None
        if len(data) > self.max_bytes:
            raise CatalogError(f"{label}: is larger than the limit of {self.max_bytes} bytes")
        self.stamps[path] = (info.st_mtime_ns, info.st_size, info.st_ino)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise CatalogError(f"{label}: is not UTF-8 (byte {error.start})") from None

    def _entity(self, path: Path, fields: _Fields, document: Any, chain: tuple[Path, ...]) -> None:
        if not isinstance(document, dict):
            raise fields.error(f"is not a mapping but {_type_name(document)}")
        kind = document.get("kind")
        if not isinstance(kind, str) or not kind:
            raise fields.error("kind is missing or not a string")
        if kind in _SKIPPED_KINDS:
            return
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        fields.kind, fields.entity_name = kind, name if isinstance(name, str) else None
        if kind not in ("User", "Group", "Location"):
            raise fields.error(f"unknown kind {_quote(kind)}")
        if document.get("apiVersion") not in _API_VERSIONS:
            raise fields.error(
                f"apiVersion {_quote(document.get('apiVersion'))} is not one of "
                + ", ".join(_API_VERSIONS)
            )
        metadata = fields.mapping(document, "metadata", required=True)
        name = fields.name(metadata)
        namespace = fields.namespace(metadata)
        spec = fields.mapping(document, "spec", required=kind != "User")
        annotations = fields.annotations(metadata)
        index = fields.document
        if kind == "User":
            profile = fields.mapping(spec, "profile", prefix="spec.")
            user = UserEntity(
                "User",
                name,
                namespace,
                annotations,
                path,
                index,
                display_name=fields.string(profile, "displayName", "spec.profile.") or name,
                email=fields.string(profile, "email", "spec.profile.") or None,
                picture=fields.string(profile, "picture", "spec.profile.") or None,
                member_of=fields.refs(spec, "memberOf", "group", namespace),
            )
            self._add(user)
            self._users.append(user)
        elif kind == "Group":
            group_type = fields.string(spec, "type", "spec.")
            if not group_type:
                raise fields.error("spec.type is required")
            members = fields.refs(spec, "members", "user", namespace)
            group = GroupEntity(
                "Group", name, namespace, annotations, path, index, group_type, members
            )
            self._add(group)
            self._groups.append(group)
        else:
            for target in fields.targets(spec):
                self._walk(self._target(path, target, fields), chain)

    def _add(self, entity: _Entity) -> None:
        first = self._entities.setdefault(entity.ref, entity)
        if first is not entity:
            raise CatalogError(
                f"{self._describe(entity)}: duplicate entity {entity.ref}, "
                f"already defined in {self._describe(first)}"
            )

    def _target(self, path: Path, target: str, fields: _Fields) -> Path:
        if _URL.match(target):
            raise fields.error(f"target {_quote(target)}: only file targets are supported")
        named = path.parent / target.removeprefix("file:")
        if not _real(named, str(fields)).is_relative_to(self._folder):
            raise fields.error(
                f"target {_quote(target)} is outside the catalog folder {self._folder}"
            )
        return named

    def _link(self) -> Catalog:
        """Add the memberships groups declare to users, index, and check what spans entities.

        The entities are not shared yet, so they are completed in place rather than copied.
        """
        known = self._entities
        joined: dict[str, list[str]] = {}
        warnings = []
        for group in self._groups:
            members = []
            for member in group.members:
                user = known.get(member)
                if isinstance(user, UserEntity):
                    joined.setdefault(user.ref, []).append(group.ref)
                    member = user.ref  # one copy of each ref string
                else:
                    warnings.append(
                        f"{self._describe(group)}: member {member} is not in the catalog"
                    )
                members.append(member)
            object.__setattr__(group, "members", tuple(members))
        for user in self._users:
            warnings.extend(
                f"{self._describe(user)}: group {ref} is not in the catalog"
                for ref in user.member_of
                if ref not in known
            )
            if user.email and email_key(user.email) is None:
                warnings.append(
                    f"{self._describe(user)}: spec.profile.email {_quote(user.email)} never "
                    "matches: it has no domain that is a valid IDNA 2008 name"
                )
            extra = joined.pop(user.ref, ())
            if extra or len(user.member_of) > 1:
                member_of = tuple(sorted({*user.member_of, *extra}))
                object.__setattr__(user, "member_of", member_of)
        catalog = Catalog(self._users, self._groups, files=self.stamps, warnings=warnings)
        self._check_claims(catalog)
        return catalog

    def _check_claims(self, catalog: Catalog) -> None:
        """Refuse two users claiming one Bitbucket account: a sign-in would find both."""
        for user in catalog.users:
            for key in _CLAIMED:
                value = user.annotations.get(key)
                if value is None:
                    continue
                first = next(iter(catalog.users_by_annotation(key, value)), user)
                if first is not user:
                    raise CatalogError(
                        f"{self._describe(user)}: annotation {key} {_quote(value)} is already "
                        f"claimed by {self._describe(first)}"
                    )

    def _describe(self, entity: _Entity) -> str:
        return _place(self._labels[entity.source], entity.document, entity.kind, entity.name)


class _Fields:
    """Reads and validates the fields of the entities of one file, one entity at a time."""

    def __init__(self, file: str, group_refs: dict[tuple[str, str], str]) -> None:
        self.file = file
        self.document = 0
        self.kind: str | None = None
        self.entity_name: str | None = None
        self._group_refs = group_refs

    def at(self, document: int) -> None:
        """Move on to the entity of this document (number)."""
        self.document, self.kind, self.entity_name = document, None, None

    def __str__(self) -> str:
        return _place(self.file, self.document, self.kind, self.entity_name)

    def error(self, problem: str) -> CatalogError:
        return CatalogError(f"{self}: {problem}")

    def mapping(
        self, parent: Mapping[str, Any], key: str, *, required: bool = False, prefix: str = ""
    ) -> Mapping[str, Any]:
        value = parent.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.error(f"{prefix}{key} must be a mapping, not {_type_name(value)}")
        return value

    def string(self, parent: Mapping[str, Any], key: str, prefix: str) -> str | None:
        value = parent.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(f"{prefix}{key} must be a string, not {_type_name(value)}")
        return value

    def name(self, metadata: Mapping[str, Any]) -> str:
        name = self.string(metadata, "name", "metadata.")
        if name is None:
            raise self.error("metadata.name is required")
        if not is_valid_name(name):
            raise self.bad_name(name, "metadata.name")
        return name

    def bad_name(self, name: str, what: str) -> CatalogError:
        return self.error(
            f"{what} {_quote(name)} is not a valid name: 1-63 letters, digits, '-', '_' "
            "or '.', beginning and ending with a letter or digit"
        )

    def namespace(self, metadata: Mapping[str, Any]) -> str:
        namespace = self.string(metadata, "namespace", "metadata.")
        if namespace is None:
            return "default"
        if not _is_valid_namespace(namespace):
            raise self.bad_namespace(namespace, "metadata.namespace")
        return sys.intern(namespace)

    def bad_namespace(self, namespace: str, what: str) -> CatalogError:
        return self.error(
            f"{what} {_quote(namespace)} is not a valid namespace: 1-63 lower-case "
            "letters and digits, separated by single '-'"
        )

    def annotations(self, metadata: Mapping[str, Any]) -> Mapping[str, str]:
        """The annotations, read-only (the parsed mapping itself: nothing else keeps it)."""
        annotations = self.mapping(metadata, "annotations", prefix="metadata.")
        if not annotations:
            return _NO_ANNOTATIONS
        shared_keys = True
        for key, value in annotations.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise self.error(
                    f"metadata.annotations {_quote(key)} must map a string to a string"
                )
            shared_keys = shared_keys and sys.intern(key) is key
        user_id = annotations.get(USER_ID_ANNOTATION)
        if user_id is not None and not _UUID.fullmatch(_unbrace(user_id.strip())):
            raise self.error(
                f"annotation {USER_ID_ANNOTATION} {_quote(user_id)} is not a uuid, "
                'e.g. "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"'
            )
        if not shared_keys:
            # Each YAML document has its own copy of each key; a hundred thousand of
            # "bitbucket.org/user-id" would take 7 MB.
            annotations = {sys.intern(key): value for key, value in annotations.items()}
        return MappingProxyType(annotations)

    def refs(self, spec: Mapping[str, Any], key: str, kind: str, namespace: str) -> tuple[str, ...]:
        """The refs of the list ``spec[key]``, each once, in order."""
        values = spec.get(key)
        if values is None:
            return ()
        if not isinstance(values, list):
            raise self.error(f"spec.{key} must be a list, not {_type_name(values)}")
        refs = []
        for value in values:
            if kind == "group" and isinstance(value, str):
                # a thousand groups for a hundred thousand people: parse each group ref once
                ref = self._group_refs.get((namespace, value))
                if ref is None:
                    ref = self._group_refs[namespace, value] = self.ref(value, key, kind, namespace)
            else:
                ref = self.ref(value, key, kind, namespace)
            refs.append(ref)
        return tuple(dict.fromkeys(refs))

    def ref(self, value: Any, key: str, kind: str, namespace: str) -> str:
        """Parse ``[kind:][namespace/]name`` into a lower-cased full ref of the given kind."""
        if not isinstance(value, str):
            raise self.error(f"spec.{key} entries must be strings, not {_type_name(value)}")
        ref_kind, _, rest = value.partition(":") if ":" in value else (kind, "", value)
        ref_namespace, _, name = rest.partition("/") if "/" in rest else (namespace, "", rest)
        if ascii_lower(ref_kind) != kind:
            raise self.error(f"spec.{key} entry {_quote(value)} must refer to a {kind}")
        if not _is_valid_namespace(ascii_lower(ref_namespace)):
            entry = f"spec.{key} entry {_quote(value)}: namespace"
            raise self.bad_namespace(ascii_lower(ref_namespace), entry)
        if not is_valid_name(name):
            raise self.bad_name(name, f"spec.{key} entry {_quote(value)}: name")
        return ascii_lower(f"{kind}:{ref_namespace}/{name}")

    def targets(self, spec: Mapping[str, Any]) -> Iterator[str]:
        if spec.get("type", "file") != "file":
            raise self.error(
                f"spec.type {_quote(spec.get('type'))}: only file targets are supported"
            )
        targets = spec.get("targets", [])
        if not isinstance(targets, list):
            raise self.error(f"spec.targets must be a list, not {_type_name(targets)}")
        if "target" in spec:
            targets = [spec["target"], *targets]
        if not targets:
            raise self.error("spec.target or spec.targets is required")
        for target in targets:
            if not isinstance(target, str) or not target.strip() or "\0" in target:
                raise self.error(f"Location target {_quote(target)} must be a file path")
            yield target.strip()


def _json_documents(text: str, label: str) -> Iterator[Any]:
    """The entities of a JSON file: one, a list, or ``{"items": [...]}``.

    A list (also that of ``{"items": [...]}`` when "items" comes first) is decoded one entity
    at a time, as YAML documents are, so the whole file never exists as Python objects at once.
    """
    try:
        start = _JSON_LIST.match(text)
        if start is None:
            yield from _json_entities(json.loads(text), label)
            return
        position = start.end()
        while not text.startswith("]", position):
            document, position = _JSON.raw_decode(text, position)
            yield document
            after = _JSON_NEXT.match(text, position)
            position = after.end() if after else position
            if not (after and after.group("comma")):
                if not text.startswith("]", position):
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
                break
            if text.startswith("]", position):  # a trailing comma: the decoder's message
                _JSON.raw_decode(text, position)
        end = _JSON_ITEMS_END if start.group("items") else _JSON_LIST_END
        if not end.match(text, position + 1):
            _check_json_rest(text, position + 1, label)
    except RecursionError:
        raise CatalogError(
            f"{label}: invalid JSON: nested deeper than Python's recursion limit "
            f"({sys.getrecursionlimit()})"
        ) from None
    except (ValueError, TypeError, OverflowError) as error:
        raise CatalogError(f"{label}: invalid JSON: {_one_line(error)}") from None


def _json_entities(data: Any, label: str) -> list[Any]:
    if isinstance(data, dict) and "items" in data and "kind" not in data:
        data = data["items"]
        if not isinstance(data, list):
            raise CatalogError(f'{label}: "items" must be a list of entities')
    return data if isinstance(data, list) else [data]


def _check_json_rest(text: str, position: int, label: str) -> None:
    """What follows the list of ``{"items": [...], ...}``: other keys, unless they change it."""
    json.loads(text)  # the decoder's own message when the rest is not JSON
    others = json.loads("{" + text[text.index(",", position) + 1 :])
    if "items" in others or "kind" in others:
        problem = '"items" twice' if "items" in others else '"items" and "kind"'
        raise CatalogError(
            f"{label}: {problem} at the top level: write one entity, a list of entities, "
            'or {"items": [...]}'
        )


def _yaml_documents(text: str, label: str) -> Iterator[Any]:
    """The YAML documents of ``text``, parsed one at a time."""
    try:
        if text.count("*") > MAX_YAML_ALIASES:  # no alias without a '*': most files stop here
            _check_aliases(text, label)
        yield from yaml.load_all(text, Loader=_YAML_LOADER)
    except _PARSE_ERRORS as error:
        raise CatalogError(f"{label}: invalid YAML: {_one_line(error)}") from None


def _check_aliases(text: str, label: str) -> None:
    """Refuse a document with more than MAX_YAML_ALIASES aliases of a mapping or a list."""
    collections: set[str] = set()
    document = aliases = 0
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.DocumentStartEvent):
            document, aliases = document + 1, 0
            collections.clear()
        elif isinstance(event, yaml.CollectionStartEvent) and event.anchor:
            collections.add(event.anchor)
        elif isinstance(event, yaml.ScalarEvent) and event.anchor:
            collections.discard(event.anchor)
        elif isinstance(event, yaml.AliasEvent) and event.anchor in collections:
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise CatalogError(
                    f"{label}: document {document}: more than {MAX_YAML_ALIASES} aliases "
                    "of a mapping or list, the limit"
                )


def _place(file: str, document: int | None, kind: str | None, name: str | None) -> str:
    """Where a problem is, for messages: ``people.yaml: User "jdoe" (document 3)``."""
    place = file
    if kind is not None:
        place += f": {kind}" + (f" {_quote(name)}" if name else "")
    if document is not None:
        place += f" (document {document})" if kind else f": document {document}"
    return place


def _is_valid_namespace(namespace: str) -> bool:
    return len(namespace) <= 63 and _NAMESPACE.fullmatch(namespace) is not None


def _real(path: Path, place: str) -> Path:
    """The path with symlinks and ``..`` resolved."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as error:
        raise CatalogError(f"{place}: cannot resolve {_quote(str(path))}: {error}") from None


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
