"""Bitbucket's annotation rules for catalog users: which annotations name a Bitbucket
account, how their values compare, and which of them no two users may share.

The generic loader applies these through :class:`~bitbucket_signin.catalog.loader.AnnotationRules`.
"""

from __future__ import annotations

import difflib
import re

from ..identity_keys import username_key
from ..profile import normalize_uuid

USER_ID_ANNOTATION = "bitbucket.org/user-id"
ACCOUNT_ID_ANNOTATION = "bitbucket.org/account-id"
USERNAME_ANNOTATION = "bitbucket.org/username"
# Each names one Bitbucket account: two users claiming one would both match a sign-in.
CLAIMED_ANNOTATIONS = (USER_ID_ANNOTATION, ACCOUNT_ID_ANNOTATION, USERNAME_ANNOTATION)
PREFIX = "bitbucket.org/"
# Data Center's: <host>/user-id and <host>/user-slug, host being the instance's own.
SERVER_USER_ID = "user-id"
SERVER_USER_SLUG = "user-slug"
# A uuid, in braces or not, with white space around (as str.strip removes it).
_UUID = re.compile(
    r"\s*(\{)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?(1)\})\s*",
    re.IGNORECASE,
)


def names_server_account(key: str) -> bool:
    """Whether annotation ``key`` names an account of some Data Center instance
    (``<host>/user-id`` or ``<host>/user-slug``, a host other than bitbucket.org): which
    instance the app signs in with is not the catalog's to know."""
    host, _, name = key.rpartition("/")
    cloud = (host + "/").lower() == PREFIX
    return bool(host) and not cloud and name in (SERVER_USER_ID, SERVER_USER_SLUG)


def annotation_value_key(key: str, value: str) -> str:
    """How annotation values compare: uuids without braces, usernames by :func:`username_key`."""
    if key == USER_ID_ANNOTATION:
        return normalize_uuid(value)
    if key == USERNAME_ANNOTATION:
        return username_key(value)
    return value


class BitbucketAnnotations:
    """The annotation rules the catalog loader applies for Bitbucket sign-in."""

    checked = (USER_ID_ANNOTATION,)
    unique = CLAIMED_ANNOTATIONS

    def unknown_key(self, key: str) -> str | None:
        """A ``bitbucket.org/`` key that is none of ours, with the closest of ours."""
        if not key.lower().startswith(PREFIX) or key in CLAIMED_ANNOTATIONS:
            return None
        names = [
            known.removeprefix(PREFIX) for known in CLAIMED_ANNOTATIONS
        ]  # the part that varies
        close = difflib.get_close_matches(key[len(PREFIX) :].lower(), names, n=1, cutoff=0.6)
        known = ", ".join(CLAIMED_ANNOTATIONS)
        hint = f"did you mean {PREFIX}{close[0]}?" if close else f"known: {known}"
        return f"unknown annotation {key}: {hint}"

    def problem(self, key: str, value: str) -> str | None:
        """What is wrong with annotation ``key`` holding ``value``, if anything."""
        if key == USER_ID_ANNOTATION and not _UUID.fullmatch(value):
            return 'is not a uuid, e.g. "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"'
        return None
