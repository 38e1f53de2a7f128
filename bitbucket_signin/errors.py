"""The exceptions of bitbucket-signin; each carries a message fit to show or log."""

from __future__ import annotations


class ConfigError(Exception):
    """A misconfiguration found at start-up; the message is one line naming the setting."""


class CatalogError(Exception):
    """The catalog file cannot be used; the message names the file and the entity."""


class SignInError(Exception):
    """Sign-in refused; ``status`` is the HTTP status the sign-in page answers with."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
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
