"""When two names for a person are the same: one comparison key per email, domain, username.

Two values are the same identity exactly when their keys are equal. The keys fold ASCII
letter case and nothing else: ``str.lower``/``str.casefold`` map the sharp s, the long s, the
Kelvin sign and the ff/fi/fl/ffi/ffl/st ligatures onto ASCII letters, which would let one
address or name stand for another. A domain is keyed by its IDNA 2008 A-label (strict: no
UTS 46 mapping of full-width letters or ``ß``); a value that has no key matches nothing.
"""

from __future__ import annotations

import functools
import string

import idna

__all__ = ["ascii_lower", "domain_key", "email_key", "email_key_parts", "username_key"]

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def ascii_lower(text: str) -> str:
    """``text`` with ``A``-``Z`` lower-cased and every other character left as it is."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def username_key(username: str) -> str:
    """How Bitbucket usernames compare: ASCII letters in any case, anything else exactly."""
    return ascii_lower(username)


@functools.lru_cache(maxsize=65536)  # an organisation's people share a few domains
def domain_key(domain: str) -> str | None:
    """The domain's IDNA 2008 A-label (``straße.example`` → ``xn--strae-oqa.example``).

    ``None`` when ``idna`` refuses it: full-width letters, ligatures, the Kelvin sign, a
    character outside IDNA 2008, an empty or over-long label, an address literal, …
    """
    try:
        return idna.encode(ascii_lower(domain)).decode("ascii")
    except UnicodeError:  # idna.IDNAError and every subclass
        return None


def email_key_parts(address: str) -> tuple[str, str] | None:
    """The key's local part (ASCII letters lower-cased) and domain; ``None`` without a key."""
    local, at, domain = address.rpartition("@")
    key = domain_key(domain) if at and local else None
    return None if key is None else (ascii_lower(local), key)


def email_key(address: str) -> str | None:
    """``Omar.Haddad@Example.COM`` → ``omar.haddad@example.com``; ``None`` when it has none."""
    parts = email_key_parts(address)
    return None if parts is None else "@".join(parts)
