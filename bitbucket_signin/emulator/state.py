"""What the emulator remembers: codes, tokens, rate counters and the request log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from .accounts import Account, Consumer, EmulatorConfig
from .errors import EXPIRED, RATE_LIMITED, UNAUTHENTICATED, ApiError, TokenEndpointError
from .faults import FaultRegistry

CODE_LIFETIME = 600
TOKEN_LIFETIME = 7200
REFRESH_LIFETIME = 90 * 24 * 3600
RATE_WINDOW = 3600
LOG_SIZE = 1000
STATE_KEY = "bitbucket_emulator"


@dataclass(frozen=True)
class AuthorizationCode:
    """A code issued at the authorize step, bound to what the token step must repeat."""

    consumer: str
    account: str
    redirect_uri: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float


@dataclass(frozen=True)
class Token:
    """An access or refresh token: who it acts for, through which consumer, until when."""

    consumer: str
    account: str
    scopes: tuple[str, ...]
    expires: float


class EmulatorState:
    """Codes, tokens, rate counters and the request log, guarded by one lock."""

    def __init__(self, config: EmulatorConfig, faults: FaultRegistry) -> None:
        self.config = config
        self.faults = faults
        self.lock = threading.Lock()
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.calls: dict[str, deque[float]] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.clock_offset = 0.0
        self.on_reset: list[Callable[[], None]] = []  # what else the reset forgets
        self.token_lifetime = TOKEN_LIFETIME

    def now(self) -> float:
        """The emulator's clock: wall time plus any offset set through /_emulator/clock."""
        return time.time() + self.clock_offset

    def reset(self) -> None:
        """Forget codes, tokens, rate counters, faults, the log and the clock offset."""
        with self.lock:
            for store in (self.codes, self.access_tokens, self.refresh_tokens, self.calls):
                store.clear()
            self.log.clear()
            self.clock_offset = 0.0
            self.token_lifetime = TOKEN_LIFETIME
        self.faults.clear()
        for forget in self.on_reset:
            forget()

    def issue_code(self, consumer: Consumer, account: Account, params: Mapping[str, str]) -> str:
        """A new single-use authorization code."""
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = AuthorizationCode(
                consumer=consumer.key,
                account=account.uuid,
                redirect_uri=params.get("redirect_uri"),
                code_challenge=params.get("code_challenge"),
                code_challenge_method=params.get("code_challenge_method"),
                expires=self.now() + CODE_LIFETIME,
            )
        return code

    def redeem_code(self, consumer: Consumer, form: Mapping[str, str]) -> dict[str, Any]:
        """Exchange an authorization code (used up by any attempt) for tokens."""
        with self.lock:
            code = self.codes.get(form.get("code", ""))
            if code is None or code.consumer != consumer.key:
                raise TokenEndpointError(400, "invalid_grant", "The authorization code is invalid")
            del self.codes[form["code"]]
            if code.expires <= self.now():
                raise TokenEndpointError(400, "invalid_grant", "The authorization code has expired")
            if code.redirect_uri is not None and form.get("redirect_uri") != code.redirect_uri:
                raise TokenEndpointError(400, "invalid_grant", "redirect_uri does not match")
            verifier = form.get("code_verifier")
            if (
                code.code_challenge
                and verifier is not None
                and not pkce_matches(code.code_challenge, code.code_challenge_method, verifier)
            ):
                raise TokenEndpointError(400, "invalid_grant", "code_verifier does not match")
            return self._issue_tokens(consumer, code.account, "authorization_code")

    def refresh(self, consumer: Consumer, form: Mapping[str, str]) -> dict[str, Any]:
        """Exchange a refresh token for new tokens; the old refresh token stops working."""
        with self.lock:
            old = self.refresh_tokens.get(form.get("refresh_token", ""))
            if old is None or old.consumer != consumer.key or old.expires <= self.now():
                raise TokenEndpointError(400, "invalid_grant", "Invalid refresh_token")
            del self.refresh_tokens[form["refresh_token"]]
            return self._issue_tokens(consumer, old.account, "refresh_token")

    def revoke(self, account: str) -> int:
        """Drop every token of ``account`` (as when the person takes an app's access back);
        how many there were."""
        with self.lock:
            dropped = 0
            for store in (self.access_tokens, self.refresh_tokens):
                for value in [v for v, token in store.items() if token.account == account]:
                    del store[value]
                    dropped += 1
            return dropped

    def _issue_tokens(self, consumer: Consumer, account: str, grant_type: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.now()
        self.access_tokens[access] = Token(
            consumer.key, account, consumer.scopes, now + self.token_lifetime
        )
        self.refresh_tokens[refresh] = Token(
            consumer.key, account, consumer.scopes, now + REFRESH_LIFETIME
        )
        return {
            "access_token": access,
            consumer.token_scope_field: " ".join(consumer.scopes),
            "expires_in": self.token_lifetime,
            "token_type": "bearer",
            "state": grant_type,
            "refresh_token": refresh,
        }

    def authenticate(self, access_token: str) -> Token:
        """The token's record, counting the call against its consumer's hourly rate limit."""
        with self.lock:
            token = self.access_tokens.get(access_token)
            if token is None:
                raise ApiError(401, UNAUTHENTICATED)
            now = self.now()
            if token.expires <= now:
                raise ApiError(401, EXPIRED)
            calls = self.calls.setdefault(token.consumer, deque())
            while calls and calls[0] <= now - RATE_WINDOW:
                calls.popleft()
            if len(calls) >= self.config.consumers[token.consumer].rate_limit:
                raise ApiError(429, RATE_LIMITED)
            calls.append(now)
            return token

    def record(self, entry: dict[str, Any]) -> None:
        """Append to the bounded request log."""
        with self.lock:
            self.log.append(entry)

    def clear_log(self) -> None:
        """Empty the request log."""
        with self.lock:
            self.log.clear()

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The logged requests, oldest first, optionally of one endpoint only."""
        with self.lock:
            return [e for e in self.log if endpoint is None or e["endpoint"] == endpoint]


def emulator_state(app: Flask | None = None) -> EmulatorState:
    """The state of ``app`` (default: the current app)."""
    state: EmulatorState = (app or current_app).extensions[STATE_KEY]
    return state


def pkce_matches(challenge: str | None, method: str | None, verifier: str) -> bool:
    """Whether ``verifier`` answers the PKCE ``challenge`` made with ``method``."""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    elif method in (None, "plain"):
        expected = verifier
    else:
        return False
    return hmac.compare_digest(expected.encode(), (challenge or "").encode())
