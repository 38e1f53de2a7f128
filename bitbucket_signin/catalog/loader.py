"""The generic Backstage catalog loader: reads ``User``, ``Group`` and ``Location`` entities
from a YAML or JSON file (and the files its Locations name), validates them with Backstage's
rules and returns an indexed :class:`~bitbucket_signin.catalog.model.Catalog`.

What a consumer asks of annotations (value checks, values no two users may share) comes in as
:class:`AnnotationRules`; the loader itself knows no annotation.
"""

from __future__ import annotations

import gc
import json
import os
import re
import stat
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import yaml

from ..config import DEFAULTS
from ..errors import CatalogError, one_line, quoted
from ..identity_keys import ascii_lower, email_key
from .memo import SKIPPED, FileMemo, Recall, Reusable
from .model import Catalog, Entity, GroupEntity, UserEntity

DEFAULT_MAX_BYTES: int = DEFAULTS["CATALOG_MAX_BYTES"]
# Limits against hostile files (deep nesting is refused by the parsers themselves: libyaml
# at 1000 levels, JSON at Python's recursion limit).
MAX_ENTITIES = 1_000_000
# Aliases of a mapping or list per YAML document, like SnakeYAML (50) and Symfony (128): the
# parser shares the aliased object, but each alias of a list makes the loader read it again.
MAX_YAML_ALIASES = 100
PAUSE_SECONDS = 0.0002  # how long a load that steps aside (``pause_every``) lets others run

_API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
_SKIPPED_KINDS = frozenset({"Component", "API", "System", "Domain", "Resource", "Template"})
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_NAMESPACE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
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
Stamp = tuple[int, int, int] | None


class AnnotationRules(Protocol):
    """What a consumer of the catalog asks of annotations."""

    @property
    def checked(self) -> tuple[str, ...]:
        """Annotations whose values :meth:`problem` checks."""

    @property
    def unique(self) -> tuple[str, ...]:
        """Annotations whose values no two users may share (compared as the index does)."""

    def problem(self, key: str, value: str) -> str | None:
        """What is wrong with annotation ``key`` holding ``value`` (``None``: nothing)."""

    def unknown_key(self, key: str) -> str | None:
        """Why annotation ``key`` looks like a mistake, e.g. a misspelt key of the consumer's."""


def is_valid_name(value: str) -> bool:
    """Backstage's rule for ``metadata.name``: 1-63 characters, alphanumeric at both ends."""
    return len(value) <= 63 and _NAME.fullmatch(value) is not None


class Loader:
    """One load: walks the files, validates the documents, links users and groups.

    Files are read one entity at a time and duplicates checked as entities arrive; at the end
    what groups declare is added to their users, and claims are checked through the index. The
    cyclic garbage collector is paused meanwhile: everything built stays alive until the load
    ends, so its passes over the growing heap would find nothing (and took 3/4 of the time).

    The first problem raises :class:`CatalogError`, unless ``collect``: then every problem that
    can be found is kept in :attr:`problems` (one line each, naming file and entity) and the
    load goes on with what remains. The root may be a Backstage ``app-config.yaml``: then its
    ``catalog.locations`` of ``type: file`` are the catalog, relative to it.

    With ``remembered`` (the :attr:`memos` of the previous load, or ``{}``), the entities of
    JSON files that are the same text as in the previous load are not read again
    (:mod:`.memo`), and :attr:`memos` holds this load's for the next.
    """

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        rules: AnnotationRules,
        *,
        pause_every: int = 0,
        collect: bool = False,
        remembered: Mapping[Path, FileMemo] | None = None,
    ) -> None:
        self.root = root.absolute()
        self.max_bytes = max_bytes
        self.rules = rules
        self.pause_every = pause_every
        self.problems: list[str] | None = [] if collect else None
        self._remembered: Mapping[Path, FileMemo] = remembered or {}
        self.memos: dict[Path, FileMemo] | None = None if remembered is None else {}
        self.reused = 0  # entities not read again (:mod:`.memo`)
        self.stamps: dict[Path, Stamp] = {}
        self._warnings: list[str] = []
        self._key_notes: dict[str, str | None] = {}
        self._hierarchy: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        self._done: set[Path] = set()
        self._labels: dict[Path, str] = {}
        self._users: list[UserEntity] = []
        self._groups: list[GroupEntity] = []
        self._entities: dict[str, Entity] = {}
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

    def describe(self, entity: Entity) -> str:
        """Where an entity of this load is: ``people.yaml: User "jdoe" (document 3)``."""
        return _place(self._labels[entity.source], entity.document, entity.kind, entity.name)

    def _report(self, error: CatalogError) -> None:
        """Raise ``error``, or keep it in :attr:`problems` when collecting."""
        if self.problems is None:
            try:
                raise error
            finally:  # its traceback holds this frame: without the name, no cycle holds the load
                del error
        self.problems.append(str(error))

    def _walk(self, path: Path, chain: tuple[Path, ...]) -> None:
        """Load the file at ``path``, named by the Locations in the files of ``chain``."""
        try:
            self._walk_file(path, chain)
        except CatalogError as error:
            self._report(error)

    def _walk_file(self, path: Path, chain: tuple[Path, ...]) -> None:
        label = self._label(path)
        real = _real(path, label)
        if any(_real(named, label) == real for named in chain):
            names = " → ".join(self._label(named) for named in (*chain, path))
            raise CatalogError(f"{self._label(chain[-1])}: Location cycle: {names}")
        if real in self._done:
            return
        self._done.add(real)
        self._labels[path] = label
        fields = _Fields(label, self._group_refs, self.rules, self._key_notes, self._warnings)
        chain = (*chain, path)
        recall = self._recall(path)
        documents = self._documents(path, label, recall)
        for index, document in enumerate(documents, start=1):
            result = None
            if document is not None:
                result = self._document(path, fields, index, document, chain, documents)
            if recall is not None:
                recall.keep(result)
        if recall is not None:
            self.reused += recall.reused

    def _document(
        self,
        path: Path,
        fields: _Fields,
        index: int,
        document: Any,
        chain: tuple[Path, ...],
        documents: Iterator[Any],
    ) -> Reusable | None:
        """Take in one document of the file; what it gave, if the next load may reuse it."""
        self._count += 1
        if self._count > MAX_ENTITIES:
            raise CatalogError(f"{fields.file}: more than {MAX_ENTITIES} entities, the limit")
        if self.pause_every and self._count % self.pause_every == 0:
            time.sleep(PAUSE_SECONDS)  # the request threads' turn
        fields.at(index)
        if len(chain) == 1 and _is_app_config(document):
            self._app_config_locations(path, fields.file, document, chain)
            return None
        try:
            if isinstance(document, Reusable):  # validated by an earlier load (.memo)
                return self._take(document, path, index)
            return self._entity(path, fields, document, chain)
        except CatalogError as error:
            if self.problems is None:
                for _ in documents:  # a syntax error further on is the first thing to fix
                    pass
            self._report(error)
            return None

    def _recall(self, path: Path) -> Recall | None:
        """This load's reading of a JSON file with the previous load's memo of it."""
        if self.memos is None or path.suffix.lower() != ".json":
            return None
        recall = Recall(self._remembered.get(path))
        self.memos[path] = recall.memo
        return recall

    def _documents(self, path: Path, label: str, recall: Recall | None) -> Iterator[Any]:
        """The file's documents, each dropped once the next is asked for."""
        text = self._read(path, label)
        if path.suffix.lower() == ".json":
            return _json_documents(text, label, recall)
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

    def _entity(
        self, path: Path, fields: _Fields, document: Any, chain: tuple[Path, ...]
    ) -> Reusable | None:
        """Validate and take in one entity; what it gave, if the next load may reuse it."""
        if not isinstance(document, dict):
            raise fields.error(f"is not a mapping but {_type_name(document)}")
        kind = document.get("kind")
        if not isinstance(kind, str) or not kind:
            raise fields.error("kind is missing or not a string")
        if kind in _SKIPPED_KINDS:
            return SKIPPED
        metadata = document.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        fields.kind, fields.entity_name = kind, name if isinstance(name, str) else None
        if kind not in ("User", "Group", "Location"):
            raise fields.error(f"unknown kind {quoted(kind)}")
        if document.get("apiVersion") not in _API_VERSIONS:
            raise fields.error(
                f"apiVersion {quoted(document.get('apiVersion'))} is not one of "
                + ", ".join(_API_VERSIONS)
            )
        metadata = fields.mapping(document, "metadata", required=True)
        name = fields.name(metadata)
        namespace = fields.namespace(metadata)
        spec = fields.mapping(document, "spec", required=kind != "User")
        warned = len(self._warnings)
        annotations = fields.annotations(metadata)
        if kind == "User":
            profile = fields.mapping(spec, "profile", prefix="spec.")
            result = Reusable(
                "User",
                name,
                namespace,
                annotations,
                display_name=fields.string(profile, "displayName", "spec.profile.") or name,
                email=fields.string(profile, "email", "spec.profile.") or None,
                picture=fields.string(profile, "picture", "spec.profile.") or None,
                refs=fields.refs(spec, "memberOf", "group", namespace),
            )
        elif kind == "Group":
            group_type = fields.string(spec, "type", "spec.")
            if not group_type:
                raise fields.error("spec.type is required")
            members = fields.refs(spec, "members", "user", namespace)
            parent = fields.string(spec, "parent", "spec.")
            hierarchy = (
                None if parent is None else fields.ref(parent, "parent", "group", namespace),
                fields.refs(spec, "children", "group", namespace),
            )
            result = Reusable(
                "Group",
                name,
                namespace,
                annotations,
                refs=members,
                group_type=group_type,
                hierarchy=hierarchy,
            )
        else:
            for target in fields.targets(spec):
                self._walk(self._target(path, target, fields), chain)
            return None
        self._take(result, path, fields.document)
        return result if len(self._warnings) == warned else None  # warnings come every load

    def _take(self, entity: Reusable, path: Path, index: int) -> Reusable:
        """Add the User or Group entity of document ``index`` of ``path``, validated now or
        in an earlier load (:mod:`.memo`)."""
        where = (entity.name, entity.namespace, entity.annotations, path, index)
        if entity.kind == "User":
            user = UserEntity(
                "User",
                *where,
                display_name=entity.display_name,
                email=entity.email,
                picture=entity.picture,
                member_of=entity.refs,
            )
            self._add(user)
            self._users.append(user)
        elif entity.kind == "Group":
            group = GroupEntity("Group", *where, entity.group_type, entity.refs)
            self._add(group)
            self._groups.append(group)
            self._hierarchy[group.ref] = entity.hierarchy
        return entity

    def _add(self, entity: Entity) -> None:
        first = self._entities.setdefault(entity.ref, entity)
        if first is not entity:
            raise CatalogError(
                f"{self.describe(entity)}: duplicate entity {entity.ref}, "
                f"already defined in {self.describe(first)}"
            )

    def _app_config_locations(
        self, path: Path, label: str, document: Mapping[str, Any], chain: tuple[Path, ...]
    ) -> None:
        """Walk the ``catalog.locations`` of ``type: file`` of an app-config, as Backstage
        reads them: relative to the app-config file. Each bounds what its own files name."""
        locations = document["catalog"].get("locations") or []
        if not isinstance(locations, list):
            raise CatalogError(f"{label}: catalog.locations must be a list")
        folder = self._folder
        for number, location in enumerate(locations, start=1):
            where = f"{label}: catalog.locations entry {number}"
            kind = location.get("type") if isinstance(location, dict) else None
            target = location.get("target") if isinstance(location, dict) else None
            if kind != "file":
                self._warnings.append(f"{where}: type {quoted(kind)} is not read (only file)")
                continue
            if not isinstance(target, str) or not target.strip() or "\0" in target:
                self._report(CatalogError(f"{where}: target {quoted(target)} is not a file path"))
                continue
            named = path.parent / target.strip()
            self._folder = _real(named.parent, where)
            try:
                self._walk(named, chain)
            finally:
                self._folder = folder

    def _target(self, path: Path, target: str, fields: _Fields) -> Path:
        if _URL.match(target):
            raise fields.error(f"target {quoted(target)}: only file targets are supported")
        named = path.parent / target.removeprefix("file:")
        if not _real(named, str(fields)).is_relative_to(self._folder):
            raise fields.error(
                f"target {quoted(target)} is outside the catalog folder {self._folder}"
            )
        return named

    def _link(self) -> Catalog:
        """Add the memberships groups declare to users, index, and check what spans entities.

        The entities are not shared yet, so they are completed in place rather than copied.
        """
        known = self._entities
        joined: dict[str, list[str]] = {}
        warnings = self._warnings
        for group in self._groups:
            members = []
            for member in group.members:
                user = known.get(member)
                if isinstance(user, UserEntity):
                    joined.setdefault(user.ref, []).append(group.ref)
                    member = user.ref  # one copy of each ref string
                else:
                    warnings.append(
                        f"{self.describe(group)}: member {member} is not in the catalog"
                    )
                members.append(member)
            object.__setattr__(group, "members", tuple(members))
        for user in self._users:
            declared = user.member_of
            missing = [ref for ref in declared if ref not in known]
            if missing:  # never among the ownership refs: a group nobody can see or edit
                warnings.extend(
                    f"{self.describe(user)}: group {ref} is not in the catalog" for ref in missing
                )
                declared = tuple(ref for ref in declared if ref in known)
            if user.email and email_key(user.email) is None:
                warnings.append(
                    f"{self.describe(user)}: spec.profile.email {quoted(user.email)} never "
                    "matches: it has no domain that is a valid IDNA 2008 name"
                )
            extra = joined.pop(user.ref, ())
            if extra or missing or len(declared) > 1:
                member_of = tuple(sorted({*declared, *extra}))
                object.__setattr__(user, "member_of", member_of)
        self._check_hierarchy()
        catalog = Catalog(self._users, self._groups, files=self.stamps, warnings=warnings)
        self._check_claims(catalog)
        return catalog

    def _check_hierarchy(self) -> None:
        """Warn of ``spec.parent`` and ``spec.children`` naming no group, and of cycles."""
        parents: dict[str, set[str]] = {}
        for group in self._groups:
            parent, children = self._hierarchy[group.ref]
            for ref, what in [(parent, "parent"), *((child, "child") for child in children)]:
                if ref is not None and not isinstance(self._entities.get(ref), GroupEntity):
                    self._warnings.append(
                        f"{self.describe(group)}: {what} group {ref} is not in the catalog"
                    )
                elif ref is not None and what == "parent":
                    parents.setdefault(group.ref, set()).add(ref)
                elif ref is not None:
                    parents.setdefault(ref, set()).add(group.ref)
        self._warnings.extend(
            "group hierarchy cycle: " + " → ".join((*cycle, cycle[0])) for cycle in _cycles(parents)
        )

    def _check_claims(self, catalog: Catalog) -> None:
        """Refuse two users claiming one Bitbucket account: a sign-in would find both."""
        for key in self.rules.unique:
            for first, *others in catalog.users_sharing_annotation(key):
                for user in others:
                    self._report(
                        CatalogError(
                            f"{self.describe(user)}: annotation {key} "
                            f"{quoted(user.annotations[key])} is already claimed by "
                            f"{self.describe(first)}"
                        )
                    )


class _Fields:
    """Reads and validates the fields of the entities of one file, one entity at a time."""

    def __init__(
        self,
        file: str,
        group_refs: dict[tuple[str, str], str],
        rules: AnnotationRules,
        key_notes: dict[str, str | None],
        warnings: list[str],
    ) -> None:
        self.file = file
        self.rules = rules
        self.warnings = warnings
        self._key_notes = key_notes  # what rules.unknown_key said of each key seen
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
            f"{what} {quoted(name)} is not a valid name: 1-63 letters, digits, '-', '_' "
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
            f"{what} {quoted(namespace)} is not a valid namespace: 1-63 lower-case "
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
                    f"metadata.annotations {quoted(key)} must map a string to a string"
                )
            shared_keys = shared_keys and sys.intern(key) is key
            if key not in self._key_notes:
                self._key_notes[key] = self.rules.unknown_key(key)
            if self._key_notes[key] is not None:
                self.warnings.append(f"{self}: {self._key_notes[key]}")
        for key in self.rules.checked:
            value = annotations.get(key)
            problem = None if value is None else self.rules.problem(key, value)
            if problem is not None:
                raise self.error(f"annotation {key} {quoted(value)} {problem}")
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
        ref_kind, colon, rest = value.partition(":")
        if not colon:
            rest = value
        elif ascii_lower(ref_kind) != kind:
            raise self.error(f"spec.{key} entry {quoted(value)} must refer to a {kind}")
        ref_namespace, slash, name = rest.partition("/")
        if not slash:  # the entity's own namespace, checked already (and lower-case)
            ref_namespace, name = namespace, rest
        else:
            ref_namespace = ascii_lower(ref_namespace)
            if not _is_valid_namespace(ref_namespace):
                entry = f"spec.{key} entry {quoted(value)}: namespace"
                raise self.bad_namespace(ref_namespace, entry)
        if not is_valid_name(name):
            raise self.bad_name(name, f"spec.{key} entry {quoted(value)}: name")
        return f"{kind}:{ref_namespace}/{ascii_lower(name)}"

    def targets(self, spec: Mapping[str, Any]) -> Iterator[str]:
        if spec.get("type", "file") != "file":
            raise self.error(
                f"spec.type {quoted(spec.get('type'))}: only file targets are supported"
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
                raise self.error(f"Location target {quoted(target)} must be a file path")
            yield target.strip()


def _json_documents(text: str, label: str, recall: Recall | None) -> Iterator[Any]:
    """The entities of a JSON file: one, a list, or ``{"items": [...]}``.

    A list (also that of ``{"items": [...]}`` when "items" comes first) is decoded one entity
    at a time, as YAML documents are, so the whole file never exists as Python objects at once;
    with ``recall``, an entity the same text as in the previous load is its
    :class:`~.memo.Reusable` instead, not decoded.
    """
    try:
        start = _JSON_LIST.match(text)
        if start is None:
            yield from _json_entities(json.loads(text), label)
            return
        position = start.end()
        while not text.startswith("]", position):
            reused = None if recall is None else recall.reuse(text, position)
            if reused is None:
                document, parsed_to = _JSON.raw_decode(text, position)
                earlier = None if recall is None else recall.parsed(text, position, parsed_to)
                document, position = (document if earlier is None else earlier), parsed_to
            else:
                document, position = reused
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
        raise CatalogError(f"{label}: invalid JSON: {one_line(error)}") from None


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
        raise CatalogError(f"{label}: invalid YAML: {one_line(error)}") from None


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


def _is_app_config(document: Any) -> bool:
    """Whether a document is a Backstage app-config (with a ``catalog`` section), no entity."""
    return isinstance(document, dict) and "kind" not in document and "catalog" in document


def _cycles(parents: Mapping[str, set[str]]) -> list[tuple[str, ...]]:
    """Each cycle of the graph ``ref -> parent refs`` once, from its smallest ref."""
    found: set[tuple[str, ...]] = set()
    done: set[str] = set()
    for start in sorted(parents):
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(parents.get(start, ()))))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, following = stack[-1]
            step = next(following, None)
            if step is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif step in on_path:
                cycle = path[path.index(step) :]
                first = cycle.index(min(cycle))
                found.add(tuple(cycle[first:] + cycle[:first]))
            elif step not in done:
                stack.append((step, iter(sorted(parents.get(step, ())))))
                path.append(step)
                on_path.add(step)
    return sorted(found)


def _place(file: str, document: int | None, kind: str | None, name: str | None) -> str:
    """Where a problem is, for messages: ``people.yaml: User "jdoe" (document 3)``."""
    place = file
    if kind is not None:
        place += f": {kind}" + (f" {quoted(name)}" if name else "")
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
        raise CatalogError(f"{place}: cannot resolve {quoted(str(path))}: {error}") from None


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
