"""What ``check`` reports of a catalog: every problem of a load (one line each, naming the file
and the entity), the loader's warnings, and what would keep people from signing in with
Bitbucket: users without a Bitbucket annotation, and users sharing an email address."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import CatalogError, quoted
from ..identity_keys import email_key
from .bitbucket import CLAIMED_ANNOTATIONS, names_server_account
from .loader import DEFAULT_MAX_BYTES, Loader
from .model import Catalog, UserEntity
from .store import BITBUCKET_RULES


@dataclass(frozen=True)
class CatalogReport:
    """The errors (any stops start-up), the warnings, and what the catalog holds."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    users: int
    groups: int
    files: int


def no_users(path: Path) -> str:
    """The problem of a catalog without users, which start-up refuses."""
    return f"{path.name}: no User entities: nobody could sign in"


def check_catalog(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> CatalogReport:
    """Load the catalog at ``path`` collecting every problem, and advise on the rest."""
    path = Path(path)
    loader = Loader(path, max_bytes, BITBUCKET_RULES, collect=True)
    try:
        catalog = loader.load()
    except CatalogError as error:  # the root itself cannot be resolved
        return CatalogReport((str(error),), (), 0, 0, 0)
    errors = list(loader.problems or ())
    if not catalog.users and not errors:
        errors.append(no_users(path))
    warnings = (*catalog.warnings, *_advice(catalog, loader))
    return CatalogReport(
        tuple(errors), warnings, len(catalog.users), len(catalog.groups), len(catalog.files)
    )


def _advice(catalog: Catalog, loader: Loader) -> Iterator[str]:
    known = ", ".join(CLAIMED_ANNOTATIONS)
    by_email: defaultdict[str, list[UserEntity]] = defaultdict(list)
    for user in catalog.users:
        if not any(
            key in CLAIMED_ANNOTATIONS or names_server_account(key) for key in user.annotations
        ):
            yield (
                f"{loader.describe(user)}: no Bitbucket annotation ({known}): only an email "
                "resolver can sign this person in"
            )
        if user.email and (key := email_key(user.email)) is not None:
            by_email[key].append(user)
    for users in by_email.values():
        first, *others = users
        for other in others:
            yield (
                f"{loader.describe(other)}: spec.profile.email {quoted(other.email)} is also "
                f"that of {loader.describe(first)}: the email resolvers refuse both"
            )
