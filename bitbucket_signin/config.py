"""Settings: Flask config keys, an optional Backstage ``app-config.yaml``, and their defaults.

Every misconfiguration raises :class:`ConfigError` with one line naming the setting, so a
broken deployment stops at start-up rather than at the first click.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from limits import parse_many

from .errors import ConfigError, one_line
from .identity_keys import ascii_lower
from .redirects import bare_origin, url_origin

PREFIX = "BITBUCKET_"


@dataclass(frozen=True)
class Setting:
    """One ``BITBUCKET_`` config key: its name after the prefix, its default and what it does.

    ``default_doc`` says in words what a default worked out at start-up is; ``required``
    settings have no default. The docs' configuration reference is built from :data:`SETTINGS`.
    """

    name: str
    default: Any
    doc: str
    default_doc: str | None = None
    required: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "CLIENT_ID",
        None,
        "Bitbucket Cloud's OAuth consumer key: sets Cloud sign-in on.",
        default_doc="none: Cloud is off, and `BITBUCKET_SERVER_URL` must be set",
    ),
    Setting(
        "CLIENT_SECRET",
        None,
        "The OAuth consumer's secret.",
        default_doc="required with `BITBUCKET_CLIENT_ID`",
    ),
    Setting(
        "CATALOG",
        None,
        "The catalog file, YAML or JSON.",
        default_doc="the `catalog.locations` of `BITBUCKET_APP_CONFIG`; else required",
        required=True,
    ),
    Setting(
        "SIGNIN_RESOLVERS",
        ["userIdMatchingUserEntityAnnotation"],
        "Resolvers tried in order: names, `{resolver: name, …options}` mappings, or callables.",
    ),
    Setting(
        "AUTHORIZE_URL",
        "https://bitbucket.org/site/oauth2/authorize",
        "Bitbucket's authorize page (the emulator's, in tests and demos).",
    ),
    Setting(
        "TOKEN_URL",
        "https://bitbucket.org/site/oauth2/access_token",
        "Bitbucket's token endpoint.",
    ),
    Setting("API_BASE_URL", "https://api.bitbucket.org/2.0", "Bitbucket's API."),
    Setting(
        "CALLBACK_URL",
        None,
        "The absolute `redirect_uri`: its path must end in the callback route, "
        "`BITBUCKET_URL_PREFIX` + `/handler/frame` (after any prefix the app is mounted "
        "under), with no `#fragment`.",
        default_doc="derived from the request, only for a host in Flask's `TRUSTED_HOSTS` "
        "(when set, it alone decides), equal to `SERVER_NAME`, or on loopback",
    ),
    Setting("APP_CONFIG", None, "A Backstage `app-config.yaml` to read settings from."),
    Setting(
        "SCOPES",
        [],
        "Extra scopes to ask for (Bitbucket ignores them: scopes are fixed on the consumer).",
    ),
    Setting(
        "SESSION_DURATION",
        None,
        'The absolute sign-in lifetime: seconds, `"24h"`, `{hours: 24}`.',
        default_doc="until the browser session ends",
    ),
    Setting(
        "SESSION_IDLE_TIMEOUT",
        "8h",
        "A session unused this long ends (a duration, as for `BITBUCKET_SESSION_DURATION`).",
    ),
    Setting(
        "SESSION_REDIS_URL",
        None,
        "Keep sessions server-side in Redis (`redis://`, `rediss://`, `unix://`); needs the "
        "`redis` extra.",
        default_doc="a signed cookie",
    ),
    Setting(
        "KEEP_TOKENS",
        False,
        "Keep each sign-in's Bitbucket access and refresh tokens server-side, in the Redis of "
        'the sessions, for `current_user.bitbucket` (see "Call Bitbucket as the signed-in '
        'person"); needs `BITBUCKET_SESSION_REDIS_URL`.',
    ),
    Setting(
        "EXPOSE_ACCESS_TOKEN",
        False,
        "Also hand the access token to the browser, in `providerInfo.accessToken` of the "
        "`/refresh` JSON and the popup's message (what that gives up: see the same section); "
        "needs `BITBUCKET_KEEP_TOKENS`.",
    ),
    Setting(
        "CLOCK",
        None,
        "For tests: a function returning seconds since the epoch, used instead of the system "
        "clocks for session expiry and the catalog checks.",
        default_doc="the system clocks",
    ),
    Setting(
        "TIMEOUT",
        10.0,
        "Seconds for each whole call to Bitbucket (connecting, the headers and the entire "
        "body); at most a day.",
    ),
    Setting(
        "CALLBACK_TIMEOUT",
        None,
        "Seconds one sign-in may wait on Bitbucket in all (the token call, then the profile "
        "calls); at most a day.",
        default_doc="twice `BITBUCKET_TIMEOUT`",
    ),
    Setting(
        "MAX_RESPONSE_BYTES",
        1024 * 1024,
        "The longest answer read from Bitbucket, in bytes (beyond it: a 502 page).",
    ),
    Setting(
        "MAX_CONCURRENT_SIGN_INS",
        32,
        "Sign-ins that may wait on Bitbucket at once in one process; one more gets a 503 page "
        "at once.",
    ),
    Setting(
        "FETCH_EMAILS",
        "auto",
        "Ask Bitbucket for the email addresses: `auto` (when a resolver may read one), `true` "
        "or `false`.",
    ),
    Setting(
        "ALLOWED_WORKSPACES",
        [],
        "Only members of these workspace slugs may sign in.",
        default_doc="anyone the resolvers accept",
    ),
    Setting(
        "CATALOG_CHECK_INTERVAL",
        0.1,
        "Seconds between checks of the catalog files for changes (a stat per file: cheap).",
    ),
    Setting(
        "CATALOG_MAX_BYTES",
        256 * 1024 * 1024,
        "The largest catalog file that is read, in bytes (each file of a catalog); a larger "
        "one is refused.",
    ),
    Setting(
        "URL_PREFIX",
        "/api/auth/bitbucket",
        "Where the sign-in routes live: a plain path (no `<converter>`, no `//`). No two of "
        "the extension's routes on one path, none under `/_bitbucket_signin/` (its own "
        "files), and none on a route the app already has when `init_app` runs.",
    ),
    Setting("SIGNIN_URL", "/signin", "The sign-in page's path (rules as for the prefix)."),
    Setting(
        "PRODUCT_NAME",
        "Sign in",
        'Names the site in the header, the page title and "Sign in to …".',
    ),
    Setting(
        "LOGO_URL",
        None,
        "A logo beside the name and as the favicon: a path on this site (`/…`, not `//…`), "
        "an `https://` URL or a `data:image/` URL.",
    ),
    Setting("BRAND_COLOR", "#0c66e4", "The sign-in button's colour: `#rgb` or `#rrggbb`."),
    Setting(
        "SECURITY_HEADERS",
        True,
        "Add CSP, `X-Frame-Options`, `nosniff` and `Referrer-Policy` to every response (an "
        "app's own headers win).",
    ),
    Setting(
        "HEALTH_PATH",
        "/healthz",
        "The health check for load balancers; empty turns it off; not `/`.",
    ),
    Setting(
        "METRICS_PATH",
        None,
        "Serve Prometheus metrics here; needs the `metrics` extra; not `/`.",
        default_doc="off",
    ),
    # Bitbucket allows a consumer about 1,000 API calls an hour and a sign-in makes 1 to 3:
    # one address may not make enough sign-ins in an hour to spend it for everyone.
    Setting(
        "RATE_LIMIT",
        "30 per minute; 100 per hour",
        "Sign-in attempts allowed per client address, in Flask-Limiter's notation (`30 per "
        "minute`, `10/minute; 100/hour`), counted apart for starts and for callbacks; `off` "
        "or `false` switches it off, empty means the default, and anything else that is not "
        "a limit (`0`, `no`) stops start-up. The address is Flask's `request.remote_addr` "
        "(behind a proxy, apply ProxyFix); an IPv6 client is counted by its /64 network.",
    ),
    Setting(
        "RATE_LIMIT_STORAGE_URL",
        None,
        "Where the counts live: `memory://` (per process) or a Redis URL (`redis://`, "
        "`rediss://`, `redis+unix://`; the `redis` extra) that every worker and host shares.",
        default_doc="`BITBUCKET_SESSION_REDIS_URL` when set, else `memory://`",
    ),
    Setting(
        "HSTS",
        "max-age=31536000; includeSubDomains",
        "`Strict-Transport-Security` on every response served over https "
        "(`request.is_secure`: behind a proxy, with ProxyFix), never over http; `false` "
        "switches it off; needs `BITBUCKET_SECURITY_HEADERS`.",
    ),
    # The Backstage frontend protocol and the identity token.
    Setting(
        "ENVIRONMENT",
        "development",
        "Backstage's `auth.environment`: the `env` a frontend must send; with "
        "`BITBUCKET_APP_CONFIG` it also picks the provider block.",
    ),
    Setting(
        "APP_BASE_URL",
        None,
        "The Backstage app's `app.baseUrl`: its origin is allowed, and a failed redirect-flow "
        "sign-in returns there with `?error=`.",
    ),
    Setting(
        "ALLOWED_ORIGINS",
        [],
        "The Backstage app origins (`scheme://host[:port]`, exactly: no path, no `*` pattern; "
        "`https://`, or `http://` on loopback) that may sign in through the frontend "
        "protocol, read `/refresh` and sign out.",
        default_doc="none (with `BITBUCKET_APP_BASE_URL`, its origin)",
    ),
    Setting(
        "TOKEN_EXPIRATION",
        3600,
        "The identity token's lifetime (a duration, as for `BITBUCKET_SESSION_DURATION`), "
        "clamped to 600 to 86,400 s as Backstage does.",
    ),
    Setting(
        "TOKEN_OWNERSHIP_CLAIM",
        True,
        "Put the ownership refs into the token's `ent` claim; `false` leaves it out "
        "(Backstage's `omitIdentityTokenOwnershipClaim`).",
    ),
    Setting(
        "SIGNING_KEY",
        None,
        "Path of the EC P-256 private key (unencrypted PEM) that signs identity tokens; a "
        "file that is not one stops start-up.",
        default_doc='derived from `SECRET_KEY` (see "The identity token")',
    ),
    Setting(
        "PREVIOUS_PUBLIC_KEYS",
        [],
        "Paths of PEM public keys (or private keys: only the public half is used) of earlier "
        "signing keys, still published so that tokens they signed verify until they expire.",
    ),
    Setting(
        "SERVER_URL",
        None,
        "Bitbucket Data Center's base URL as browsers see it, with any context path "
        "(`https://git.example.com/bitbucket`): sets Data Center sign-in on.",
        default_doc="none: Data Center is off",
    ),
    Setting(
        "SERVER_API_URL",
        None,
        "Where this server reaches Data Center, when that differs from `BITBUCKET_SERVER_URL`.",
        default_doc="`BITBUCKET_SERVER_URL`",
    ),
    Setting(
        "SERVER_CLIENT_ID",
        None,
        "The Data Center application link's client id.",
        default_doc="required with `BITBUCKET_SERVER_URL`",
    ),
    Setting(
        "SERVER_CLIENT_SECRET",
        None,
        "The application link's client secret.",
        default_doc="required with `BITBUCKET_SERVER_URL`",
    ),
    Setting(
        "SERVER_CALLBACK_URL",
        None,
        "Data Center's `redirect_uri`: its path must end in `BITBUCKET_SERVER_URL_PREFIX` + "
        "`/handler/frame`.",
        default_doc="derived from the request, as for `BITBUCKET_CALLBACK_URL`",
    ),
    Setting(
        "SERVER_SIGNIN_RESOLVERS",
        ["userIdMatchingUserEntityAnnotation"],
        "Data Center's resolvers, tried in order (see the Data Center page).",
    ),
    Setting(
        "SERVER_SCOPES",
        [],
        "Data Center scopes to ask for: `PUBLIC_REPOS`, `REPO_READ`, `REPO_WRITE`, "
        "`REPO_ADMIN`, `PROJECT_ADMIN`, `ACCOUNT_WRITE`, `ADMIN_WRITE`, `SYSTEM_ADMIN` "
        "(anything else stops start-up); sign-in needs none.",
        default_doc="none: public repositories only",
    ),
    Setting(
        "SERVER_SESSION_DURATION",
        None,
        "The absolute lifetime of a Data Center sign-in (as `BITBUCKET_SESSION_DURATION`).",
        default_doc="until the browser session ends",
    ),
    Setting(
        "SERVER_NAME",
        None,
        "The Data Center button's label.",
        default_doc="the instance's host name",
    ),
    Setting(
        "SERVER_URL_PREFIX",
        "/api/auth/bitbucketServer",
        "Where Data Center's routes live (rules as for `BITBUCKET_URL_PREFIX`).",
    ),
)
DEFAULTS: dict[str, Any] = {item.name: item.default for item in SETTINGS if not item.required}

# Confirmed in peers' code, and (the last three) by analogy; no scope at all is public repos.
SERVER_SCOPES = frozenset(
    {
        "PUBLIC_REPOS",
        "REPO_READ",
        "REPO_WRITE",
        "REPO_ADMIN",
        "PROJECT_ADMIN",
        "ACCOUNT_WRITE",
        "ADMIN_WRITE",
        "SYSTEM_ADMIN",
    }
)
CLOUD_HOST = "bitbucket.org"
NO_PROVIDER = (
    f"Neither {PREFIX}CLIENT_ID (Bitbucket Cloud) nor {PREFIX}SERVER_URL "
    "(Bitbucket Data Center) is set: set one, or both"
)

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
RATE_LIMIT_OFF = frozenset({"off", "false"})  # and False; any other text must be a limit
RATE_LIMIT_STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix")
# Sockets and locks cannot wait much beyond 2**33 seconds; a day already bounds nothing.
MAX_TIMEOUT_SECONDS = 24 * 60 * 60
# Backstage clamps its identity token's lifetime (auth.backstageTokenExpiration) so.
MIN_TOKEN_EXPIRATION_SECONDS = 10 * 60
MAX_TOKEN_EXPIRATION_SECONDS = 24 * 60 * 60
CALLBACK_ROUTE = "/handler/frame"  # under BITBUCKET_URL_PREFIX
OWN_FILES_PATH = "/_bitbucket_signin"  # the extension's stylesheet and static files
# Each route of the extension: the setting that places it (None: fixed), and what it serves.
ROUTE_OWNERS: dict[str, tuple[str | None, str]] = {
    "theme": (None, "the extension's stylesheet"),
    "static": (None, "the extension's static files"),
    "start": ("URL_PREFIX", "the sign-in start"),
    "callback": ("URL_PREFIX", "the callback"),
    "refresh": ("URL_PREFIX", "the profile refresh"),
    "logout": ("URL_PREFIX", "sign-out"),
    "logout_everywhere": ("URL_PREFIX", "sign-out everywhere"),
    "server_start": ("SERVER_URL_PREFIX", "the Data Center sign-in start"),
    "server_callback": ("SERVER_URL_PREFIX", "the Data Center callback"),
    "server_refresh": ("SERVER_URL_PREFIX", "the Data Center profile refresh"),
    "server_logout": ("SERVER_URL_PREFIX", "the Data Center sign-out"),
    "jwks": ("URL_PREFIX", "the identity token's public keys (one level above it)"),
    "openid_configuration": ("URL_PREFIX", "the issuer's discovery document (one level above it)"),
    "signin": ("SIGNIN_URL", "the sign-in page"),
    "health": ("HEALTH_PATH", "the health check"),
    "metrics": ("METRICS_PATH", "the metrics"),
}
_TRUE_TEXT = frozenset({"1", "true", "yes", "on"})
_FALSE_TEXT = frozenset({"0", "false", "no", "off"})
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_ROUTE_PATH = re.compile(r"^(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+/?$|^/$")  # no <converter>
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
class ServerSettings:
    """Bitbucket Data Center's settings (``BITBUCKET_SERVER_…``), validated.

    ``url`` is the instance as browsers see it, with any context path; ``api_url`` where
    this server reaches it (the same unless ``BITBUCKET_SERVER_API_URL`` says otherwise).
    """

    url: str
    api_url: str
    client_id: str
    client_secret: str = field(repr=False)
    callback_url: str | None
    resolvers: tuple[Any, ...]
    scopes: tuple[str, ...]
    session_duration: timedelta | None
    name: str
    url_prefix: str

    @property
    def authorize_url(self) -> str:
        return self.url + "/rest/oauth2/latest/authorize"

    @property
    def token_url(self) -> str:
        return self.api_url + "/rest/oauth2/latest/token"

    @property
    def host(self) -> str:
        """The instance's host name, lower case, without a port: its annotations' prefix."""
        return instance_host(self.url)


def instance_host(url: str) -> str:
    """The host name of a Data Center base URL, lower case, without a port or path: the
    prefix of the instance's annotations (``""`` for a URL without one)."""
    return ascii_lower(urlsplit(url).hostname or "")


@dataclass(frozen=True)
class Settings:
    """The extension's configuration, validated. Bitbucket Cloud is on when ``client_id`` is
    set, Data Center when ``server`` is; at least one of the two is."""

    client_id: str | None
    client_secret: str | None = field(repr=False)
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
    keep_tokens: bool
    expose_access_token: bool
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
    environment: str
    app_base_url: str | None
    allowed_origins: frozenset[str]  # app.baseUrl's origin and the extra allowed origins
    token_expiration: int  # seconds
    token_ownership_claim: bool
    signing_key: Path | None
    previous_public_keys: tuple[Path, ...]
    server: ServerSettings | None = None


def load_settings(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Validate a Flask config mapping (and the app-config file it may name)."""
    environ = os.environ if environ is None else environ
    _check_secret_key(config)
    values = {item.name: config.get(PREFIX + item.name, item.default) for item in SETTINGS}
    names = {key: PREFIX + key for key in values}
    if values["APP_CONFIG"]:
        chosen = config.get(PREFIX + "ENVIRONMENT") or None
        for key, value in read_app_config(values["APP_CONFIG"], environ, chosen).items():
            if config.get(PREFIX + key) in (None, "", []):
                values[key] = value
                names[key] = f"{PREFIX}{key} (from {PREFIX}APP_CONFIG)"

    cloud = _is_set(values["CLIENT_ID"])
    if not cloud and not _is_set(values["SERVER_URL"]):
        raise ConfigError(NO_PROVIDER)
    if not _is_set(values["SERVER_URL"]):
        for key in (
            "SERVER_CLIENT_ID",
            "SERVER_CLIENT_SECRET",
            "SERVER_API_URL",
            "SERVER_CALLBACK_URL",
        ):
            if _is_set(values[key]):
                raise ConfigError(
                    f"{names[key]} is set, but {PREFIX}SERVER_URL is not: set it to sign in "
                    "with Bitbucket Data Center"
                )
    url_prefix = _path(values, "URL_PREFIX")
    app_base_url = _url(values, "APP_BASE_URL", names) if values["APP_BASE_URL"] else None
    settings = Settings(
        client_id=_required_text(values, "CLIENT_ID") if cloud else None,
        client_secret=_required_text(values, "CLIENT_SECRET") if cloud else None,
        catalog_path=_catalog_path(values),
        resolvers=tuple(_resolver_list(values["SIGNIN_RESOLVERS"])),
        authorize_url=_url(values, "AUTHORIZE_URL", names),
        token_url=_url(values, "TOKEN_URL", names),
        api_base_url=_url(values, "API_BASE_URL", names).rstrip("/"),
        callback_url=_callback_url(values, names, url_prefix, "CALLBACK_URL"),
        scopes=tuple(_text_list(values["SCOPES"], "SCOPES", separators=r"[\s,|]+")),
        session_duration=parse_duration(values["SESSION_DURATION"], PREFIX + "SESSION_DURATION"),
        session_idle_timeout=_required_duration(values, "SESSION_IDLE_TIMEOUT"),
        session_redis_url=_redis_url(values, "SESSION_REDIS_URL"),
        keep_tokens=_strict_flag(values, "KEEP_TOKENS"),
        expose_access_token=_strict_flag(values, "EXPOSE_ACCESS_TOKEN"),
        clock=_clock(values["CLOCK"]),
        timeout=_positive_number(values, "TIMEOUT", at_most=MAX_TIMEOUT_SECONDS),
        callback_timeout=_callback_timeout(values),
        max_response_bytes=_positive_int(values, "MAX_RESPONSE_BYTES"),
        max_concurrent_sign_ins=_positive_int(values, "MAX_CONCURRENT_SIGN_INS"),
        fetch_emails=_flag_or_auto(values, "FETCH_EMAILS"),
        allowed_workspaces=frozenset(
            ascii_lower(slug)
            for slug in _text_list(values["ALLOWED_WORKSPACES"], "ALLOWED_WORKSPACES")
        ),
        catalog_check_interval=_positive_number(values, "CATALOG_CHECK_INTERVAL"),
        catalog_max_bytes=_positive_int(values, "CATALOG_MAX_BYTES"),
        url_prefix=url_prefix,
        signin_url=_path(values, "SIGNIN_URL"),
        product_name=str(values["PRODUCT_NAME"]),
        logo_url=_logo_url(values["LOGO_URL"]),
        brand_color=_brand_color(values),
        security_headers=_flag(values["SECURITY_HEADERS"]),
        health_path=_optional_path(values, "HEALTH_PATH"),
        metrics_path=_optional_path(values, "METRICS_PATH"),
        rate_limit=_rate_limit(values["RATE_LIMIT"]),
        rate_limit_storage_url=_rate_limit_storage_url(
            values["RATE_LIMIT_STORAGE_URL"] or _limiter_url(values["SESSION_REDIS_URL"])
        ),
        hsts=_hsts(values["HSTS"]),
        environment=_required_text(values, "ENVIRONMENT"),
        app_base_url=app_base_url,
        allowed_origins=_allowed_origins(values, names, app_base_url),
        token_expiration=_token_expiration(values, names),
        token_ownership_claim=_flag(values["TOKEN_OWNERSHIP_CLAIM"]),
        signing_key=_optional_file(values, "SIGNING_KEY"),
        previous_public_keys=tuple(
            _file(path, "PREVIOUS_PUBLIC_KEYS")
            for path in _text_list(values["PREVIOUS_PUBLIC_KEYS"], "PREVIOUS_PUBLIC_KEYS")
        ),
        server=_server_settings(values, names) if _is_set(values["SERVER_URL"]) else None,
    )
    refuse_taken_paths(settings, app_rules=())
    _check_kept_tokens(settings)
    return settings


def _is_set(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _server_settings(values: Mapping[str, Any], names: Mapping[str, str]) -> ServerSettings:
    """Data Center's settings; ``BITBUCKET_SERVER_URL`` is set."""
    url = _base_url(values, "SERVER_URL", names)
    if urlsplit(url).hostname in (CLOUD_HOST, f"api.{CLOUD_HOST}"):
        raise ConfigError(
            f"{names['SERVER_URL']}: {url!r} is Bitbucket Cloud: set {PREFIX}CLIENT_ID for it"
        )
    url_prefix = _path(values, "SERVER_URL_PREFIX")
    api_url = _base_url(values, "SERVER_API_URL", names) if values["SERVER_API_URL"] else url
    scopes = tuple(_text_list(values["SERVER_SCOPES"], "SERVER_SCOPES", separators=r"[\s,|]+"))
    for scope in scopes:
        if scope not in SERVER_SCOPES:
            raise ConfigError(
                f"{names['SERVER_SCOPES']}: {scope!r} is not a Data Center scope "
                f"({', '.join(sorted(SERVER_SCOPES))})"
            )
    return ServerSettings(
        url=url,
        api_url=api_url,
        client_id=_required_text(values, "SERVER_CLIENT_ID"),
        client_secret=_required_text(values, "SERVER_CLIENT_SECRET"),
        callback_url=_callback_url(values, names, url_prefix, "SERVER_CALLBACK_URL"),
        resolvers=tuple(
            _resolver_list(values["SERVER_SIGNIN_RESOLVERS"], "SERVER_SIGNIN_RESOLVERS")
        ),
        scopes=scopes,
        session_duration=parse_duration(
            values["SERVER_SESSION_DURATION"], names["SERVER_SESSION_DURATION"]
        ),
        name=str(values["SERVER_NAME"] or "").strip() or urlsplit(url).hostname or url,
        url_prefix=url_prefix,
    )


def _base_url(values: Mapping[str, Any], name: str, names: Mapping[str, str]) -> str:
    """An instance's base URL (with any context path), without a trailing slash, a query
    or a fragment."""
    url = _url(values, name, names).rstrip("/")
    parts = urlsplit(url)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigError(f"{names[name]}: {url!r} has a query or fragment: give the base URL")
    return url


def _check_kept_tokens(settings: Settings) -> None:
    """Tokens are kept only server-side (in the Redis of the sessions), and only a kept
    token can be exposed."""
    if settings.keep_tokens and not settings.session_redis_url:
        raise ConfigError(
            f"{PREFIX}KEEP_TOKENS needs {PREFIX}SESSION_REDIS_URL: "
            "Bitbucket tokens are kept server-side in Redis, never in a cookie"
        )
    if settings.expose_access_token and not settings.keep_tokens:
        raise ConfigError(
            f"{PREFIX}EXPOSE_ACCESS_TOKEN needs {PREFIX}KEEP_TOKENS: no token is kept to expose"
        )


def route_paths(settings: Settings) -> dict[str, str]:
    """The path of each route of the extension, by endpoint (in :data:`ROUTE_OWNERS`' order)."""
    paths = {
        "theme": f"{OWN_FILES_PATH}/theme.css",
        "static": f"{OWN_FILES_PATH}/static/<path:filename>",
        "logout": under_prefix(settings.url_prefix, "/logout"),  # whoever signed the person in
        "jwks": auth_base_path(settings.url_prefix) + "/.well-known/jwks.json",
        "openid_configuration": auth_base_path(settings.url_prefix)
        + "/.well-known/openid-configuration",
        "signin": settings.signin_url,
    }
    if settings.client_id is not None:  # Bitbucket Cloud's own routes
        paths["start"] = under_prefix(settings.url_prefix, "/start")
        paths["callback"] = under_prefix(settings.url_prefix, CALLBACK_ROUTE)
        paths["refresh"] = under_prefix(settings.url_prefix, "/refresh")
    if settings.server is not None:
        for route in ("start", "refresh", "logout"):
            paths[f"server_{route}"] = under_prefix(settings.server.url_prefix, f"/{route}")
        paths["server_callback"] = under_prefix(settings.server.url_prefix, CALLBACK_ROUTE)
    if settings.session_redis_url:
        paths["logout_everywhere"] = under_prefix(settings.url_prefix, "/logout/everywhere")
    if settings.health_path:
        paths["health"] = settings.health_path
    if settings.metrics_path:
        paths["metrics"] = settings.metrics_path
    return {endpoint: paths[endpoint] for endpoint in ROUTE_OWNERS if endpoint in paths}


def under_prefix(url_prefix: str, route: str) -> str:
    """``route`` (``/start``) under ``BITBUCKET_URL_PREFIX`` (which may be ``/``)."""
    return url_prefix.rstrip("/") + route


def auth_base_path(url_prefix: str) -> str:
    """Backstage's auth base path, the provider's prefix one level up (``/api/auth`` for
    ``/api/auth/bitbucket``; empty for a prefix of one segment or ``/``): the identity
    token's issuer and where its keys are published."""
    return url_prefix.rstrip("/").rpartition("/")[0]


def refuse_taken_paths(settings: Settings, app_rules: Iterable[tuple[str, str]]) -> None:
    """Each route of the extension has a path of its own: not under ``/_bitbucket_signin/``
    (unless it is one of those files), not another of its routes' paths, and not a rule the
    app already has (``app_rules``: its ``(rule, endpoint)`` pairs), which one of the two
    would silently hide."""
    taken = {_route_key(rule): f"a route of the app ({endpoint!r})" for rule, endpoint in app_rules}
    for endpoint, path in route_paths(settings).items():
        setting, what = ROUTE_OWNERS[endpoint]
        named = f"{PREFIX}{setting}" if setting else what
        key = _route_key(path)
        if setting and (key == OWN_FILES_PATH or key.startswith(OWN_FILES_PATH + "/")):
            raise ConfigError(
                f"{named}: {path!r} is under {OWN_FILES_PATH}/, kept for the extension's own files"
            )
        if key in taken:
            raise ConfigError(f"{named}: {path!r} is already the path of {taken[key]}")
        taken[key] = what + (f" ({PREFIX}{setting})" if setting else "")


def _route_key(path: str) -> str:
    """Paths one route would take from another: the same but for a trailing slash."""
    return path.rstrip("/") or "/"


# Backstage's provider blocks, and what each of their keys is called here.
_APP_CONFIG_PROVIDERS = {
    "bitbucket": {
        "clientId": "CLIENT_ID",
        "clientSecret": "CLIENT_SECRET",
        "callbackUrl": "CALLBACK_URL",
        "additionalScopes": "SCOPES",
        "sessionDuration": "SESSION_DURATION",
        "signIn": "SIGNIN_RESOLVERS",
    },
    "bitbucketServer": {
        "host": "SERVER_URL",
        "clientId": "SERVER_CLIENT_ID",
        "clientSecret": "SERVER_CLIENT_SECRET",
        "callbackUrl": "SERVER_CALLBACK_URL",
        "sessionDuration": "SERVER_SESSION_DURATION",
        "signIn": "SERVER_SIGNIN_RESOLVERS",
    },
}


def read_app_config(
    path: str | os.PathLike[str], environ: Mapping[str, str], environment: str | None = None
) -> dict[str, Any]:
    """What a Backstage ``app-config.yaml`` says, as our setting names: the Bitbucket provider
    blocks (``bitbucket``, ``bitbucketServer`` or both) of ``environment`` (default:
    ``auth.environment``), ``app.baseUrl``, the extra allowed origins and the identity
    token's settings."""
    key = PREFIX + "APP_CONFIG"
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{key}: cannot read {path}: {one_line(error)}") from None
    document = _substitute_env(document, environ, key)
    auth = _mapping(document, "auth", f"{key}: {path}")
    environment = environment or str(auth.get("environment", DEFAULTS["ENVIRONMENT"]))
    providers = _mapping(auth, "providers", f"{key}: {path}: auth")
    if not any(provider in providers for provider in _APP_CONFIG_PROVIDERS):
        raise ConfigError(f"{key}: {path}: auth.providers: no 'bitbucket' section")
    settings: dict[str, Any] = {}
    for provider, names in _APP_CONFIG_PROVIDERS.items():
        if provider not in providers:
            continue
        where = f"{key}: {path}: auth.providers.{provider}"
        block = _mapping(_mapping(providers, provider, where), environment, where)
        for theirs, ours in names.items():
            if theirs == "signIn":
                sign_in = block.get("signIn")
                if isinstance(sign_in, Mapping) and "resolvers" in sign_in:
                    settings[ours] = sign_in["resolvers"]
            elif theirs == "host" and theirs in block:
                settings[ours] = f"https://{block[theirs]}"  # Backstage's meaning of host
            elif theirs in block:
                settings[ours] = block[theirs]
    settings["ENVIRONMENT"] = environment
    app = document.get("app")
    if isinstance(app, Mapping) and app.get("baseUrl"):
        settings["APP_BASE_URL"] = app["baseUrl"]
    if "experimentalExtraAllowedOrigins" in auth:
        settings["ALLOWED_ORIGINS"] = auth["experimentalExtraAllowedOrigins"]
    if "backstageTokenExpiration" in auth:
        settings["TOKEN_EXPIRATION"] = auth["backstageTokenExpiration"]
    if "omitIdentityTokenOwnershipClaim" in auth:
        settings["TOKEN_OWNERSHIP_CLAIM"] = not _flag(auth["omitIdentityTokenOwnershipClaim"])
    if _has_file_locations(document):
        settings["CATALOG"] = str(path)  # the catalog loader reads its catalog.locations
    return settings


def _has_file_locations(document: Mapping[str, Any]) -> bool:
    """Whether ``catalog.locations`` lists an entry of ``type: file``."""
    catalog = document.get("catalog")
    locations = catalog.get("locations") if isinstance(catalog, Mapping) else None
    return isinstance(locations, list) and any(
        isinstance(location, Mapping) and location.get("type") == "file" for location in locations
    )


def parse_duration(value: Any, key: str) -> timedelta | None:
    """A Backstage duration: seconds, ``"24h"``, ``"2 days"`` or ``{hours: 24, minutes: 30}``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration, got {value!r}")
    try:
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
    except (OverflowError, ValueError):  # infinite, not a number, or beyond timedelta's range
        raise ConfigError(f"{key}: {value!r} is not a finite duration") from None
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
    return _checked_url(_required_text(values, name), names[name])


def _checked_url(value: str, label: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{label}: {value!r} is not an absolute http(s) URL")
    if value.startswith("http://") and not is_loopback(urlsplit(value).hostname):
        raise ConfigError(
            f"{label}: {value!r} is plain http to another machine: use https "
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
    """A route's path: ``/`` and segments of URL characters (no ``//``, no ``<converter>``)."""
    value = _required_text(values, name)
    if not value.startswith("/"):
        raise ConfigError(f"{PREFIX}{name}: {value!r} must start with '/'")
    if not _ROUTE_PATH.match(value):
        raise ConfigError(
            f"{PREFIX}{name}: {value!r} is not a plain path (segments of URL characters, "
            "no empty segment, no <converter>)"
        )
    return value.rstrip("/") or "/"


def _allowed_origins(
    values: Mapping[str, Any], names: Mapping[str, str], app_base_url: str | None
) -> frozenset[str]:
    """The app origins a Backstage frontend may sign in from: ``app.baseUrl``'s and each
    listed one, exactly (no patterns), https or loopback http like the other URLs."""
    name = names["ALLOWED_ORIGINS"]
    origins = {url_origin(app_base_url)} if app_base_url else set()
    for text in _text_list(values["ALLOWED_ORIGINS"], "ALLOWED_ORIGINS"):
        found = bare_origin(text.strip())
        if found is None:
            raise ConfigError(
                f"{name}: {text!r} is not an origin (scheme://host[:port], no path or pattern)"
            )
        origins.add(_checked_url(found, name))
    return frozenset(origin for origin in origins if origin)


def _token_expiration(values: Mapping[str, Any], names: Mapping[str, str]) -> int:
    """The identity token's lifetime in whole seconds, clamped as Backstage does."""
    duration = parse_duration(values["TOKEN_EXPIRATION"], names["TOKEN_EXPIRATION"])
    seconds = int(duration.total_seconds()) if duration else int(DEFAULTS["TOKEN_EXPIRATION"])
    return min(max(seconds, MIN_TOKEN_EXPIRATION_SECONDS), MAX_TOKEN_EXPIRATION_SECONDS)


def _optional_file(values: Mapping[str, Any], name: str) -> Path | None:
    value = values[name]
    return _file(value, name) if value not in (None, "") else None


def _file(value: Any, name: str) -> Path:
    path = Path(str(value).strip())
    if not path.is_file():
        raise ConfigError(f"{PREFIX}{name}: {path} is not a readable file")
    return path


def _callback_url(
    values: Mapping[str, Any], names: Mapping[str, str], url_prefix: str, name: str
) -> str | None:
    """The configured ``redirect_uri`` (setting ``name``): our callback route under
    ``url_prefix`` (after any prefix the app is mounted under), without a fragment."""
    if not values[name]:
        return None
    url = _url(values, name, names)
    route = under_prefix(url_prefix, CALLBACK_ROUTE)
    prefix_setting = name.replace("CALLBACK_URL", "URL_PREFIX")
    if "#" in url:
        raise ConfigError(f"{names[name]}: {url!r} has a fragment (#…): remove it")
    if not urlsplit(url).path.endswith(route):
        raise ConfigError(
            f"{names[name]}: {url!r} is not the callback route: its path must end "
            f"in {route} ({PREFIX}{prefix_setting} + {CALLBACK_ROUTE})"
        )
    return url


def _logo_url(value: Any) -> str | None:
    """A path on this site, an ``https:`` URL or a ``data:image/`` URL (what the CSP lets
    images come from); nothing a browser would read as another site or a script."""
    if value in (None, "", False):
        return None
    text = str(value).strip()
    parts = urlsplit(text)
    same_site_path = text.startswith("/") and text[1:2] not in ("/", "\\")
    https_url = parts.scheme.lower() == "https" and bool(parts.hostname)
    data_image = text.lower().startswith("data:image/")
    # Browsers drop tabs and line breaks from URLs: "/\t/evil.example" is "//evil.example".
    if not text.isprintable() or not (same_site_path or https_url or data_image):
        raise ConfigError(
            f"{PREFIX}LOGO_URL: {text!r} is not a path on this site (/…), "
            "an https:// URL or a data:image/ URL"
        )
    return text


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
    """A path of its own for a page of the extension (not ``/``, the site's home), or off."""
    if not _flag(values[name]):
        return None
    path = _path(values, name)
    if path == "/":
        raise ConfigError(f"{PREFIX}{name}: '/' is the site's home page: give it a path of its own")
    return path


def _positive_number(values: Mapping[str, Any], name: str, *, at_most: float = math.inf) -> float:
    """A finite number above 0 (and at most ``at_most``)."""
    try:
        number = float(values[name])
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not 0 < number < math.inf or number > at_most:
        bound = f" and at most {at_most:g}" if at_most < math.inf else ""
        raise ConfigError(
            f"{PREFIX}{name}: expected a finite number above 0{bound}, got {values[name]!r}"
        )
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
        return 2 * _positive_number(values, "TIMEOUT", at_most=MAX_TIMEOUT_SECONDS)
    return _positive_number(values, "CALLBACK_TIMEOUT", at_most=MAX_TIMEOUT_SECONDS)


def _flag_or_auto(values: Mapping[str, Any], name: str) -> bool | None:
    """``True``, ``False``, or ``None`` for "auto" (decided by the rest of the settings)."""
    value = values[name]
    if value is None or (isinstance(value, str) and value.strip().lower() in {"auto", ""}):
        return None
    flag = _known_flag(value)
    if flag is None:
        raise ConfigError(f"{PREFIX}{name}: expected true, false or auto, got {value!r}")
    return flag


def _strict_flag(values: Mapping[str, Any], name: str) -> bool:
    """``True`` or ``False``, spelt as such (or 1/0, yes/no, on/off); anything else, which
    may be a typo, is refused rather than read as either."""
    value = values[name]
    flag = _known_flag(value)
    if flag is None:
        raise ConfigError(f"{PREFIX}{name}: expected true or false, got {value!r}")
    return flag


def _known_flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE_TEXT or text in _FALSE_TEXT:
        return text in _TRUE_TEXT
    return None


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
    """Flask-Limiter's notation (``30 per minute``, ``10/minute; 100/hour``), or None for off:
    only ``off``, ``false`` or ``False`` switch it off (not ``0``, ``no`` or junk, which may
    be mistakes); empty (an unset template variable) is the default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        value = DEFAULTS["RATE_LIMIT"]
    if value is False or (isinstance(value, str) and value.strip().lower() in RATE_LIMIT_OFF):
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


def _resolver_list(value: Any, name: str = "SIGNIN_RESOLVERS") -> list[Any]:
    """Resolver specs: names, ``{resolver: name, ...}`` mappings or callables; from the
    environment, a JSON list (of names or mappings) or comma-separated names."""
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{PREFIX}{name}: cannot read {value!r} as JSON") from None
    if isinstance(value, str):
        return _text_list(value, name)
    if callable(value) or isinstance(value, Mapping):
        return [value]
    if not isinstance(value, Sequence) or not value:
        raise ConfigError(f"{PREFIX}{name}: expected a list of resolvers, got {value!r}")
    return list(value)
