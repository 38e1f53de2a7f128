"""Where a person may be sent after signing in: same-origin paths, or a page of an app
origin the configuration allows (Backstage's ``origin`` and ``redirectUrl``)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote, urlsplit

MAX_NEXT_LENGTH = 2048
_DECODE_ROUNDS = 4
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|[0-9a-f:.]+")


def is_safe_next(value: object) -> bool:
    """Whether ``value`` is a same-origin path such as ``/dash?x=1``.

    Strict on purpose: the value itself must be printable ASCII (browsers percent-encode
    the rest) with one leading slash and no backslash; and no round of percent-decoding
    may turn its path into something a browser would read as another host.
    """
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NEXT_LENGTH:
        return False
    if not value.isascii() or not value.isprintable() or " " in value or "\\" in value:
        return False
    candidate = value
    for _ in range(_DECODE_ROUNDS):
        if not _is_local_path(candidate):
            return False
        try:
            decoded = unquote(candidate, errors="strict")
        except UnicodeDecodeError:
            return False
        if decoded == candidate:
            return True
        candidate = decoded
    return False


def safe_next(value: object, default: str = "/") -> str:
    """``value`` when it is a safe same-origin path, else ``default``."""
    return value if isinstance(value, str) and is_safe_next(value) else default


def origin(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL, lower-cased."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def url_origin(value: object) -> str | None:
    """The origin of an absolute ``http(s)`` URL as a browser writes it (``scheme://host``,
    ``:port`` unless the default, lower-cased), or ``None`` for anything a browser might read
    another way: no host, user info (``https://allowed@evil``), backslashes, spaces, control
    or non-ASCII characters."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NEXT_LENGTH:
        return None
    if not value.isascii() or not value.isprintable() or " " in value or "\\" in value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    if not value[len(parts.scheme) :].startswith("://"):
        return None
    host = parts.hostname.lower()
    if not _HOST.fullmatch(host):  # as browsers write it: ASCII (IDNA) names or IP addresses
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, _DEFAULT_PORTS[scheme]) else "")


def bare_origin(value: object) -> str | None:
    """``value`` normalised when it is an origin alone (no path, query or fragment; a
    trailing ``/`` is tolerated), else ``None``."""
    found = url_origin(value)
    if found is None or not isinstance(value, str):
        return None
    rest = urlsplit(value)
    return found if rest.path in ("", "/") and not rest.query and not rest.fragment else None


def _is_local_path(url: str) -> bool:
    path = url.split("?", 1)[0].split("#", 1)[0]
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return False
    normalized = unicodedata.normalize("NFKC", path)
    if not normalized.startswith("/") or normalized.startswith(("//", "/\\")):
        return False
    if "\\" in normalized:
        return False
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc
