"""Server-side sessions in Redis (Flask-Session and redis-py), switched on by the extension.

The browser holds only a random session id. Each signed-in person's session ids are also
kept in a set, so that "sign out everywhere" can end all of them; the set lives as long as
the longest-lived of them. A session read at the start of a request is written back only if
it still exists: a request that was under way when its session ended cannot bring it back.
A session with nobody signed in (a pending sign-in) is kept for ``PENDING_SECONDS`` only.
The Bitbucket tokens kept beside a session (``BITBUCKET_KEEP_TOKENS``, see ``tokens.py``)
live and end with it: their expiry is renewed with the session's, and they are deleted when
the session is emptied (sign-out), replaced (a new sign-in) or ended everywhere.

When Redis cannot be reached, requests that need no session keep working; a request whose
session cannot be read or written gets :class:`SessionStoreUnavailableError` (a 503 page),
never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, Request, Response, g, request
from flask.sessions import SessionMixin
from flask_login import user_accessed

from .errors import ConfigError, SessionStoreUnavailableError
from .profile import normalize_uuid
from .session_keys import PROFILE_KEY, SEEN_AT_RESOLUTION_SECONDS, USER_ID_KEY

try:
    from flask_session.redis import RedisSessionInterface
    from redis import Redis
    from redis.exceptions import RedisError
except ImportError as missing:  # pragma: no cover - the redis extra is not installed
    _MISSING: ImportError | None = missing
    RedisSessionInterface = object
    STORE_ERRORS: tuple[type[Exception], ...] = ()
else:
    _MISSING = None
    STORE_ERRORS = (RedisError,)  # what a store that cannot be reached raises

SESSION_PREFIX = "bitbucket-signin:session:"
PERSON_PREFIX = "bitbucket-signin:person:"
TOKENS_PREFIX = "bitbucket-signin:tokens:"
REDIS_TIMEOUT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5
PENDING_SECONDS = 30 * 60  # a sign-in not finished by then has expired at Bitbucket too
ErrorPage = Callable[[SessionStoreUnavailableError], Response]
_STORE_FAILED = "_bitbucket_session_store_failed"
logger = logging.getLogger(__name__)


def connect(url: str, setting: str) -> Redis:
    """A Redis client for ``url`` that answered a ping; raises :class:`ConfigError`."""
    if _MISSING is not None:
        raise ConfigError(f"{setting} needs the redis extra: pip install 'bitbucket-signin[redis]'")
    try:
        client = Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            health_check_interval=30,
        )
        client.ping()
    except (RedisError, ValueError) as error:
        raise ConfigError(f"{setting}: cannot use Redis ({error})") from None
    return client


class RedisSessions(RedisSessionInterface):  # type: ignore[misc]
    """Flask-Session's Redis interface with an idle timeout, a per-person index and no 500s."""

    def __init__(
        self, app: Flask, client: Redis, *, idle_timeout: timedelta, error_page: ErrorPage
    ) -> None:
        super().__init__(app, client=client, key_prefix=SESSION_PREFIX, permanent=False)
        # Redis forgets a session left idle. The user loader renews the session's last-seen
        # stamp (a write, which resets this expiry) once a minute at most, so no request has
        # to push the expiry itself; the minute is added so no active session expires early.
        self.idle_timeout = idle_timeout + timedelta(seconds=SEEN_AT_RESOLUTION_SECONDS)
        self.error_page = error_page

    def open_session(self, app: Flask, request: Request) -> SessionMixin:
        try:
            session: Any = super().open_session(app, request)
            session.stored_sid = session.sid if session else None
            session.stored_person = _person(session)
        except RedisError as error:
            logger.warning("session store unreachable, reading a session: %s", error)
            g.setdefault(_STORE_FAILED, True)
            session = self.session_class(sid=self._generate_sid(self.sid_length), permanent=False)
        opened: SessionMixin = session
        return opened

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if g.get(_STORE_FAILED) and not session.modified:
            return
        try:
            super().save_session(app, session, response)
            self._forget_tokens_of_an_ended_sign_in(session)
        except RedisError as error:
            logger.warning("session store unreachable, saving a session: %s", error)
            self._replace_with_error_page(response)

    def should_set_storage(self, app: Flask, session: Any) -> bool:
        return bool(session.modified)

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure

    def _upsert_session(self, session_lifetime: timedelta, session: Any, store_id: str) -> None:
        """Write the session (the app's PERMANENT_SESSION_LIFETIME is not ours to follow);
        one read from the store is written back only if it is still there."""
        person = _person(session)
        expiry = self.idle_timeout if person else timedelta(seconds=PENDING_SECONDS)
        still_there = getattr(session, "stored_sid", None) == session.sid
        data = self.serializer.encode(session)
        if not self.client.set(store_id, data, ex=expiry, xx=still_there):
            logger.info("session ended while a request was under way; not brought back")
            return
        if person:  # index it for sign_out_everywhere, for as long as the session lives
            key = PERSON_PREFIX + person
            with self.client.pipeline() as pipe:
                pipe.sadd(key, session.sid)
                pipe.expire(key, expiry, nx=True)
                pipe.expire(key, expiry, gt=True)
                pipe.expire(tokens_key(person, session.sid), expiry)  # if tokens are kept
                pipe.execute()

    def _forget_tokens_of_an_ended_sign_in(self, session: Any) -> None:
        """The sign-in this request began with is over here (signed out, or replaced by a
        new one): its kept tokens go too."""
        person, sid = getattr(session, "stored_person", None), getattr(session, "stored_sid", None)
        if person and sid and (session.sid != sid or _person(session) != person):
            self.client.delete(tokens_key(person, sid))

    def sign_out_everywhere(self, person: str) -> int:
        """End every session of ``person`` (a Bitbucket uuid, or a Data Center sign-in's
        ``bitbucketServer:<id>``); returns how many there were."""
        key = PERSON_PREFIX + normalize_uuid(person)
        try:
            sids = [sid.decode() for sid in self.client.smembers(key)]
            with self.client.pipeline() as pipe:
                for sid in sids:
                    pipe.exists(self._get_store_id(sid))
                live = sum(pipe.execute())
                ended = [self._get_store_id(sid) for sid in sids]
                ended += [tokens_key(person, sid) for sid in sids]
                pipe.delete(key, *ended)
                pipe.execute()
        except RedisError as error:
            logger.warning("session store unreachable, signing out everywhere: %s", error)
            raise SessionStoreUnavailableError() from None
        return int(live)

    def _replace_with_error_page(self, response: Response) -> None:
        """The view's answer cannot stand without its session: the 503 answer instead (its
        headers replace the view's; a policy of the view's stays unless it brings one)."""
        page = self.error_page(SessionStoreUnavailableError())
        response.status_code = page.status_code
        response.set_data(page.get_data())
        response.headers.pop("Location", None)
        response.headers.update(page.headers)

    def is_reachable(self) -> bool:
        try:
            return bool(self.client.ping())
        except RedisError:
            return False


def tokens_key(person: str, sid: str) -> str:
    """Where the Bitbucket tokens of ``person``'s session ``sid`` are kept."""
    return f"{TOKENS_PREFIX}{normalize_uuid(person)}:{sid}"


def _person(session: Any) -> str | None:
    """The normalized user id (a Cloud uuid, or ``bitbucketServer:<id>``) of the person
    signed in with ``session`` by this extension, if anyone is."""
    user_id = session.get(USER_ID_KEY) if isinstance(session.get(PROFILE_KEY), dict) else None
    return normalize_uuid(user_id) if isinstance(user_id, str) else None


def store_failed_for_this_request() -> bool:
    """Whether this request carried a session the store could not read."""
    return bool(g.get(_STORE_FAILED))


def install_redis_sessions(
    app: Flask, url: str, *, idle_timeout: timedelta, error_page: ErrorPage
) -> RedisSessions:
    """Make ``app`` keep its sessions in Redis; refuses an app with its own session interface."""
    current = type(app.session_interface)
    if current.__module__.split(".")[0] not in ("flask", "bitbucket_signin"):
        raise ConfigError(
            f"BITBUCKET_SESSION_REDIS_URL: the app already has its own session interface "
            f"({current.__module__}.{current.__qualname__}); remove one of the two"
        )
    client = connect(url, "BITBUCKET_SESSION_REDIS_URL")
    interface = RedisSessions(app, client, idle_timeout=idle_timeout, error_page=error_page)
    app.session_interface = interface
    return interface


def refuse_unreadable_sessions(app: Flask) -> None:
    """Whoever asks who is signed in, while the session could not be read, gets a 503."""

    def check(sender: Flask, **extra: Any) -> None:
        if store_failed_for_this_request():
            raise SessionStoreUnavailableError()

    user_accessed.connect(check, sender=app, weak=False)
