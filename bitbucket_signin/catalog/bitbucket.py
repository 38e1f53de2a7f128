"""Bitbucket's annotation rules for catalog users: which annotations name a Bitbucket
account, how their values compare, and which of them no two users may share.

The generic loader applies these through :class:`~bitbucket_signin.catalog.loader.AnnotationRules`.
"""

from __future__ import annotations

import re

from ..identity_keys import username_key
from ..profile import normalize_uuid

USER_ID_ANNOTATION = "bitbucket.org/user-id"
ACCOUNT_ID_ANNOTATION = "bitbucket.org/account-id"
USERNAME_ANNOTATION = "bitbucket.org/username"
# Each names one Bitbucket account: two users claiming one would both match a sign-in.
CLAIMED_ANNOTATIONS = (USER_ID_ANNOTATION, ACCOUNT_ID_ANNOTATION, USERNAME_ANNOTATION)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


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

    def problem(self, key: str, value: str) -> str | None:
        """What is wrong with annotation ``key`` holding ``value``, if anything."""
        if key == USER_ID_ANNOTATION and not _UUID.fullmatch(_unbrace(value.strip())):
            return 'is not a uuid, e.g. "{768f8c62-7f2a-4914-bf33-3f412fc1d3a4}"'
        return None


def _unbrace(value: str) -> str:
    return value[1:-1] if value.startswith("{") and value.endswith("}") else value
