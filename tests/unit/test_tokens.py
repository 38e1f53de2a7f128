"""Unit tests of tokens.py: the kept tokens in a real Redis, with a stand-in for the refresh
call (the integration tests spend real refresh tokens at the emulator)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bitbucket_signin.errors import SessionStoreUnavailableError, SignInEndedError, UpstreamError
from bitbucket_signin.redis_sessions import tokens_key
from bitbucket_signin.tokens import REFRESH_MARGIN_SECONDS, KeptToken, TokenStore

from ..processes import free_port
from ..support import JANE, FakeClock

SID = "a-session-id"
CALLBACK = "https://portal.example.com/api/auth/bitbucketServer/handler/frame"
SIGN_IN = {"access_token": "a1", "refresh_token": "r1", "expires_in": 7200, "scope": "account"}


class Refresher:
    """Bitbucket's token endpoint for refreshes: rotates, and remembers what it was sent."""

    def __init__(self) -> None:
        self.spent: list[str] = []

    def __call__(self, stale: KeptToken) -> Mapping[str, Any]:
        assert stale.redirect_uri == CALLBACK  # what the sign-in asked with, every time
        self.spent.append(stale.refresh_token)
        n = len(self.spent) + 1
        return {"access_token": f"a{n}", "refresh_token": f"r{n}", "expires_in": 7200}


def refused(stale: KeptToken) -> Mapping[str, Any]:
    raise SignInEndedError()


@pytest.fixture
def kept(store: redis.Redis, clock: FakeClock) -> TokenStore:
    tokens = TokenStore(store, clock=clock, lifetime=timedelta(minutes=30), refresh_seconds=1)
    tokens.keep(JANE, SID, tokens.token_of_sign_in(SIGN_IN, CALLBACK))
    return tokens


def test_a_fresh_token_is_used_as_it_is(kept: TokenStore, clock: FakeClock) -> None:
    refresher = Refresher()
    clock.advance(7200 - REFRESH_MARGIN_SECONDS - 1)
    token = kept.current(JANE, SID, refresher)
    assert (token.access_token, token.scope, refresher.spent) == ("a1", "account", [])


def test_a_due_token_is_refreshed_once_and_the_rotated_one_kept(
    kept: TokenStore, store: redis.Redis, clock: FakeClock
) -> None:
    refresher = Refresher()
    clock.advance(7200 - REFRESH_MARGIN_SECONDS)
    assert kept.current(JANE, SID, refresher).access_token == "a2"
    assert kept.current(JANE, SID, refresher).access_token == "a2"
    assert refresher.spent == ["r1"]
    assert KeptToken.decode(store.get(tokens_key(JANE, SID)) or b"") == KeptToken(
        "a2", "r2", clock() + 7200, "", CALLBACK
    )
    assert 0 < store.ttl(tokens_key(JANE, SID)) <= 30 * 60  # the key's expiry is kept


def test_a_refused_refresh_forgets_the_tokens(
    kept: TokenStore, store: redis.Redis, clock: FakeClock
) -> None:
    clock.advance(7200)
    with pytest.raises(SignInEndedError):
        kept.current(JANE, SID, refused)
    assert store.get(tokens_key(JANE, SID)) is None
    with pytest.raises(SignInEndedError):  # and the session cannot use any again
        kept.current(JANE, SID, Refresher())


def test_a_refresh_after_the_tokens_were_forgotten_does_not_bring_them_back(
    kept: TokenStore, store: redis.Redis, clock: FakeClock
) -> None:
    clock.advance(7200)

    def sign_out_meanwhile(stale: KeptToken) -> Mapping[str, Any]:
        store.delete(tokens_key(JANE, SID))
        return Refresher()(stale)

    with pytest.raises(SignInEndedError):
        kept.current(JANE, SID, sign_out_meanwhile)
    assert store.get(tokens_key(JANE, SID)) is None


@pytest.mark.parametrize("stored", [b"not json", b"[]", b'{"access_token": 1}', b"{}"])
def test_unreadable_kept_tokens_end_the_sign_in(
    kept: TokenStore, store: redis.Redis, stored: bytes
) -> None:
    store.set(tokens_key(JANE, SID), stored)
    with pytest.raises(SignInEndedError):
        kept.current(JANE, SID, Refresher())


@pytest.mark.parametrize(
    "answer",
    [
        {"refresh_token": "r", "expires_in": 7200},
        {"access_token": "", "refresh_token": "r", "expires_in": 7200},
        {"access_token": "a", "refresh_token": "r"},
        {"access_token": "a", "refresh_token": "r", "expires_in": 0},
        {"access_token": "a", "refresh_token": "r", "expires_in": True},
        {"access_token": "a", "refresh_token": "r", "expires_in": float("inf")},
        {"access_token": "a", "expires_in": 7200},  # at sign-in there is no previous one
    ],
)
def test_malformed_answers_are_upstream_errors(answer: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError, match="malformed"):
        KeptToken.from_response(answer, now=0)


def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one() -> None:
    previous = KeptToken("a1", "r1", 0, "")
    renewed = KeptToken.from_response({"access_token": "a2", "expires_in": 60}, 10, previous)
    assert (renewed.refresh_token, renewed.expires_at) == ("r1", 70)
    assert "r1" not in repr(renewed)
    assert "a2" not in repr(renewed)


def test_redis_away_is_the_session_stores_503(clock: FakeClock) -> None:
    away = redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    tokens = TokenStore(away, clock=clock, lifetime=timedelta(minutes=1), refresh_seconds=1)
    with pytest.raises(SessionStoreUnavailableError):
        tokens.keep(JANE, SID, tokens.token_of_sign_in(SIGN_IN, CALLBACK))
    with pytest.raises(SessionStoreUnavailableError):
        tokens.current(JANE, SID, Refresher())
