"""The OAuth 2.0 endpoints: the consent page and the token endpoint."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from .accounts import Consumer
from .api import avatar_url
from .endpoints import endpoint
from .errors import MISCONFIGURED, PageError, TokenEndpointError
from .state import emulator_state

SCOPE_DESCRIPTIONS = {
    "account": "Read your account information",
    "email": "Read your email addresses",
    "repository": "Read your repositories",
    "team": "Read your workspace membership",
}
CONTROL_PARAMS = ("account", "action")
SHOWN_URI_LENGTH = 300  # of a refused redirect_uri, on the error page
oauth = Blueprint("oauth", __name__)


def check_authorize(params: Mapping[str, str]) -> Consumer:
    consumer = emulator_state().config.consumers.get(params.get("client_id", ""))
    if consumer is None:
        raise PageError(400, "Invalid client_id", MISCONFIGURED)
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is not None and not redirect_uri.startswith(consumer.callback_url):
        raise PageError(
            400,
            "Invalid redirect_uri",
            f"{MISCONFIGURED} The redirect_uri {json.dumps(redirect_uri[:SHOWN_URI_LENGTH])} "
            "does not begin with the consumer's callback URL "
            f"{json.dumps(consumer.callback_url)}: they must agree in scheme, host and port.",
        )
    if params.get("response_type") != "code":
        raise PageError(400, "Unsupported response_type", MISCONFIGURED)
    return consumer


def with_query(url: str, params: Mapping[str, str | None]) -> str:
    """``url`` with ``params`` (those not ``None``) added to its query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _back_to_client(
    consumer: Consumer, params: Mapping[str, str], **extra: str
) -> ResponseReturnValue:
    target = params.get("redirect_uri") or consumer.callback_url
    return redirect(with_query(target, {**extra, "state": params.get("state")}), 302)


def grant(consumer: Consumer, who: str, params: Mapping[str, str]) -> ResponseReturnValue:
    state = emulator_state()
    account = state.config.find_account(who)
    if account is None:
        raise PageError(400, "Unknown account", f"There is no account {who!r}.")
    return _back_to_client(consumer, params, code=state.issue_code(consumer, account, params))


@oauth.get("/site/oauth2/authorize")
@endpoint("authorize")
def authorize_page() -> ResponseReturnValue:
    """The consent page: one form per account plus Deny."""
    consumer = check_authorize(request.args)
    return render_template(
        "emulator/authorize.html",
        consumer=consumer,
        scopes=[(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in consumer.scopes],
        accounts=emulator_state().config.accounts,
        params=[(k, v) for k, v in request.args.items(multi=True) if k not in CONTROL_PARAMS],
        action=url_for("oauth.authorize_decision"),
        avatar_url=avatar_url,
    )


@oauth.post("/site/oauth2/authorize")
@endpoint("authorize")
def authorize_decision() -> ResponseReturnValue:
    """A button of the consent page: ``action=grant`` with ``account``, or ``action=deny``."""
    consumer = check_authorize(request.form)
    if request.form.get("action") == "deny":
        return _back_to_client(
            consumer,
            request.form,
            error="access_denied",
            error_description="The user denied access to their account.",
        )
    return grant(consumer, request.form.get("account", ""), request.form)


def client_credentials() -> tuple[str | None, str | None, str | None]:
    """How the request authenticates its client (``"basic"``, ``"body"`` or ``None``), and the
    client's key and secret: HTTP Basic first, else the form's ``client_id``/``client_secret``."""
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return "basic", auth.username, auth.password
    form = request.form
    return (
        ("body" if "client_secret" in form else None),
        form.get("client_id"),
        form.get("client_secret"),
    )


def _client() -> Consumer:
    _, key, secret = client_credentials()
    consumer = emulator_state().config.consumers.get(key or "")
    if consumer is None or not hmac.compare_digest(
        consumer.secret.encode(), (secret or "").encode()
    ):
        raise TokenEndpointError(
            401,
            "unauthorized_client",
            "Requests must be authenticated using OAuth client credentials",
        )
    return consumer


@oauth.post("/site/oauth2/access_token")
@endpoint("token")
def access_token() -> ResponseReturnValue:
    """The token endpoint: ``authorization_code`` and ``refresh_token`` grants."""
    consumer, state = _client(), emulator_state()
    return token_response(
        lambda: state.redeem_code(consumer, request.form),
        lambda: state.refresh(consumer, request.form),
        unsupported="invalid_grant",
    )


def token_response(
    redeem: Callable[[], dict[str, Any]], refresh: Callable[[], dict[str, Any]], unsupported: str
) -> Response:
    """The token endpoint's answer to the form's ``grant_type``; ``unsupported`` is the error
    code for any other grant type."""
    grant_type = request.form.get("grant_type")
    if grant_type == "authorization_code":
        body = redeem()
    elif grant_type == "refresh_token":
        body = refresh()
    else:
        raise TokenEndpointError(400, unsupported, f"Unsupported grant type: {grant_type}")
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
