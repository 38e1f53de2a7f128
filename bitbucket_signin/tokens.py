"""Each signed-in person's Bitbucket tokens, kept server-side in Redis and refreshed once.

``BITBUCKET_KEEP_TOKENS``: the access and refresh tokens of a sign-in are kept under a key of
their own beside the session (never inside it, so nothing of them can reach a cookie), named
by the person and the session id; the session store ends them with the session (sign-out,
expiry, "sign out everywhere"). A token is refreshed shortly before it expires. Bitbucket's
refresh tokens rotate (the old one dies on use), so one refresh per expiry across every
worker and host: the refresh happens under a Redis lock, and whoever waited for the lock
takes the token the refresh wrote instead of refreshing again.

Knows Redis and the clock; the refresh call itself is the caller's (``Refresher``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .errors import SessionStoreUnavailableError, SignInEndedError, UpstreamError
from .redis_sessions import STORE_ERRORS, tokens_key
from .waiting import too_late

if TYPE_CHECKING:
    from redis import Redis

REFRESH_CALL = "token refresh"
TOKEN_ANSWER = "tokens"  # noqa: S105 - a label for messages, not a secret
# A token this close to its expiry is refreshed before use: no call starts with a token
# that may die on its way (Bitbucket's access tokens live two hours).
REFRESH_MARGIN_SECONDS = 300
LOCK_PREFIX = "bitbucket-signin:refreshing:"
LOCK_POLL_SECONDS = 0.05
# Beyond the refresh call's own bound (BITBUCKET_TIMEOUT): a lock outliving its holder's
# call never lets a second refresh spend the same refresh token.
LOCK_SPARE_SECONDS = 5.0
# The answer to a refresh of the kept token: Bitbucket's token response (access_token,
# refresh_token, ...). Raises SignInEndedError when Bitbucket refuses the refresh token
# (invalid_grant).
Refresher = Callable[["KeptToken"], Mapping[str, Any]]
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeptToken:
    """A person's tokens; ``expires_at`` in seconds since the epoch, on the app's clock;
    ``redirect_uri`` that of the sign-in which issued them (Data Center wants the identical
    one on every refresh)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float
    scope: str
    redirect_uri: str = ""

    @classmethod
    def from_response(
        cls,
        response: Mapping[str, Any],
        now: float,
        previous: KeptToken | None = None,
        redirect_uri: str = "",
    ) -> KeptToken:
        """From a token response (``scope`` since 2026, ``scopes`` before); a refresh's
        response keeps the ``previous`` token's redirect_uri, and its refresh token when it
        sends no new one. Anything else missing or odd is an ``UpstreamError``."""
        access_token = response.get("access_token")
        refresh_token = response.get("refresh_token") or (previous and previous.refresh_token)
        expires_in = response.get("expires_in")
        scope = response.get("scope", response.get("scopes", ""))
        if (
            not isinstance(access_token, str)
            or not access_token
            or not isinstance(refresh_token, str)
            or not refresh_token
            or isinstance(expires_in, bool)
            or not isinstance(expires_in, int | float)
            or not 0 < expires_in < math.inf
        ):
            raise UpstreamError(f"Bitbucket sent a malformed answer ({TOKEN_ANSWER}).")
        return cls(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=now + float(expires_in),
            scope=scope if isinstance(scope, str) else "",
            redirect_uri=previous.redirect_uri if previous else redirect_uri,
        )

    def is_fresh(self, now: float) -> bool:
        """Whether the token may still be used, rather than refreshed first."""
        return now < self.expires_at - REFRESH_MARGIN_SECONDS

    def as_authlib_token(self) -> dict[str, Any]:
        """The token as Authlib's OAuth 2.0 clients take it."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "refresh_token": self.refresh_token,
            "expires_at": int(self.expires_at),
            "scope": self.scope,
        }

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, data: bytes | str) -> KeptToken | None:
        """The kept token, or ``None`` for anything unreadable (which ends the sign-in)."""
        try:
            fields = json.loads(data)
            token = cls(
                access_token=fields["access_token"],
                refresh_token=fields["refresh_token"],
                expires_at=float(fields["expires_at"]),
                scope=fields["scope"],
                redirect_uri=fields.get("redirect_uri", ""),
            )
        except (ValueError, TypeError, KeyError):
            return None
        strings = (token.access_token, token.refresh_token, token.scope, token.redirect_uri)
        return token if all(isinstance(value, str) for value in strings) else None


class TokenStore:
    """The kept tokens in Redis: written at sign-in, read (and refreshed once) on use.

    ``lifetime`` is how long a key lives unless the session store renews it (the session's
    own expiry in Redis); ``refresh_seconds`` bounds one refresh call, so a refresh holds
    the lock no longer than that and a waiter waits no longer either.
    """

    def __init__(
        self,
        client: Redis,
        *,
        clock: Callable[[], float],
        lifetime: timedelta,
        refresh_seconds: float,
    ) -> None:
        self.client = client
        self.clock = clock
        self.lifetime = lifetime
        self.lock_seconds = refresh_seconds + LOCK_SPARE_SECONDS

    def token_of_sign_in(self, response: Mapping[str, Any], redirect_uri: str) -> KeptToken:
        """The tokens of the sign-in's token response (asked for with ``redirect_uri``);
        ``UpstreamError`` if malformed."""
        return KeptToken.from_response(response, self.clock(), redirect_uri=redirect_uri)

    def keep(self, person: str, sid: str, token: KeptToken) -> None:
        """Keep the tokens of a sign-in that just happened; raises
        :class:`SessionStoreUnavailableError` when Redis cannot take them."""
        try:
            self.client.set(tokens_key(person, sid), token.encode(), ex=self.lifetime)
        except STORE_ERRORS as error:
            logger.warning("session store unreachable, keeping tokens: %s", error)
            raise SessionStoreUnavailableError() from None

    def current(self, person: str, sid: str, refresh: Refresher) -> KeptToken:
        """The session's token, refreshed first when it is about to expire: by this process,
        or by another one this process waits for.

        Raises :class:`SignInEndedError` when no token is kept for the session (it ended) or
        Bitbucket refused the refresh (the tokens are then forgotten),
        ``UpstreamError`` when the refresh failed otherwise or took too long, and
        :class:`SessionStoreUnavailableError` when Redis cannot be reached.
        """
        key = tokens_key(person, sid)
        try:
            stale = self._read(key)
            if stale.is_fresh(self.clock()):
                return stale
            return self._refresh_once(key, stale, refresh)
        except STORE_ERRORS as error:
            logger.warning("session store unreachable, reading tokens: %s", error)
            raise SessionStoreUnavailableError() from None

    def _read(self, key: str) -> KeptToken:
        data = self.client.get(key)
        token = KeptToken.decode(data) if data is not None else None
        if token is None:
            raise SignInEndedError()
        return token

    def _refresh_once(self, key: str, stale: KeptToken, refresh: Refresher) -> KeptToken:
        lock = self.client.lock(
            LOCK_PREFIX + key,
            timeout=self.lock_seconds,
            blocking_timeout=self.lock_seconds,
            sleep=LOCK_POLL_SECONDS,
        )
        if not lock.acquire():
            raise too_late(REFRESH_CALL)
        try:
            current = self._read(key)
            if current.access_token != stale.access_token or current.is_fresh(self.clock()):
                return current  # refreshed while this one waited for the lock
            try:
                response = refresh(current)
            except SignInEndedError:
                self.client.delete(key)
                raise
            renewed = KeptToken.from_response(response, self.clock(), previous=current)
            # Written only while the key exists: a sign-out meanwhile is not undone.
            if not self.client.set(key, renewed.encode(), xx=True, keepttl=True):
                raise SignInEndedError()
            return renewed
        finally:
            try:
                lock.release()
            except STORE_ERRORS as error:  # it expires by itself
                logger.warning("the token refresh lock was not released: %s", error)
