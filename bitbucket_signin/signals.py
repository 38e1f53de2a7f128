"""Blinker signals, sent with the Flask app as sender (like Flask's own), and the one
vocabulary of outcomes and reasons that their receivers (the metrics, the audit log) share."""

from __future__ import annotations

from blinker import Namespace

from .errors import SignInError

_signals = Namespace()

#: A person signed in: ``user`` (a ``CatalogUser``) and ``flow``.
signed_in = _signals.signal("bitbucket-signed-in")
#: A person signed out: ``user``.
signed_out = _signals.signal("bitbucket-signed-out")
#: A sign-in was refused or failed: ``error`` (a ``SignInError``), ``profile`` (the
#: ``BitbucketProfile``, or ``None`` when it failed before Bitbucket said who it is) and ``flow``.
sign_in_failed = _signals.signal("bitbucket-sign-in-failed")
#: A sign-in start or callback was refused by the rate limit: ``address``.
sign_in_rate_limited = _signals.signal("bitbucket-sign-in-rate-limited")

# The flows of a sign-in: a Backstage frontend's popup or redirect, else the server-rendered
# sign-in (the sign-in page, then back to ``next``).
SERVER_FLOW = "server"
SUCCESS = "success"
REFUSED = "refused"  # the visitor, the catalog or the settings said no (4xx)
FAILED = "failed"  # Bitbucket or this site failed (5xx)
RATE_LIMITED_REASON = "RateLimited"


def outcome_of(error: SignInError) -> tuple[str, str]:
    """The outcome (``refused`` or ``failed``) and the reason of a sign-in that ``error`` ended."""
    return (FAILED if error.status >= 500 else REFUSED), error.reason
