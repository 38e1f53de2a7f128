"""The audit log: one JSON record per sign-in attempt on the ``bitbucket_signin.audit`` logger.

Each record says when, how it ended (the outcome and reason vocabulary of
:mod:`~bitbucket_signin.signals`, which the metrics use too), which Bitbucket account, which
resolver matched and as whom, from which address, under which request id, and in which flow.
It never holds a token, code, state, verifier or secret: it is built from the profile, the
identity and the error's reason alone, never from the request's query.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, request

from .errors import SignInError
from .profile import BitbucketProfile, Profile
from .signals import (
    RATE_LIMITED_REASON,
    REFUSED,
    SUCCESS,
    outcome_of,
    sign_in_failed,
    sign_in_rate_limited,
    signed_in,
)

AUDIT_LOGGER = "bitbucket_signin.audit"
REQUEST_ID_HEADER = "X-Request-ID"
# A request id from the proxy in front is kept when it looks like one; else a new one is made.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# What JSON leaves raw but a log viewer may break a line at: the C1 controls (NEL among them)
# and the line and paragraph separators. JSON escapes the C0 controls itself.
_LINE_BREAKERS = re.compile("[\x80-\x9f\u2028\u2029]")

logger = logging.getLogger(AUDIT_LOGGER)


def install_audit(app: Flask) -> None:
    """Write one record per sign-in attempt of ``app``: signed in, refused, failed or rate-limited.

    The logger's level becomes INFO unless someone set one, so that a handler the app
    configures (or the standalone app's standard error) receives the records.
    """
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)

    def success(sender: Flask, *, user: Any, flow: str, **extra: Any) -> None:
        identity = user.identity
        _write(SUCCESS, "", flow, user.profile, identity.resolver, identity.user_entity_ref)

    def failure(
        sender: Flask,
        *,
        error: SignInError,
        flow: str,
        profile: Profile | None = None,
        **extra: Any,
    ) -> None:
        outcome, reason = outcome_of(error)
        _write(outcome, reason, flow, profile)

    def rate_limited(sender: Flask, **extra: Any) -> None:
        _write(REFUSED, RATE_LIMITED_REASON, None, None)  # refused before its flow was read

    signed_in.connect(success, sender=app, weak=False)
    sign_in_failed.connect(failure, sender=app, weak=False)
    sign_in_rate_limited.connect(rate_limited, sender=app, weak=False)


def log_to_stderr() -> None:
    """Send the records to standard error, one JSON line each, unless logging is configured
    (the audit logger or one above it already has a handler): the standalone app's default."""
    if logger.hasHandlers():
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _write(
    outcome: str,
    reason: str,
    flow: str | None,
    profile: Profile | None,
    resolver: str | None = None,
    entity_ref: str | None = None,
) -> None:
    cloud = profile if isinstance(profile, BitbucketProfile) else None
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "outcome": outcome,
        "reason": reason,
        "provider": profile.provider if profile else None,
        "user_id": profile.user_id if profile else None,
        "uuid": cloud.uuid if cloud else None,
        "account_id": cloud.account_id if cloud else None,
        "resolver": resolver,
        "entity_ref": entity_ref,
        "client_address": request.remote_addr,
        "request_id": _request_id(),
        "flow": flow,
    }
    logger.info(_one_json_line(record), extra={"audit": record})


def _one_json_line(record: dict[str, Any]) -> str:
    """``record`` as JSON that every viewer shows on one line: non-ASCII text stays readable,
    but anything a viewer may break a line at is written as a ``\\uXXXX`` escape."""
    text = json.dumps(record, ensure_ascii=False)
    return _LINE_BREAKERS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _request_id() -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
