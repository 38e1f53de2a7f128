"""Settings: Flask config keys, an optional Backstage ``app-config.yaml``, and their defaults.

Every misconfiguration raises :class:`ConfigError` with one line naming the setting, so a
broken deployment stops at start-up rather than at the first click.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from limits import parse_many

from .errors import ConfigError
from .identity_keys import ascii_lower

PREFIX = "BITBUCKET_"

DEFAULTS: dict[str, Any] = {
    "SIGNIN_RESOLVERS": ["userIdMatchingUserEntityAnnotation"],
    "AUTHORIZE_URL": "https://bitbucket.org/site/oauth2/authorize",
    "TOKEN_URL": "https://bitbucket.org/site/oauth2/access_token",
    "API_BASE_URL": "https://api.bitbucket.org/2.0",
    "CALLBACK_URL": None,
    "APP_CONFIG": None,
    "SCOPES": [],
    "SESSION_DURATION": None,
    "SESSION_IDLE_TIMEOUT": "8h",
    "SESSION_REDIS_URL": None,
    "CLOCK": None,
    "TIMEOUT": 10.0,
    "CALLBACK_TIMEOUT": None,  # twice TIMEOUT: the token call, then the profile calls
    "MAX_RESPONSE_BYTES": 1024 * 1024,
    "MAX_CONCURRENT_SIGN_INS": 32,
    "FETCH_EMAILS": "auto",
    "ALLOWED_WORKSPACES": [],
    "CATALOG_CHECK_INTERVAL": 1.0,
    "CATALOG_MAX_BYTES": 256 * 1024 * 1024,
    "URL_PREFIX": "/api/auth/bitbucket",
    "SIGNIN_URL": "/signin",
    "PRODUCT_NAME": "Sign in",
    "LOGO_URL": None,
    "BRAND_COLOR": "#0c66e4",
    "SECURITY_HEADERS": True,
    "HEALTH_PATH": "/healthz",
    "METRICS_PATH": None,
    # Bitbucket allows a consumer about 1,000 API calls an hour and a sign-in makes 1 to 3:
    # one address may not make enough sign-ins in an hour to spend it for everyone.
    "RATE_LIMIT": "30 per minute; 100 per hour",
    "RATE_LIMIT_STORAGE_URL": None,  # the session Redis when there is one, else memory://
    "HSTS": "max-age=31536000; includeSubDomains",
}

MIN_SECRET_KEY_BYTES = 32
MIN_SECRET_KEY_DISTINCT = 8
# Keys copied from examples and tutorials, compared lower-cased without separators: refused
# whole or repeated ("changemechangeme…"), and the long ones also as a key's beginning.
PLACEHOLDER_SECRET_KEYS = frozenset(
    {
        "changeme",
        "changethis",
        "replaceme",
        "yoursecretkey",
        "yoursecret",
        "secretkey",
        "mysecretkey",
        "supersecret",
        "supersecretkey",
        "secret",
        "dev",
        "development",
        "test",
        "testing",
        "default",
        "example",
        "placeholder",
        "insecure",
        "djangoinsecure",
        "notasecret",
        "password",
        "flask",
        "todo",
        "xxx",
        "abc123",
        "123456",
        "qwerty",
    }
)
_PLACEHOLDER_PREFIX_MIN = 8
LOOPBACK_NAMES = frozenset({"localhost"})
RATE_LIMIT_STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix")
_TRUE_TEXT = frozenset({"1", "true", "yes", "on"})
_FALSE_TEXT = frozenset({"0", "false", "no", "off"})
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$")
_DURATION_UNITS = {
    "ms": "milliseconds",
    "millisecond": "milliseconds",
    "milliseconds": "milliseconds",
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "seconds": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "week": "weeks",
    "weeks": "weeks",
}


@dataclass(frozen=True)
class Settings:
    """The extension's configuration, validated."""

    client_id: str
    client_secret: str = field(repr=False)
    catalog_path: Path
    resolvers: tuple[Any, ...]
    authorize_url: str
    token_url: str
    api_base_url: str
    callback_url: str | None
    scopes: tuple[str, ...]
    session_duration: timedelta | None
    session_idle_timeout: timedelta
    session_redis_url: str | None
    clock: Callable[[], float] | None
    timeout: float
    callback_timeout: float
    max_response_bytes: int
    max_concurrent_sign_ins: int
    fetch_emails: bool | None
    allowed_workspaces: frozenset[str]
    catalog_check_interval: float
    catalog_max_bytes: int
    url_prefix: str
    signin_url: str
    product_name: str
    logo_url: str | None
    brand_color: str
    security_headers: bool
    health_path: str | None
    metrics_path: str | None
    rate_limit: str | None
    rate_limit_storage_url: str = field(repr=False)  # may hold a Redis password
    hsts: str | None


def load_settings(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Validate a Flask config mapping (and the app-config file it may name)."""
    environ = os.environ if environ is None else environ
    _check_secret_key(config)
    values = {key: config.get(PREFIX + key, default) for key, default in DEFAULTS.items()}
    values["CLIENT_ID"] = config.get(PREFIX + "CLIENT_ID")
    values["CLIENT_SECRET"] = config.get(PREFIX + "CLIENT_SECRET")
    values["CATALOG"] = config.get(PREFIX + "CATALOG")
    names = {key: PREFIX + key for key in values}
    if values["APP_CONFIG"]:
        for key, value in read_app_config(values["APP_CONFIG"], environ).items():
            if config.get(PREFIX + key) in (None, "", []):
                values[key] = value
                names[key] = f"{PREFIX}{key} (from {PREFIX}APP_CONFIG)"

    return Settings(
        client_id=_required_text(values, "CLIENT_ID"),
        client_secret=_required_text(values, "CLIENT_SECRET"),
        catalog_path=_catalog_path(values),
        resolvers=tuple(_resolver_list(values["SIGNIN_RESOLVERS"])),
        authorize_url=_url(values, "AUTHORIZE_URL", names),
        token_url=_url(values, "TOKEN_URL", names),
        api_base_url=_url(values, "API_BASE_URL", names).rstrip("/"),
        callback_url=_url(values, "CALLBACK_URL", names) if values["CALLBACK_URL"] else None,
        scopes=tuple(_text_list(values["SCOPES"], "SCOPES", separators=r"[\s,|]+")),
        session_duration=parse_duration(values["SESSION_DURATION"], PREFIX + "SESSION_DURATION"),
        session_idle_timeout=_required_duration(values, "SESSION_IDLE_TIMEOUT"),
        session_redis_url=_redis_url(values, "SESSION_REDIS_URL"),
        clock=_clock(values["CLOCK"]),
        timeout=_positive_number(values, "TIMEOUT"),
        callback_timeout=_callback_timeout(values),
        max_response_bytes=_positive_int(values, "MAX_RESPONSE_BYTES"),
        max_concurrent_sign_ins=_positive_int(values, "MAX_CONCURRENT_SIGN_INS"),
        fetch_emails=_flag_or_auto(values, "FETCH_EMAILS"),
        allowed_workspaces=frozenset(
            ascii_lower(slug)
            for slug in _text_list(values["ALLOWED_WORKSPACES"], "ALLOWED_WORKSPACES")
        ),
        catalog_check_interval=_positive_number(values, "CATALOG_CHECK_INTERVAL"),
        catalog_max_bytes=_byte_count(values, "CATALOG_MAX_BYTES"),
        url_prefix=_path(values, "URL_PREFIX"),
        signin_url=_path(values, "SIGNIN_URL"),
        product_name=str(values["PRODUCT_NAME"]),
        logo_url=str(values["LOGO_URL"]) if values["LOGO_URL"] else None,
        brand_color=_brand_color(values),
        security_headers=_flag(values["SECURITY_HEADERS"]),
        health_path=_optional_path(values, "HEALTH_PATH"),
        metrics_path=_optional_path(values, "METRICS_PATH"),
        rate_limit=_rate_limit(values["RATE_LIMIT"]),
        rate_limit_storage_url=_rate_limit_storage_url(
            values["RATE_LIMIT_STORAGE_URL"] or _limiter_url(values["SESSION_REDIS_URL"])
        ),
        hsts=_hsts(values["HSTS"]),
    )


def read_app_config(path: str | os.PathLike[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """The Bitbucket provider block of a Backstage ``app-config.yaml``, as our setting names."""
    key = PREFIX + "APP_CONFIG"
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{key}: cannot read {path}: {_first_line(error)}") from None
    document = _substitute_env(document, environ, key)
    auth = _mapping(document, "auth", f"{key}: {path}")
    environment = auth.get("environment", "development")
    providers = _mapping(auth, "providers", f"{key}: {path}: auth")
    bitbucket = _mapping(providers, "bitbucket", f"{key}: {path}: auth.providers")
    block = _mapping(bitbucket, environment, f"{key}: {path}: auth.providers.bitbucket")
    names = {
        "clientId": "CLIENT_ID",
        "clientSecret": "CLIENT_SECRET",
        "callbackUrl": "CALLBACK_URL",
        "additionalScopes": "SCOPES",
        "sessionDuration": "SESSION_DURATION",
    }
    settings = {ours: block[theirs] for theirs, ours in names.items() if theirs in block}
    sign_in = block.get("signIn")
    if isinstance(sign_in, Mapping) and "resolvers" in sign_in:
        settings["SIGNIN_RESOLVERS"] = sign_in["resolvers"]
    return settings


def parse_duration(value: Any, key: str) -> timedelta | None:
    """A Backstage duration: seconds, ``"24h"``, ``"2 days"`` or ``{hours: 24, minutes: 30}``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        duration = timedelta(seconds=value)
    elif isinstance(value, str) and value.strip().isdigit():
        duration = timedelta(seconds=int(value))
    elif isinstance(value, str):
        duration = _duration_from_mapping(_duration_text(value, key), key)
    elif isinstance(value, Mapping):
        duration = _duration_from_mapping(value, key)
    else:
        raise ConfigError(f"{key}: expected a duration, got {value!r}")
    if duration <= timedelta(0):
        raise ConfigError(f"{key}: the duration must be positive")
    return duration


def _duration_text(text: str, key: str) -> dict[str, float]:
    if text.strip().startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise ConfigError(f"{key}: cannot read duration {text!r}") from None
        if isinstance(parsed, dict):
            return parsed
    match = _DURATION_TEXT.match(text)
    if not match or match.group(2).lower() not in _DURATION_UNITS:
        raise ConfigError(f"{key}: cannot read duration {text!r} (try '24h' or '{{hours: 24}}')")
    return {_DURATION_UNITS[match.group(2).lower()]: float(match.group(1))}


def _duration_from_mapping(parts: Mapping[str, Any], key: str) -> timedelta:
    arguments: dict[str, float] = {}
    for unit, amount in parts.items():
        name = _DURATION_UNITS.get(str(unit).lower())
        if name is None or isinstance(amount, bool) or not isinstance(amount, int | float):
            raise ConfigError(f"{key}: cannot read duration part {unit!r}: {amount!r}")
        arguments[name] = arguments.get(name, 0) + amount
    return timedelta(**arguments)


def _check_secret_key(config: Mapping[str, Any]) -> None:
    """A key anyone could guess signs sessions anyone could forge; only tests may be short."""
    secret = config.get("SECRET_KEY")
    if not secret:
        raise ConfigError("SECRET_KEY is not set: sessions cannot be signed without it")
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    advice = f"use at least {MIN_SECRET_KEY_BYTES} random bytes"
    if len(key) < MIN_SECRET_KEY_BYTES and not config.get("TESTING"):
        raise ConfigError(f"SECRET_KEY is too short ({len(key)} bytes): {advice}")
    if len(set(key)) < MIN_SECRET_KEY_DISTINCT:
        raise ConfigError(
            f"SECRET_KEY has fewer than {MIN_SECRET_KEY_DISTINCT} different characters: {advice}"
        )
    if _is_placeholder(key):
        raise ConfigError(f"SECRET_KEY is a well-known placeholder, not a secret: {advice}")


def _is_placeholder(key: bytes) -> bool:
    """Whether ``key`` is a known placeholder: whole, repeated, or (long ones) as its start."""
    text = re.sub(rb"[^a-z0-9]", b"", key.lower()).decode("ascii")
    if not text:
        return False
    for placeholder in PLACEHOLDER_SECRET_KEYS:
        repeated = placeholder * (len(text) // len(placeholder) + 1)
        if repeated.startswith(text) and len(text) >= len(placeholder):
            return True
        if len(placeholder) >= _PLACEHOLDER_PREFIX_MIN and text.startswith(placeholder):
            return True
    return False


def _substitute_env(node: Any, environ: Mapping[str, str], key: str) -> Any:
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise ConfigError(f"{key}: environment variable {name} is not set")
            return environ[name]

        return _ENV_REFERENCE.sub(replace, node)
    if isinstance(node, list):
        return [_substitute_env(item, environ, key) for item in node]
    if isinstance(node, dict):
        return {name: _substitute_env(value, environ, key) for name, value in node.items()}
    return node


def _mapping(parent: Any, name: str, where: str) -> Mapping[str, Any]:
    child = parent.get(name) if isinstance(parent, Mapping) else None
    if not isinstance(child, Mapping):
        raise ConfigError(f"{where}: no {name!r} section")
    return child


def _required_text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{PREFIX}{name} is not set")
    return value.strip()


def _catalog_path(values: Mapping[str, Any]) -> Path:
    path = Path(_required_text(values, "CATALOG"))
    if not path.is_file():
        raise ConfigError(f"{PREFIX}CATALOG: {path} is not a readable file")
    return path


def _url(values: Mapping[str, Any], name: str, names: Mapping[str, str]) -> str:
    """An absolute URL: ``https://``, or ``http://`` to this machine only (demo and tests)."""
    value = _required_text(values, name)
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{names[name]}: {value!r} is not an absolute http(s) URL")
    if value.startswith("http://") and not is_loopback(urlsplit(value).hostname):
        raise ConfigError(
            f"{names[name]}: {value!r} is plain http to another machine: use https "
            "(http is only for localhost, 127.0.0.0/8 and ::1)"
        )
    return value


def is_loopback(host: str | None) -> bool:
    """Whether a URL's host is this machine: ``localhost``, 127.0.0.0/8 or ``::1``."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _hsts(value: Any) -> str | None:
    """The ``Strict-Transport-Security`` value, or ``None`` when switched off."""
    if value is True:
        return str(DEFAULTS["HSTS"])
    if not _flag(value):
        return None
    text = str(value).strip()
    directives = [part.strip().lower() for part in text.split(";") if part.strip()]
    if not any(re.fullmatch(r"max-age=\d+", directive) for directive in directives):
        raise ConfigError(
            f"{PREFIX}HSTS: {text!r} needs max-age=<seconds> (or false to switch it off)"
        )
    return text


def _path(values: Mapping[str, Any], name: str) -> str:
    value = _required_text(values, name)
    if not value.startswith("/"):
        raise ConfigError(f"{PREFIX}{name}: {value!r} must start with '/'")
    return value.rstrip("/") or "/"


def _required_duration(values: Mapping[str, Any], name: str) -> timedelta:
    duration = parse_duration(values[name], PREFIX + name)
    if duration is None:
        raise ConfigError(f"{PREFIX}{name} is not set")
    return duration


def _redis_url(values: Mapping[str, Any], name: str) -> str | None:
    value = values[name]
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not re.match(r"^(rediss?|unix)://", value.strip()):
        raise ConfigError(f"{PREFIX}{name}: expected a redis://, rediss:// or unix:// URL")
    return value.strip()


def _optional_path(values: Mapping[str, Any], name: str) -> str | None:
    return _path(values, name) if _flag(values[name]) else None


def _positive_number(values: Mapping[str, Any], name: str) -> float:
    try:
        number = float(values[name])
    except (TypeError, ValueError):
        number = 0.0
    if not number > 0:
        raise ConfigError(f"{PREFIX}{name}: expected a positive number, got {values[name]!r}")
    return number


def _clock(value: Any) -> Callable[[], float] | None:
    if value is None or callable(value):
        clock: Callable[[], float] | None = value
        return clock
    raise ConfigError(f"{PREFIX}CLOCK: expected a function returning seconds, got {value!r}")


def _positive_int(values: Mapping[str, Any], name: str) -> int:
    value = values[name]
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch("[0-9]+", text) or int(text) < 1:
        raise ConfigError(f"{PREFIX}{name}: expected a positive whole number, got {value!r}")
    return int(text)


def _callback_timeout(values: Mapping[str, Any]) -> float:
    """The callback's deadline for all its Bitbucket calls; by default two calls' worth."""
    if values["CALLBACK_TIMEOUT"] in (None, ""):
        return 2 * _positive_number(values, "TIMEOUT")
    return _positive_number(values, "CALLBACK_TIMEOUT")


def _flag_or_auto(values: Mapping[str, Any], name: str) -> bool | None:
    """``True``, ``False``, or ``None`` for "auto" (decided by the rest of the settings)."""
    value = values[name]
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"auto", ""}:
        return None
    if text in _TRUE_TEXT or text in _FALSE_TEXT:
        return text in _TRUE_TEXT
    raise ConfigError(f"{PREFIX}{name}: expected true, false or auto, got {value!r}")


def _byte_count(values: Mapping[str, Any], name: str) -> int:
    value = values[name]
    text = str(value).strip() if isinstance(value, int | str) and value is not True else ""
    if not text.isdigit() or int(text) == 0:
        raise ConfigError(f"{PREFIX}{name}: expected a positive number of bytes, got {value!r}")
    return int(text)


def _brand_color(values: Mapping[str, Any]) -> str:
    color = str(values["BRAND_COLOR"])
    if not _COLOR.match(color):
        raise ConfigError(f"{PREFIX}BRAND_COLOR: {color!r} is not a #rgb or #rrggbb colour")
    return color


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in {"0", "false", "no", "off", ""}
    return bool(value)


def _rate_limit(value: Any) -> str | None:
    """Flask-Limiter's notation (``30 per minute``, ``10/minute; 100/hour``), or None for off."""
    if not _flag(value):
        return None
    try:
        items = parse_many(value.strip()) if isinstance(value, str) else []
    except ValueError:
        items = []
    if not items or any(item.amount < 1 for item in items):
        raise ConfigError(
            f"{PREFIX}RATE_LIMIT: cannot read {value!r} as a rate limit "
            "(try '30 per minute', '10/minute; 100/hour', or 'off')"
        )
    return str(value).strip()


def _limiter_url(session_redis_url: Any) -> str:
    """The rate-limit storage that goes with the session store (``limits`` spells unix sockets
    ``redis+unix://``)."""
    if not session_redis_url:
        return "memory://"
    url = str(session_redis_url).strip()
    return "redis+" + url if url.startswith("unix://") else url


def _rate_limit_storage_url(value: Any) -> str:
    """``memory://`` or a Redis URL; the error never repeats the URL (it may hold a password)."""
    scheme = value.partition("://")[0] if isinstance(value, str) and "://" in value else None
    if scheme not in RATE_LIMIT_STORAGE_SCHEMES:
        raise ConfigError(
            f"{PREFIX}RATE_LIMIT_STORAGE_URL: expected memory:// or a Redis URL "
            f"({', '.join(f'{name}://' for name in RATE_LIMIT_STORAGE_SCHEMES[1:])})"
        )
    return str(value)


def _text_list(value: Any, name: str, separators: str = r"\s*,\s*") -> list[str]:
    """A list given as a list, JSON text or separated text (environment variables)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ConfigError(f"{PREFIX}{name}: cannot read {text!r} as a JSON list") from None
        else:
            return [part for part in re.split(separators, text) if part]
    if not isinstance(value, Sequence) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{PREFIX}{name}: expected a list of strings, got {value!r}")
    return list(value)


def _resolver_list(value: Any) -> list[Any]:
    """Resolver specs: names, ``{resolver: name, ...}`` mappings or callables; from the
    environment, a JSON list (of names or mappings) or comma-separated names."""
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{PREFIX}SIGNIN_RESOLVERS: cannot read {value!r} as JSON") from None
    if isinstance(value, str):
        return _text_list(value, "SIGNIN_RESOLVERS")
    if callable(value) or isinstance(value, Mapping):
        return [value]
    if not isinstance(value, Sequence) or not value:
        raise ConfigError(f"{PREFIX}SIGNIN_RESOLVERS: expected a list of resolvers, got {value!r}")
    return list(value)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
