"""The 2.0 API: the user, their emails and workspaces, avatars, and Bitbucket's errors."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import escape

from .accounts import Account, Consumer
from .endpoints import endpoint
from .errors import MISSING_SCOPES, UNAUTHENTICATED, ApiError
from .state import emulator_state

api = Blueprint("api", __name__)


def _caller(*scopes: str) -> tuple[Consumer, Account]:
    """The consumer and account of the Bearer token; any of ``scopes`` is required."""
    if "access_token" in request.args or "access_token" in request.form:
        raise ApiError(401, UNAUTHENTICATED)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, UNAUTHENTICATED)
    state = emulator_state()
    token = state.authenticate(value.strip())
    if not set(scopes) & set(token.scopes):
        raise ApiError(403, MISSING_SCOPES)
    account = state.config.find_account(token.account)
    if account is None:
        raise ApiError(401, UNAUTHENTICATED)
    return state.config.consumers[token.consumer], account


def _int_arg(name: str, default: int, maximum: int | None = None) -> int:
    value = request.args.get(name, type=int)
    if value is None or value < 1:
        return default
    return min(value, maximum) if maximum else value


def _page_url(page: int) -> str:
    return f"{request.base_url}?{urlencode({**request.args.to_dict(), 'page': page})}"


def _paginate(values: list[dict[str, Any]]) -> Response:
    pagelen, page = _int_arg("pagelen", 10, 100), _int_arg("page", 1)
    start = (page - 1) * pagelen
    body: dict[str, Any] = {
        "pagelen": pagelen,
        "page": page,
        "size": len(values),
        "values": values[start : start + pagelen],
    }
    if start + pagelen < len(values):
        body["next"] = _page_url(page + 1)
    if page > 1:
        body["previous"] = _page_url(page - 1)
    return jsonify(body)


def avatar_url(account: Account) -> str:
    return account.avatar or url_for("api.avatar", account_id=account.account_id, _external=True)


@api.get("/2.0/user")
@endpoint("user")
def user() -> ResponseReturnValue:
    """The signed-in user."""
    _, account = _caller("account")
    body: dict[str, Any] = {"type": "user", "uuid": account.uuid, "account_id": account.account_id}
    if account.username:
        body["username"] = account.username
    body |= {
        "nickname": account.nickname,
        "display_name": account.display_name,
        "account_status": account.account_status,
        "is_staff": False,
        "has_2fa_enabled": None,
        "created_on": account.created_on,
        "links": {
            "html": {"href": f"{request.host_url}{quote(account.uuid)}/"},
            "avatar": {"href": avatar_url(account)},
        },
    }
    return jsonify(body)


@api.get("/2.0/user/emails")
@endpoint("emails")
def emails() -> ResponseReturnValue:
    """The user's addresses, confirmed or not (paginated)."""
    _, account = _caller("email", "account")
    return _paginate(
        [
            {
                "type": "email",
                "email": e.email,
                "is_primary": e.is_primary,
                "is_confirmed": e.is_confirmed,
            }
            for e in account.emails
        ]
    )


@api.get("/2.0/user/workspaces")
@endpoint("workspaces")
def workspaces() -> ResponseReturnValue:
    """The user's workspace memberships (paginated)."""
    consumer, account = _caller("account")
    if not consumer.workspace_membership:
        raise ApiError(403, MISSING_SCOPES, "This consumer lacks 'Workspace membership: Read'.")
    return _paginate(
        [
            {
                "type": "workspace_access",
                "administrator": w.administrator,
                "workspace": {"type": "workspace_base", "slug": w.slug, "uuid": w.uuid},
            }
            for w in account.workspaces
        ]
    )


@api.get("/2.0/workspaces")
@api.get("/2.0/user/permissions/workspaces")
def removed_workspace_endpoints() -> ResponseReturnValue:
    """The endpoints removed by CHANGE-2770."""
    raise ApiError(
        410,
        "CHANGE-2770 - Functionality has been deprecated",
        "This endpoint was removed; use GET /2.0/user/workspaces instead.",
    )


@api.route("/2.0/<path:rest>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
def api_not_found(rest: str) -> ResponseReturnValue:
    """Any other 2.0 path."""
    raise ApiError(404, "Resource not found", f"There is no API hosted at /2.0/{rest}.")


@api.get("/avatar/<account_id>.svg")
def avatar(account_id: str) -> ResponseReturnValue:
    """A generated avatar: the account's initials on a colour derived from its id."""
    account = next(
        (a for a in emulator_state().config.accounts if a.account_id == account_id), None
    )
    if account is None:
        return Response("Not found", 404, content_type="text/plain")
    return initials_avatar(account.display_name, account_id)


def initials_avatar(display_name: str, seed: str) -> Response:
    """An SVG avatar: the name's initials on a colour derived from ``seed``."""
    initials = "".join(word[0] for word in display_name.split()[:2]).upper()
    hue = int(hashlib.sha256(seed.encode()).hexdigest()[:4], 16) % 360
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">'
        f'<rect width="128" height="128" fill="hsl({hue},55%,42%)"/>'
        '<text x="64" y="64" dy=".35em" text-anchor="middle" font-family="sans-serif" '
        f'font-size="52" fill="#fff">{escape(initials)}</text></svg>'
    )
    return Response(svg, content_type="image/svg+xml")
