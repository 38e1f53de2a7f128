"""Checklist rows 5, 7 and 16: ``redirect_uri`` never from the Host header, no open redirect
through ``next``, and a callback answer that leaks nothing."""

from __future__ import annotations

import itertools
import random
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.redirects import MAX_NEXT_LENGTH, safe_next
from bitbucket_signin.views import PENDING_STATE_PREFIX

from ..support import (
    JANE,
    finish_sign_in,
    grant_at_emulator,
    serve,
    session_contents,
    sign_in,
    signed_session,
    start_sign_in,
    token_requests,
)

EVIL = "evil.test"
CALLBACK_PATH = "/api/auth/bitbucket/handler/frame"
CONFIGURED_CALLBACK = f"http://127.0.0.1{CALLBACK_PATH}"  # the emulator's consumer accepts it
KEPT = ["/", "/dash?x=1", "/a/b?q=a%20b&r=%2F", "/@jane", "/docs/caf%C3%A9", "/x#part"]


# These tests sign in up to 30 times a minute from 127.0.0.1, the default limit: raised.
pytestmark = pytest.mark.rate_limit("1000 per minute")


# --- the browser's view of a Location, and the property every `next` must keep -----------


def browser_target(location: str, origin: str) -> str:
    """Where a browser goes for ``location`` (WHATWG: strip C0 and space at the ends, drop
    tabs and newlines, read ``\\`` as ``/``, any run of two or more leading slashes starts
    a host), resolved against ``origin``."""
    cleaned = re.sub(r"[\t\n\r]", "", location.strip("".join(map(chr, range(0x21)))))
    cleaned = cleaned.replace("\\", "/")
    if cleaned.startswith("//"):
        cleaned = "//" + cleaned.lstrip("/")
    return urljoin(origin + "/", cleaned)


def stays_on(origin: str, location: str) -> bool:
    """Whether ``location`` keeps a browser on ``origin`` — also after up to three rounds of
    percent-decoding and Unicode NFKC folding, as a careless later consumer might apply."""
    base = urlsplit(origin)
    candidate = location
    for _ in range(4):
        for form in {candidate, unicodedata.normalize("NFKC", candidate)}:
            target = urlsplit(browser_target(form, origin))
            if (target.scheme, target.netloc) != (base.scheme, base.netloc):
                return False
        candidate = unquote(candidate)
    return True


def same_origin(location: str) -> bool:
    """``stays_on`` for an app served over http and over https alike."""
    return all(stays_on(origin, location) for origin in ORIGINS)


ORIGINS = ("http://app.test", "https://app.test")


def hostile_next_values() -> list[str]:
    """Several hundred distinct hostile ``next`` values, built combinatorially."""
    hosts = [EVIL, f"{EVIL}:443", f"{EVIL.upper()}", f"app.test.{EVIL}", "127.0.0.1.nip.io"]
    leads = [
        "//", "///", "\\\\", "/\\", "\\/", "/\\/", " //", "\t//", "\x00//", "/\t/", "/\n/",
        "/\r\n/", "/%09/", "/%0a/", "/%0D/", "/%00/", "/%20/", "/%2F", "/%2f", "%2F%2F",
        "/%5C", "%5C%5C", "/%252F", "/%255C", "/%25252F", "/\uff0f", "\uff0f\uff0f",
        "/%EF%BC%8F", "/\u2215", "/\u2044", "/\u29f8", "\u3000//", "/.//", "/./\\",
    ]  # fmt: skip
    schemes = [
        "https:", "http:", "HTTPS:", "hTtP:", " https:", "https%3A", "https%253A",
        "\thttps:", "ftp:", "file:", "ws:",
    ]  # fmt: skip
    separators = ["//", "/", "", "\\\\", "/\\", "%2F%2F", "\\/", "/%09/"]
    userinfo = [
        "/@{h}", "//app.test@{h}", "/.@{h}", "@{h}", "https://app.test@{h}",
        "//app.test:pw@{h}", "//app.test%40{h}", "/%2F@{h}", "//@{h}", "http:@{h}",
        "https:{h}", "http:/{h}", "http:\\\\{h}",
    ]  # fmt: skip
    scripts = [
        "javascript:alert(1)", "JavaScript:alert(1)", "javascript://%0aalert(1)",
        "java\tscript:alert(1)", "java\nscript:alert(1)", " javascript:alert(1)",
        "javascript%3Aalert(1)", "\x01javascript:alert(1)", "vbscript:msgbox(1)",
        "data:text/html,<script>alert(1)</script>", "DATA:text/html;base64,PHNjcmlwdD4=",
        "data:,x", "jav&#x09;ascript:alert(1)",
    ]  # fmt: skip
    tails = ["", "/", "/dash?x=1", "#frag", "/%2e%2e/"]
    values = [lead + host + tail for lead, host, tail in itertools.product(leads, hosts, tails)]
    values += [s + sep + host for s, sep, host in itertools.product(schemes, separators, hosts)]
    values += [trick.format(h=host) for trick, host in itertools.product(userinfo, hosts)]
    values += [script + tail for script, tail in itertools.product(scripts, ["", "//x", "#/"])]
    values += [
        "/" + "a" * (MAX_NEXT_LENGTH + 1),
        "/%2F" * 600,
        f"//{EVIL}/" + "a" * 5000,
        "/" * 3000 + EVIL,
        "/" + "%25" * 40 + f"2F%2F{EVIL}",
        EVIL,
        f"{EVIL}/path",
        "",
    ]
    return list(dict.fromkeys(values))


HOSTILE = hostile_next_values()


def test_the_hostile_list_is_large_and_hostile() -> None:
    assert len(HOSTILE) >= 500
    assert len([value for value in HOSTILE if not same_origin(value)]) >= 500


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_next_never_leaves_the_origin(value: str) -> None:
    """Row 7, the pure function: the answer is the value itself only when it is safe."""
    result = safe_next(value)
    assert result in ("/", value)
    assert same_origin(result)


FRAGMENTS = [
    "/", "//", "\\", "%2F", "%5C", "%25", "%", "@", ":", "?", "#", ".", "..", "\t", "\n", " ",
    EVIL, "https:", "javascript:", "\uff0f", "%EF%BC%8F", "a", "x=1", "&",
]  # fmt: skip
next_values = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=2), max_size=8).map("".join),
)


@given(value=next_values)
@settings(max_examples=600, deadline=None)
def test_safe_next_property(value: str) -> None:
    """Row 7: whatever ``next`` is, ``safe_next`` gives a same-origin path."""
    result = safe_next(value)
    assert result in ("/", value)
    assert result.startswith("/")
    assert same_origin(result)


# --- through the real sign-in ----------------------------------------------------------


def landing(live_app: str, emulator_url: str, next_value: str) -> str:
    """Sign Jane in from a fresh browser with ``next_value``; where the callback sends her."""
    with requests.Session() as http:
        response = sign_in(http, live_app, emulator_url, JANE, next_path=next_value)
        assert response.status_code == 302
        after = http.get(f"{live_app}/signin", params={"next": next_value}, allow_redirects=False)
        assert after.status_code == 302
        assert after.headers["Location"] == response.headers["Location"]
        location: str = response.headers["Location"]
        return location


def test_hostile_next_through_the_sign_in(live_app: str, bitbucket: EmulatorServer) -> None:
    """Row 7 end to end: a sample of the hostile list; each lands on the app's own origin."""
    sample = random.Random(7).sample(HOSTILE, 30)
    escaped = {value: landing(live_app, bitbucket.url, value) for value in sample}
    assert {v: loc for v, loc in escaped.items() if not stays_on(live_app, loc)} == {}
    assert set(escaped.values()) <= {"/", *sample}


@pytest.mark.parametrize("path", KEPT)
def test_same_origin_next_is_kept_as_is(
    live_app: str, bitbucket: EmulatorServer, path: str
) -> None:
    assert landing(live_app, bitbucket.url, path) == path


@given(value=next_values)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_sign_in_lands_on_the_origin_property(
    live_app: str, bitbucket: EmulatorServer, value: str
) -> None:
    """Row 7 property, end to end: whatever ``next`` is, the final redirect is same-origin."""
    assert stays_on(live_app, landing(live_app, bitbucket.url, value))


def test_next_is_validated_again_when_used(
    http: requests.Session, app: Flask, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 7: a hostile ``next`` planted in the session (past the check at start) is not used."""
    authorize_url = start_sign_in(http, live_app, "/dash")
    state = parse_qs(urlsplit(authorize_url).query)["state"][0]
    data = session_contents(app, http.cookies.get("session"))
    data[PENDING_STATE_PREFIX + state]["data"]["next"] = f"//{EVIL}/"
    http.cookies.set("session", signed_session(app, data), domain="127.0.0.1")
    callback = http.get(
        grant_at_emulator(bitbucket.url, authorize_url, JANE), allow_redirects=False
    )
    assert callback.status_code == 302
    assert callback.headers["Location"] == "/"


# --- row 5: redirect_uri ------------------------------------------------------------------


@pytest.fixture
def served(make_app: Callable[..., Flask]) -> Iterator[Callable[..., str]]:
    """Serve apps built with config overrides on live loopback servers; returns their URLs."""
    stack: list[Any] = []

    def start(**overrides: Any) -> str:
        context = serve(make_app(**overrides))
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("config", "headers", "expected"),
    [
        ({}, {"Host": EVIL}, None),
        ({"PROXY_FIX": 1}, {"X-Forwarded-Host": EVIL}, None),
        ({}, {"X-Forwarded-Host": EVIL}, "loopback"),
        ({"BITBUCKET_CALLBACK_URL": CONFIGURED_CALLBACK}, {"Host": EVIL}, CONFIGURED_CALLBACK),
        (
            {"BITBUCKET_CALLBACK_URL": CONFIGURED_CALLBACK, "PROXY_FIX": 1},
            {"X-Forwarded-Host": EVIL, "X-Forwarded-Proto": "https"},
            CONFIGURED_CALLBACK,
        ),
        ({"TRUSTED_HOSTS": ["127.0.0.1"]}, {"Host": EVIL}, None),
    ],
)
def test_redirect_uri_never_comes_from_a_hostile_host(
    served: Callable[..., str],
    bitbucket: EmulatorServer,
    config: dict[str, Any],
    headers: dict[str, str],
    expected: str | None,
) -> None:
    """Row 5: the hostile Host is refused, or redirect_uri is the configured or loopback one;
    the token request repeats exactly the redirect_uri of the authorize request."""
    live_app = served(**config)
    start = requests.get(
        f"{live_app}/api/auth/bitbucket/start", headers=headers, allow_redirects=False
    )
    if expected is None:
        assert start.status_code in (400, 404)
        assert EVIL not in start.headers.get("Location", "")
        return
    assert start.status_code == 302
    redirect_uri = parse_qs(urlsplit(start.headers["Location"]).query)["redirect_uri"][0]
    assert redirect_uri == (f"{live_app}{CALLBACK_PATH}" if expected == "loopback" else expected)
    assert finish_sign_in(live_app, bitbucket.url, start, JANE).status_code == 302
    [token] = token_requests(bitbucket)
    assert token["redirect_uri"] == redirect_uri
    assert token["status"] == 200


# --- row 16: the callback's own answer ----------------------------------------------------


def test_callback_answer_hides_the_code(
    http: requests.Session, live_app: str, bitbucket: EmulatorServer
) -> None:
    """Row 16: 302 to a URL without the code; no referrer, no caching."""
    callback_url = grant_at_emulator(bitbucket.url, start_sign_in(http, live_app, "/dash"), JANE)
    code = parse_qs(urlsplit(callback_url).query)["code"][0]
    response = http.get(callback_url, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == "/dash"
    assert code not in response.headers["Location"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def test_failed_callback_is_not_cached_either(http: requests.Session, live_app: str) -> None:
    response = http.get(f"{live_app}{CALLBACK_PATH}", params={"code": "c0de", "state": "s"})
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert "c0de" not in response.text
