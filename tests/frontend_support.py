"""What a Backstage frontend does, over real HTTP: start a popup or redirect sign-in, read the
popup page's message the way its script would, and call ``/refresh`` and ``/logout``."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any
from urllib.parse import unquote, urlencode

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bitbucket_signin.identity_token import TOKEN_TYPE

from .support import grant_at_emulator

APP_ORIGIN = "http://localhost:3000"  # the Backstage app: another origin than the auth backend
OTHER_APP_ORIGIN = "https://portal.example.com"
AUTH = "/api/auth"  # the auth base path: the issuer and its published keys
PREFIX = f"{AUTH}/bitbucket"
XHR = {"X-Requested-With": "XMLHttpRequest"}
FRONTEND = {"BITBUCKET_ALLOWED_ORIGINS": [APP_ORIGIN, OTHER_APP_ORIGIN]}
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_ENCODED = re.compile(r"decodeURIComponent\('([^']*)'\)")


def start_params(flow: str = "popup", **extra: str) -> dict[str, str]:
    """Backstage's ``/start`` query, in its order (``env`` last)."""
    params = {"scope": "account", "origin": APP_ORIGIN, "flow": flow}
    params.update(extra)
    params.setdefault("env", "development")
    return params


def start(http: requests.Session, app_url: str, **params: str) -> requests.Response:
    return http.get(
        f"{app_url}{PREFIX}/start?{urlencode(params)}", allow_redirects=False, timeout=10
    )


def frontend_sign_in(
    http: requests.Session,
    app_url: str,
    emulator_url: str,
    account: str,
    flow: str = "popup",
    **extra: str,
) -> requests.Response:
    """Start as the frontend does, grant at the emulator, and come back: the callback's answer."""
    started = start(http, app_url, **start_params(flow, **extra))
    assert started.status_code == 302, started.text
    callback = grant_at_emulator(emulator_url, started.headers["Location"], account)
    return http.get(callback, allow_redirects=False, timeout=30)


def popup_script(page: requests.Response) -> str:
    """The popup page's one script, checked against the hash its CSP allows."""
    scripts = _SCRIPT.findall(page.text)
    assert len(scripts) == 1, page.text
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page.headers["Content-Security-Policy"]
    return str(scripts[0])


def popup_messages(page: requests.Response) -> tuple[str, dict[str, Any]]:
    """(the origin the script posts to, the message), decoded as the script decodes them."""
    origin, message = (unquote(value) for value in _ENCODED.findall(popup_script(page)))
    return origin, json.loads(message)


def refresh(
    http: requests.Session, app_url: str, method: str = "GET", origin: str | None = APP_ORIGIN
) -> requests.Response:
    """Backstage's ``/refresh?optional&scope=account&env=development`` with credentials."""
    headers = {**XHR, **({"Origin": origin} if origin else {})}
    return http.request(
        method,
        f"{app_url}{PREFIX}/refresh?optional&scope=account&env=development",
        headers=headers,
        timeout=10,
    )


def published_keys(app_url: str) -> dict[str, Any]:
    discovery = requests.get(f"{app_url}{AUTH}/.well-known/openid-configuration", timeout=10)
    assert discovery.status_code == 200
    body = discovery.json()
    assert body["issuer"] == f"{app_url}{AUTH}"
    assert body["jwks_uri"] == f"{app_url}{AUTH}/.well-known/jwks.json"
    jwks: dict[str, Any] = requests.get(body["jwks_uri"], timeout=10).json()
    return jwks


def verify(token: str, jwks: dict[str, Any], *, issuer: str, now: float) -> jwt.Token:
    """What a Backstage backend checks: the signature by ``kid``, ``typ``, and the claims."""
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])  # type: ignore[arg-type]
    if decoded.header.get("typ") != TOKEN_TYPE:
        raise JoseError(f"not a Backstage user token: typ {decoded.header.get('typ')!r}")
    jwt.JWTClaimsRegistry(
        now=int(now),
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": "backstage"},
        sub={"essential": True},
        iat={"essential": True},
        exp={"essential": True},
    ).validate(decoded.claims)
    return decoded
