"""The session cookie fits in the 4 KB a browser keeps, whatever sequence of visits made it:
a cookie past that is dropped by the browser, and the sign-in it carried fails."""

from __future__ import annotations

import random
import string
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.redirects import is_safe_next
from bitbucket_signin.views import MAX_KEPT_NEXT_LENGTH, MAX_PENDING_SIGN_INS, PENDING_STATE_PREFIX

from ..support import (
    JANE,
    grant_at_emulator,
    home_page,
    session_contents,
    sign_in,
    signed_session,
    start_sign_in,
)

# Many sign-ins from 127.0.0.1 in a minute: more than the default rate limit allows.
pytestmark = pytest.mark.rate_limit("1000 per minute")

BROWSER_LIMIT = 4096  # bytes of one Set-Cookie line that every major browser keeps
# The worst case seen here, signed in as Jane, must leave room for a longer Bitbucket profile
# (a 100-character name, a 254-character email, a long avatar URL) and a longer callback URL.
HEADROOM = 700
LONG_NEXT = 2040
# What the cookie holds is signed, not encrypted, and compressed: random text is the worst.
NEXT_CHARACTERS = [c for c in string.printable if c.isprintable() and c not in " \\%"]


def hostile_next(rng: random.Random, length: int) -> str:
    """A same-origin path of ``length`` characters that compresses as little as possible."""
    while True:
        value = "/" + "".join(rng.choice(NEXT_CHARACTERS) for _ in range(length - 1))
        if is_safe_next(value):
            return value


def session_cookie_size(response: requests.Response) -> int:
    """The length of the response's ``session`` Set-Cookie line (0 when it sets none)."""
    lines = [h for h in response.raw.headers.getlist("Set-Cookie") if h.startswith("session=")]
    return max(map(len, lines), default=0)


class Visitor:
    """One browser: starts sign-ins, comes back from Bitbucket; notes the largest cookie."""

    def __init__(self, http: requests.Session, live_app: str, emulator_url: str) -> None:
        self.http = http
        self.live_app = live_app
        self.emulator_url = emulator_url
        self.pending: list[tuple[str, str]] = []  # (authorize URL, next), oldest first
        self.largest = 0

    def start(self, next_path: str) -> None:
        response = self.http.get(
            f"{self.live_app}/api/auth/bitbucket/start",
            params={"next": next_path},
            allow_redirects=False,
        )
        assert response.status_code == 302
        self.largest = max(self.largest, session_cookie_size(response))
        self.pending = [*self.pending, (response.headers["Location"], next_path)]
        self.pending = self.pending[-MAX_PENDING_SIGN_INS:]

    def come_back(self, index: int) -> None:
        """Grant the ``index``-th pending sign-in: it lands on its ``next`` or on ``/``."""
        authorize_url, next_path = self.pending.pop(index)
        callback = grant_at_emulator(self.emulator_url, authorize_url, JANE)
        response = self.http.get(callback, allow_redirects=False)
        self.largest = max(self.largest, session_cookie_size(response))
        assert response.status_code == 302, response.text
        kept = next_path if len(next_path) <= MAX_KEPT_NEXT_LENGTH else "/"
        assert unquote(response.headers["Location"]) == kept  # Location is percent-encoded
        self.pending = []  # a sign-in starts a fresh session: other pending ones are gone

    def look(self) -> None:
        """A signed-in page (it adds the logout form's CSRF token to the session)."""
        response = home_page(self.http, self.live_app)
        self.largest = max(self.largest, session_cookie_size(response))


def test_worst_case_cookie_fits_and_the_sign_in_still_works(
    http: requests.Session, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Signed in (profile and CSRF token in the cookie), then many starts with 2,040-character
    ``next`` values and with the longest ``next`` kept: every cookie fits, and the newest
    sign-in completes, landing on its ``next``."""
    rng = random.Random(12)
    visitor = Visitor(http, live_app, bitbucket.url)
    assert sign_in(http, live_app, bitbucket.url, JANE).status_code == 302
    visitor.look()
    for length in [LONG_NEXT] * 6 + [MAX_KEPT_NEXT_LENGTH] * 3:
        visitor.start(hostile_next(rng, length))
    visitor.come_back(-1)
    visitor.look()
    assert visitor.largest + HEADROOM < BROWSER_LIMIT, visitor.largest


def test_many_sequences_of_visits_keep_the_cookie_small(
    live_app: str, bitbucket: EmulatorServer
) -> None:
    """Forty random interleavings of starts (short, longest kept, too long), callbacks of old
    and new pending sign-ins and signed-in pages: no Set-Cookie ever reaches 4 KB."""
    rng = random.Random(2040)
    lengths = [1, 40, MAX_KEPT_NEXT_LENGTH, MAX_KEPT_NEXT_LENGTH + 1, LONG_NEXT]
    largest = 0
    for _ in range(40):
        with requests.Session() as http:
            visitor = Visitor(http, live_app, bitbucket.url)
            for _ in range(8):
                action = rng.random()
                if action < 0.6 or not visitor.pending:
                    visitor.start(hostile_next(rng, rng.choice(lengths)))
                elif action < 0.85:
                    visitor.come_back(rng.randrange(len(visitor.pending)))
                else:
                    visitor.look()
            largest = max(largest, visitor.largest)
    assert largest + HEADROOM < BROWSER_LIMIT, largest


def test_only_the_newest_few_sign_ins_stay_pending(
    http: requests.Session, app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Ten starts keep the newest three; the older ones are refused as stale, a kept one works."""
    authorize_urls = [start_sign_in(http, live_app, f"/page/{i}") for i in range(10)]
    kept = [
        key
        for key in session_contents(app, http.cookies.get("session"))
        if key.startswith(PENDING_STATE_PREFIX)
    ]
    assert len(kept) == MAX_PENDING_SIGN_INS
    stale = http.get(
        grant_at_emulator(bitbucket.url, authorize_urls[0], JANE), allow_redirects=False
    )
    assert stale.status_code == 400
    fresh = http.get(
        grant_at_emulator(bitbucket.url, authorize_urls[-2], JANE), allow_redirects=False
    )
    assert fresh.status_code == 302
    assert fresh.headers["Location"] == "/page/8"


def test_a_pending_next_expires_with_its_state(
    http: requests.Session, app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """A sign-in whose state has expired is dropped, with its ``next``, at the next start,
    and its callback is refused as stale."""
    old = start_sign_in(http, live_app, "/old/" + "x" * 400)
    old_key = PENDING_STATE_PREFIX + parse_qs(urlsplit(old).query)["state"][0]
    contents = session_contents(app, http.cookies.get("session"))
    contents[old_key]["exp"] = 1.0  # as if an hour had passed (Authlib's lifetime of a state)
    http.cookies.set("session", signed_session(app, contents), domain="127.0.0.1")

    callback = grant_at_emulator(bitbucket.url, old, JANE)
    assert http.get(callback, allow_redirects=False).status_code == 400
    http.cookies.set("session", signed_session(app, contents), domain="127.0.0.1")
    start_sign_in(http, live_app, "/new")
    after = session_contents(app, http.cookies.get("session"))
    assert old_key not in after
    assert "/old/" not in str(after)
