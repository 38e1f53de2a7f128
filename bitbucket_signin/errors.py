"""The exceptions of bitbucket-signin; each carries a message fit to show or log. Also how a
value or another exception appears inside such a message."""

from __future__ import annotations

import json
import reprlib
from pathlib import Path
from typing import Any

from .profile import Profile

ONE_LINE_LIMIT = 300  # characters of another exception's message kept in one of ours


def quoted(value: Any, *, limit: int | None = 80) -> str:
    """A value for a message: JSON-quoted and escaped (so also a YAML string), cut to ``limit``
    characters (even a YAML alias bomb: non-strings through :func:`reprlib.repr`) unless
    ``limit`` is ``None``."""
    text = value if isinstance(value, str) else reprlib.repr(value)
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return json.dumps(text, ensure_ascii=False)


def one_line(error: BaseException) -> str:
    """Another exception's message inside one of ours: :func:`one_line_text`; the
    exception's type when it has no message."""
    return one_line_text(str(error)) or type(error).__name__


def one_line_text(text: str) -> str:
    """Text from elsewhere inside one of our messages, which reach pages and logs: line breaks
    (also NEL, U+2028 and U+2029), tabs and other unprintable characters become spaces,
    whitespace is collapsed to single spaces, and at most ``ONE_LINE_LIMIT`` characters stay."""
    printable = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(printable.split())[:ONE_LINE_LIMIT]


class ConfigError(Exception):
    """A misconfiguration found at start-up; the message is one line naming the setting."""


class CatalogError(Exception):
    """The catalog file cannot be used; the message names the file and the entity."""


class CatalogConfigError(ConfigError):
    """The catalog cannot be used at start-up; ``path`` is its file, for ``check`` to report
    every problem of it."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


class SignInError(Exception):
    """Sign-in refused; ``status`` is the HTTP status the sign-in page answers with.

    ``reason`` names the refusal for the metrics and the audit log: a name from a fixed set
    (never text from a request), by default the exception's class name.
    """

    status = 400

    def __init__(
        self, message: str, *, status: int | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or type(self).__name__
        if status is not None:
            self.status = status


class NotFoundError(SignInError):
    """A resolver found no catalog user; the chain moves on to the next resolver."""

    status = 403


class ConflictError(SignInError):
    """A resolver found several catalog users where one was expected."""

    status = 403


class SessionStoreUnavailableError(SignInError):
    """The session store (Redis) cannot be reached, so who is signed in is unknown for now."""

    status = 503

    def __init__(self) -> None:
        super().__init__(
            "Sign-in sessions are unavailable right now, so this page cannot tell who you are. "
            "Please try again in a moment."
        )


class UpstreamError(SignInError):
    """Bitbucket failed, refused or timed out; the status is 502, 503 or 504."""

    status = 502

    def __init__(
        self, message: str, *, status: int | None = None, upstream_status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.upstream_status = upstream_status


NOT_IN_CATALOG_MESSAGE = (
    "Failed to sign-in, unable to resolve user identity. Please verify that your catalog "
    "contains the expected User entities that would match your configured sign-in resolver."
)


class UserNotInCatalogError(NotFoundError):
    """No resolver of the chain found the visitor; says what an administrator should add.

    ``attempts`` pairs each resolver's name with its message; ``suggestion`` is a YAML
    snippet for the visitor's User entity.
    """

    def __init__(
        self,
        profile: Profile,
        attempts: tuple[tuple[str, str], ...],
        suggestion: str,
    ) -> None:
        super().__init__(NOT_IN_CATALOG_MESSAGE)
        self.profile = profile
        self.attempts = attempts
        self.suggestion = suggestion


class SignInEndedError(SignInError):
    """Bitbucket no longer accepts the person's sign-in (its refresh token was refused, or
    the kept tokens are gone): the session is ended and the person must sign in again."""

    status = 401

    def __init__(self) -> None:
        super().__init__(
            "Bitbucket no longer accepts your sign-in here (it was revoked or has expired). "
            "Please sign in again."
        )


class TokensNotKeptError(RuntimeError):
    """``current_user.bitbucket`` was used, but no Bitbucket token is kept."""

    def __init__(self) -> None:
        super().__init__(
            "current_user.bitbucket needs BITBUCKET_KEEP_TOKENS = true "
            "(with BITBUCKET_SESSION_REDIS_URL): no Bitbucket token is kept otherwise"
        )
