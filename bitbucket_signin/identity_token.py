"""Backstage's identity token: an ES256 JWT that other services verify with the published keys.

The signing key is an EC P-256 private key in PEM (``BITBUCKET_SIGNING_KEY``); the public
keys of earlier signing keys stay published (``BITBUCKET_PREVIOUS_PUBLIC_KEYS``) so that
tokens signed before a rotation verify until they expire.

Without a key file (the demo), the key is derived from ``SECRET_KEY`` with HKDF-SHA256, so
every worker and host that shares ``SECRET_KEY`` signs with the same key and publishes the
same JWKS without coordinating. That is safe enough for one deployment: whoever knows
``SECRET_KEY`` can already forge its sessions, HKDF's ``info`` separates this use from
Flask's session signing, and the public key reveals nothing of the secret (it is a discrete
logarithm away). What it lacks is rotation: changing ``SECRET_KEY`` changes the key and drops
the old one from the JWKS at once, so tokens issued before fail verification (frontends get a
new one at their next refresh). Production should use a key file and rotate it as the README
says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import ECKey

from .errors import ConfigError

TOKEN_TYPE = "vnd.backstage.user"  # noqa: S105 - the JWT typ, not a secret
AUDIENCE = "backstage"
ALGORITHM = "ES256"
_CURVE = ec.SECP256R1()
# The order of P-256's group: a private key is a number in [1, order - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_DERIVATION_INFO = b"bitbucket-signin identity token signing key (ES256) v1"


@dataclass(frozen=True)
class SigningKeys:
    """The key that signs identity tokens, and every public key that is published."""

    current: ECKey
    previous: tuple[ECKey, ...] = ()

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set: public keys only, the current one first."""
        return {"keys": [_public_jwk(key) for key in (self.current, *self.previous)]}

    def issue(
        self,
        *,
        issuer: str,
        subject: str,
        ownership: Sequence[str] | None,
        issued_at: int,
        lifetime: int,
    ) -> str:
        """A signed identity token for ``subject`` (a user entity ref), valid ``lifetime``
        seconds from ``issued_at``; ``ownership`` becomes the ``ent`` claim unless ``None``."""
        claims: dict[str, Any] = {
            "iss": issuer,
            "sub": subject,
            "aud": AUDIENCE,
            "iat": issued_at,
            "exp": issued_at + lifetime,
        }
        if ownership is not None:
            claims["ent"] = list(ownership)
        header = {"alg": ALGORITHM, "typ": TOKEN_TYPE, "kid": self.current.kid}
        return jwt.encode(header, claims, self.current, algorithms=[ALGORITHM])


def load_signing_keys(
    key_file: Path | None, previous_files: Sequence[Path], secret_key: bytes
) -> SigningKeys:
    """The configured keys; without a key file, the one derived from ``secret_key``.

    A file that is not what it should be stops start-up with one line naming the setting.
    """
    if key_file is None:
        current = derived_private_key(secret_key)
    else:
        current = _private_key(key_file, "BITBUCKET_SIGNING_KEY")
    signing = _with_kid(current)
    published = {signing.kid: signing}
    for path in previous_files:  # each key once: a key listed twice, or the current one, is one
        key = _with_kid(_public_key(path, "BITBUCKET_PREVIOUS_PUBLIC_KEYS"))
        published.setdefault(key.kid, key)
    return SigningKeys(signing, tuple(published.values())[1:])


def derived_private_key(secret_key: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 private key every process sharing ``secret_key`` derives alike."""
    material = HKDF(algorithm=hashes.SHA256(), length=48, salt=None, info=_DERIVATION_INFO)
    # 48 bytes reduced modulo the group order: the bias is below 2**-128.
    scalar = int.from_bytes(material.derive(secret_key), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, _CURVE)


def _private_key(path: Path, setting: str) -> ec.EllipticCurvePrivateKey:
    data = _read(path, setting)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != _CURVE.name:
        raise ConfigError(
            f"{setting}: {path} is not an unencrypted EC P-256 private key in PEM "
            "(make one with: openssl ecparam -name prime256v1 -genkey -noout)"
        )
    return key


def _public_key(path: Path, setting: str) -> ec.EllipticCurvePublicKey:
    """A PEM public key, or the public half of a PEM private key."""
    data = _read(path, setting)
    key: Any
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != _CURVE.name:
        raise ConfigError(f"{setting}: {path} is not an EC P-256 public key in PEM")
    return key


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{setting}: cannot read {path}: {error.strerror}") from None


def _with_kid(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> ECKey:
    """The key for joserfc, its ``kid`` the RFC 7638 thumbprint (alike on every host)."""
    imported = ECKey.import_key(key)
    return ECKey.import_key(key, {"kid": imported.thumbprint(), "alg": ALGORITHM, "use": "sig"})


def _public_jwk(key: ECKey) -> dict[str, Any]:
    return {**key.as_dict(private=False), "kid": key.kid, "alg": ALGORITHM, "use": "sig"}
