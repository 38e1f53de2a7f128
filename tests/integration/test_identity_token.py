"""The identity token, verified the way another service would: with the published JWKS alone
(joserfc), fetched over real HTTP; from every instance that shares the secret."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, JoseError
from joserfc.jwk import ECKey

from bitbucket_signin.errors import ConfigError
from bitbucket_signin.identity_token import TOKEN_TYPE
from bitbucket_signin.standalone import create_app

from ..frontend_support import (
    AUTH,
    FRONTEND,
    frontend_sign_in,
    popup_messages,
    published_keys,
    refresh,
    verify,
)
from ..support import JANE, FakeClock, serve

pytestmark = pytest.mark.rate_limit("1000 per minute")


def sign_in_for_token(http: requests.Session, app_url: str, emulator_url: str) -> str:
    _, message = popup_messages(frontend_sign_in(http, app_url, emulator_url, JANE))
    token: str = message["response"]["backstageIdentity"]["token"]
    return token


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def now() -> FakeClock:
    return FakeClock(time.time())


def test_the_token_verifies_with_the_published_keys_alone(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: Any, now: FakeClock
) -> None:
    with serve(make_app(BITBUCKET_CLOCK=now, **FRONTEND)) as url:
        token = sign_in_for_token(http, url, bitbucket.url)
        jwks = published_keys(url)
        assert all(set(key) >= {"kty", "crv", "x", "y", "kid", "alg"} for key in jwks["keys"])
        assert not any("d" in key for key in jwks["keys"])  # public keys only
        decoded = verify(token, jwks, issuer=f"{url}{AUTH}", now=now())
        assert decoded.header == {"alg": "ES256", "typ": TOKEN_TYPE, "kid": jwks["keys"][0]["kid"]}
        claims = decoded.claims
        assert claims["sub"] == "user:default/jdoe"
        assert claims["aud"] == "backstage"
        assert claims["iat"] == int(now())
        assert claims["exp"] == claims["iat"] + 3600
        assert claims["ent"] == [
            "group:default/payments",
            "group:default/platform",
            "user:default/jdoe",
        ]
        # /refresh hands out a fresh token that verifies the same way.
        now.advance(60)
        later = refresh(http, url).json()["backstageIdentity"]["token"]
        assert verify(later, jwks, issuer=f"{url}{AUTH}", now=now()).claims["iat"] == int(now())


def test_every_instance_sharing_the_secret_signs_alike(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: Any, now: FakeClock
) -> None:
    """Two instances (as two workers or hosts) with one SECRET_KEY and no key file publish
    one JWKS, and a token from either verifies with the keys fetched from the other."""
    first, second = (make_app(BITBUCKET_CLOCK=now, **FRONTEND) for _ in range(2))
    with serve(first) as one, serve(second) as two:
        jwks_one, jwks_two = published_keys(one), published_keys(two)
        assert jwks_one == jwks_two
        token_one = sign_in_for_token(http, one, bitbucket.url)
        with requests.Session() as other_browser:
            token_two = sign_in_for_token(other_browser, two, bitbucket.url)
        verify(token_one, jwks_two, issuer=f"{one}{AUTH}", now=now())
        verify(token_two, jwks_one, issuer=f"{two}{AUTH}", now=now())
    other_secret = make_app(SECRET_KEY="another-secret-key-of-enough-length-0123456789")
    with serve(other_secret) as three:
        assert published_keys(three) != jwks_one


def test_tampered_expired_and_wrong_typ_tokens_are_refused(
    make_app: Callable[..., Flask],
    http: requests.Session,
    bitbucket: Any,
    now: FakeClock,
    tmp_path: Path,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    app = make_app(BITBUCKET_CLOCK=now, BITBUCKET_SIGNING_KEY=str(key_file), **FRONTEND)
    with serve(app) as url:
        issuer = f"{url}{AUTH}"
        token = sign_in_for_token(http, url, bitbucket.url)
        jwks = published_keys(url)
        assert jwks["keys"][0]["kid"] == ECKey.import_key(key).thumbprint()
        verify(token, jwks, issuer=issuer, now=now())

        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        forged = _segment({**claims, "sub": "user:default/boss"})
        with pytest.raises(BadSignatureError):
            verify(f"{header}.{forged}.{signature}", jwks, issuer=issuer, now=now())

        with pytest.raises(ExpiredTokenError):
            verify(token, jwks, issuer=issuer, now=now() + 3601)
        now.advance(3601)  # the app's clock too: its next token is fresh again
        fresh = refresh(http, url).json()["backstageIdentity"]["token"]
        verify(fresh, jwks, issuer=issuer, now=now())

        # Signed with the very key, but not a Backstage user token: a verifier refuses it.
        signing = ECKey.import_key(key, {"kid": jwks["keys"][0]["kid"]})
        plain = jwt.encode({"alg": "ES256", "kid": signing.kid}, claims, signing)
        with pytest.raises(JoseError, match="typ"):
            verify(plain, jwks, issuer=issuer, now=claims["iat"])


def test_previous_public_keys_stay_published(
    make_app: Callable[..., Flask], tmp_path: Path, now: FakeClock
) -> None:
    """After a rotation a token the old key signed still verifies with the JWKS."""
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "new.pem").write_bytes(
        new.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "old.pub.pem").write_bytes(
        old.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    app = make_app(
        BITBUCKET_SIGNING_KEY=str(tmp_path / "new.pem"),
        # the current key and the old one listed twice are still published once each
        BITBUCKET_PREVIOUS_PUBLIC_KEYS=[
            str(tmp_path / "new.pem"),
            str(tmp_path / "old.pub.pem"),
            str(tmp_path / "old.pub.pem"),
        ],
    )
    with serve(app) as url:
        jwks = published_keys(url)
        kids = [entry["kid"] for entry in jwks["keys"]]
        assert kids == [ECKey.import_key(new).thumbprint(), ECKey.import_key(old).thumbprint()]
        old_key = ECKey.import_key(old, {"kid": kids[1]})
        claims = {
            "iss": f"{url}{AUTH}",
            "sub": "user:default/jdoe",
            "aud": "backstage",
            "iat": int(now()),
            "exp": int(now()) + 600,
        }
        header = {"alg": "ES256", "typ": TOKEN_TYPE, "kid": old_key.kid}
        verify(jwt.encode(header, claims, old_key), jwks, issuer=f"{url}{AUTH}", now=now())


@pytest.mark.parametrize(
    ("setting", "lifetime"), [(100, 600), ("2h", 7200), ({"days": 3}, 86400), (None, 3600)]
)
def test_lifetime_is_a_setting_clamped_like_backstages(
    make_app: Callable[..., Flask],
    http: requests.Session,
    bitbucket: Any,
    now: FakeClock,
    setting: Any,
    lifetime: int,
) -> None:
    extra = {} if setting is None else {"BITBUCKET_TOKEN_EXPIRATION": setting}
    with serve(make_app(BITBUCKET_CLOCK=now, **FRONTEND, **extra)) as url:
        _, message = popup_messages(frontend_sign_in(http, url, bitbucket.url, JANE))
        identity = message["response"]["backstageIdentity"]
        assert identity["expiresInSeconds"] == lifetime
        claims = verify(identity["token"], published_keys(url), issuer=f"{url}{AUTH}", now=now())
        assert claims.claims["exp"] - claims.claims["iat"] == lifetime


def test_the_ownership_claim_can_be_left_out(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: Any, now: FakeClock
) -> None:
    app = make_app(BITBUCKET_CLOCK=now, BITBUCKET_TOKEN_OWNERSHIP_CLAIM="false", **FRONTEND)
    with serve(app) as url:
        token = sign_in_for_token(http, url, bitbucket.url)
        claims = verify(token, published_keys(url), issuer=f"{url}{AUTH}", now=now()).claims
        assert "ent" not in claims
        assert claims["sub"] == "user:default/jdoe"


def test_the_issuer_follows_the_configured_callback_url(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        BITBUCKET_CALLBACK_URL="https://portal.example.com/backstage/api/auth/bitbucket/handler/frame"
    )
    body = app.test_client().get(f"{AUTH}/.well-known/openid-configuration").get_json()
    assert body["issuer"] == "https://portal.example.com/backstage/api/auth"
    assert body["jwks_uri"] == "https://portal.example.com/backstage/api/auth/.well-known/jwks.json"


def _pem_files(folder: Path) -> dict[str, Path]:
    """Files that are not an EC P-256 private key in PEM."""
    files = {
        "junk": b"not a key at all\n",
        "rsa": rsa.generate_private_key(65537, 2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "p384": ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "public-only": ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "encrypted": ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        ),
    }
    for name, data in files.items():
        (folder / f"{name}.pem").write_bytes(data)
    return {name: folder / f"{name}.pem" for name in files}


@pytest.mark.parametrize("kind", ["junk", "rsa", "p384", "public-only", "encrypted", "missing"])
def test_a_bad_key_file_stops_start_up_in_one_line(
    app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    path = _pem_files(tmp_path).get(kind, tmp_path / "missing.pem")
    monkeypatch.setenv("FLASK_BITBUCKET_SIGNING_KEY", str(path))  # as a deployment sets it
    with pytest.raises(ConfigError) as raised:
        create_app(app_config)
    message = str(raised.value)
    assert message.startswith("BITBUCKET_SIGNING_KEY: ")
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["junk", "rsa", "p384", "missing"])
def test_a_bad_previous_key_stops_start_up_in_one_line(
    make_app: Callable[..., Flask], tmp_path: Path, kind: str
) -> None:
    path = _pem_files(tmp_path).get(kind, tmp_path / "missing.pem")
    with pytest.raises(ConfigError) as raised:
        make_app(BITBUCKET_PREVIOUS_PUBLIC_KEYS=[str(path)])
    assert str(raised.value).startswith("BITBUCKET_PREVIOUS_PUBLIC_KEYS: ")
    assert "\n" not in str(raised.value)
