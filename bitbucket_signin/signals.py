"""Blinker signals, sent with the Flask app as sender (like Flask's own)."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A person signed in: ``user`` (a ``CatalogUser``).
signed_in = _signals.signal("bitbucket-signed-in")
#: A person signed out: ``user``.
signed_out = _signals.signal("bitbucket-signed-out")
#: A sign-in was refused or failed: ``error`` (a ``SignInError``).
sign_in_failed = _signals.signal("bitbucket-sign-in-failed")
#: A sign-in start or callback was refused by the rate limit: ``address``.
sign_in_rate_limited = _signals.signal("bitbucket-sign-in-rate-limited")
