"""The Backstage frontend protocol under attack, over real HTTP: only the allowed app origins
may start a sign-in, receive its answer, be returned to, or read ``/refresh`` and sign out."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.frontend import MAX_SCOPE_LENGTH
from bitbucket_signin.oauth import STALE_LINK
from bitbucket_signin.views import MAX_PENDING_SIGN_INS, PENDING_STATE_PREFIX

from ..frontend_support import (
    APP_ORIGIN,
    FRONTEND,
    OTHER_APP_ORIGIN,
    PREFIX,
    XHR,
    frontend_sign_in,
    popup_messages,
    refresh,
    start,
    start_params,
)
from ..support import (
    JANE,
    grant_at_emulator,
    serve,
    session_contents,
    signed_session,
    token_calls,
)
from .test_cookie_size import BROWSER_LIMIT, HEADROOM, session_cookie_size

pytestmark = pytest.mark.rate_limit("1000 per minute")
SCOPE_CHARACTERS = [chr(code) for code in range(0x20, 0x7F)]  # every character a scope may have
EVIL = "https://evil.test"
HOSTILE_ORIGINS = [
    EVIL,
    "http://localhost:3000.evil.test",
    "http://localhost:30001",
    "https://localhost:3000",
    "http://localhost:3000@evil.test",
    "http://evil.test#@localhost:3000",
    "http://localhost:3000/path",
    "null",
    "",
    " http://localhost:3000",
    "http://local\thost:3000",
    "http://localhost:3000\\@evil.test",
    "javascript:alert(1)//localhost:3000",
]
HOSTILE_REDIRECTS = [
    f"{EVIL}/",
    "//evil.test/",
    "/relative/path",
    "http://localhost:3000@evil.test/",
    "http://localhost:3000\\@evil.test/",
    "http://localhost:3000.evil.test/",
    "http:/\\evil.test/",
    "http://local\thost:3000/",
    "http://evil.test/?http://localhost:3000/",
    "javascript:alert(document.domain)//http://localhost:3000/",
    "data:text/html,<script>alert(1)</script>",
    "http://xn--localhost-.evil.test:3000/",
    "http://localhost:3000\r\nSet-Cookie: x=1",
]


@pytest.fixture
def site(make_app: Callable[..., Flask]) -> Iterator[tuple[Flask, str]]:
    app = make_app(**FRONTEND)
    with serve(app) as url:
        yield app, url


@pytest.mark.parametrize("origin", HOSTILE_ORIGINS)
def test_start_refuses_an_origin_that_is_not_allowed(
    http: requests.Session, site: tuple[Flask, str], bitbucket: EmulatorServer, origin: str
) -> None:
    app, url = site
    for flow in ("popup", "redirect"):
        answer = start(http, url, **start_params(flow, origin=origin, redirectUrl=f"{origin}/"))
        assert answer.status_code == 403, (flow, origin)
        assert "Location" not in answer.headers
        if flow == "popup":  # no app base URL: posted to this site's own origin alone
            assert popup_messages(answer)[0] == "/"
        kept = session_contents(app, http.cookies.get("session"))
        assert not any(key.startswith("_state_") for key in kept)
    assert token_calls(bitbucket) == 0


@pytest.mark.parametrize("redirect_url", HOSTILE_REDIRECTS)
def test_redirect_flow_refuses_a_page_off_the_allowed_origins(
    http: requests.Session, site: tuple[Flask, str], redirect_url: str
) -> None:
    _, url = site
    answer = start(http, url, **start_params("redirect", redirectUrl=redirect_url))
    assert answer.status_code == 403
    assert "Location" not in answer.headers


def test_missing_redirect_url_wrong_flow_env_or_scope_are_400(
    http: requests.Session, site: tuple[Flask, str]
) -> None:
    _, url = site
    params = start_params("redirect")
    assert start(http, url, **params).status_code == 400  # no redirectUrl
    assert start(http, url, **start_params("iframe")).status_code == 400
    for env in ("production", "", "development "):
        assert start(http, url, **start_params(env=env)).status_code == 400
    no_env = {key: value for key, value in start_params().items() if key != "env"}
    assert start(http, url, **no_env).status_code == 400
    long_scope = "a" * (MAX_SCOPE_LENGTH + 1)
    assert start(http, url, **start_params(scope=long_scope)).status_code == 400
    assert start(http, url, **start_params()).status_code == 302


def test_the_answer_goes_only_to_the_origin_that_started_it(
    http: requests.Session, site: tuple[Flask, str], bitbucket: EmulatorServer
) -> None:
    """The popup posts the identity to the pending sign-in's origin, never to ``*``; a hostile
    scope cannot break out of the script (one script, still the hash the policy names)."""
    _, url = site
    scope = "account </script><script>alert(1)</script>'\"`${x}\\u2028"
    page = frontend_sign_in(http, url, bitbucket.url, JANE, scope=scope)
    origin, message = popup_messages(page)  # one script, whose hash the CSP allows
    assert origin == APP_ORIGIN
    assert re.findall(r"postMessage\(([^)]*)\)", page.text) == [
        "{type:'config_info',targetOrigin:origin},'*'",
        "message,origin",
    ]
    assert page.text.count("<script") == 1
    assert page.text.count("</script>") == 1
    assert scope.split(" ", 1)[1] in message["response"]["providerInfo"]["scope"]


def test_refresh_and_logout_answer_allowed_origins_only(
    http: requests.Session, site: tuple[Flask, str], bitbucket: EmulatorServer
) -> None:
    _, url = site
    assert frontend_sign_in(http, url, bitbucket.url, JANE).status_code == 200
    for origin in [o for o in HOSTILE_ORIGINS if o and o.isprintable() and o == o.strip()]:
        answer = refresh(http, url, origin=origin)
        assert answer.status_code == 403, origin
        assert answer.json()["error"]["name"] == "NotAllowedError"
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "backstageIdentity" not in answer.text
        preflight = http.options(
            f"{url}{PREFIX}/refresh",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "x-requested-with",
            },
        )
        assert not any(name.startswith("Access-Control-Allow") for name in preflight.headers)
        logout = http.post(f"{url}{PREFIX}/logout", headers={**XHR, "Origin": origin})
        assert logout.status_code == 403
    assert refresh(http, url).status_code == 200  # still signed in
    assert refresh(http, url, origin=None).status_code == 200  # no Origin: not a browser's CORS


def test_refresh_refuses_another_environment(
    http: requests.Session, site: tuple[Flask, str], bitbucket: EmulatorServer
) -> None:
    _, url = site
    assert frontend_sign_in(http, url, bitbucket.url, JANE).status_code == 200
    answer = http.get(
        f"{url}{PREFIX}/refresh?{urlencode({'env': 'production'})}",
        headers={**XHR, "Origin": APP_ORIGIN},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["name"] == "InputError"


def test_without_allowed_origins_no_frontend_may_sign_in(
    make_app: Callable[..., Flask], http: requests.Session
) -> None:
    with serve(make_app()) as url:
        assert start(http, url, **start_params()).status_code == 403


def test_worst_case_frontend_sign_ins_keep_the_cookie_small(
    http: requests.Session, site: tuple[Flask, str]
) -> None:
    """Pending frontend sign-ins keep their origin, scope and page in the cookie: the longest
    scope and a page of random characters, as many as can be pending, stay under 4 KB."""
    _, url = site
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/?"
    largest = 0
    for length in (400, 1000, 2000):
        for _ in range(4):
            page = f"{APP_ORIGIN}/" + "".join(rng.choice(alphabet) for _ in range(length))
            scope = "".join(rng.choice(SCOPE_CHARACTERS) for _ in range(MAX_SCOPE_LENGTH))
            answer = start(http, url, **start_params("redirect", redirectUrl=page, scope=scope))
            assert answer.status_code == 302
            largest = max(largest, session_cookie_size(answer))
    assert largest <= BROWSER_LIMIT - HEADROOM


def test_a_scope_beyond_printable_ascii_is_refused_before_it_grows_the_cookie(
    http: requests.Session, site: tuple[Flask, str]
) -> None:
    """A printable scope of other characters (each up to twelve bytes of JSON in the cookie)
    used to be kept: three such pending sign-ins, with the longest page, passed 4 KB and the
    browser dropped the cookie. Now they are 400 and leave nothing pending."""
    app, url = site
    rng = random.Random(11)
    astral = [chr(code) for code in range(0x10000, 0x2FFFF) if chr(code).isprintable()]
    page = f"{APP_ORIGIN}/" + "".join(rng.choice(string.ascii_letters) for _ in range(380))
    for _ in range(MAX_PENDING_SIGN_INS + 1):
        scope = "".join(rng.choice(astral) for _ in range(MAX_SCOPE_LENGTH))
        for flow, extra in (("redirect", {"redirectUrl": page}), ("popup", {})):
            answer = start(http, url, **start_params(flow, scope=scope, **extra))
            assert answer.status_code == 400, answer.text
            text = popup_messages(answer)[1]["error"]["message"] if flow == "popup" else answer.text
            assert "printable ASCII" in text
            assert session_cookie_size(answer) == 0
    for scope in ("account é", "accoun\u0442", "account \uff45mail"):  # printable, not ASCII
        assert start(http, url, **start_params(scope=scope)).status_code == 400
    kept = session_contents(app, http.cookies.get("session"))
    assert not any(key.startswith("_state_") for key in kept)


def popup_refusal(answer: requests.Response, status: int, target: str) -> str:
    """``answer`` is the popup page, with ``status``, posting Backstage's error to ``target``
    alone (and closing): no sign-in page, no button; the error's message."""
    assert answer.status_code == status, answer.text
    assert "<button" not in answer.text
    assert "<form" not in answer.text
    origin, message = popup_messages(answer)
    assert origin == target
    assert set(message) == {"type", "error"}
    assert message["error"]["name"] == {400: "InputError", 403: "NotAllowedError"}.get(
        status, "Error"
    )
    text: str = message["error"]["message"]
    return text


def test_every_refusal_of_a_popup_start_is_answered_in_the_popup(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    """A popup whose ``/start`` is refused (another ``env``, a bad scope, an origin not
    allowed, the rate limit) shows no sign-in page with its button: it posts the error as
    Backstage's backend does and closes; to the app base URL's origin when the popup's own
    is not allowed (whoever opened it there hears nothing)."""
    app = make_app(
        **FRONTEND, BITBUCKET_APP_BASE_URL=f"{APP_ORIGIN}/catalog", BITBUCKET_RATE_LIMIT="4/minute"
    )
    with serve(app) as url:
        env = popup_refusal(start(http, url, **start_params(env="production")), 400, APP_ORIGIN)
        assert "'production' is not this server's" in env
        long_scope = "a" * (MAX_SCOPE_LENGTH + 1)
        scope = popup_refusal(start(http, url, **start_params(scope=long_scope)), 400, APP_ORIGIN)
        assert "printable ASCII" in scope
        elsewhere = start(http, url, **start_params(origin=EVIL))
        assert "not among the allowed" in popup_refusal(elsewhere, 403, APP_ORIGIN)
        assert start(http, url, **start_params()).status_code == 302
        limited = start(http, url, **start_params())
        assert "Too many sign-in attempts" in popup_refusal(limited, 429, APP_ORIGIN)
        assert int(limited.headers["Retry-After"]) > 0
        assert "<button" in start(http, url, **start_params("redirect", env="x")).text
    assert token_calls(bitbucket) == 0


def test_a_stale_popup_callback_is_answered_in_the_popup(
    http: requests.Session, site: tuple[Flask, str], bitbucket: EmulatorServer
) -> None:
    """A popup coming back after its sign-in expired gets Backstage's error in the popup,
    not the sign-in page; no token is asked for."""
    app, url = site
    started = start(http, url, **start_params())
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    contents = session_contents(app, http.cookies.get("session"))
    contents[PENDING_STATE_PREFIX + state]["exp"] = 1.0  # as if an hour had passed
    http.cookies.set("session", signed_session(app, contents), domain="127.0.0.1")
    callback = grant_at_emulator(bitbucket.url, started.headers["Location"], JANE)
    answer = http.get(callback, allow_redirects=False, timeout=10)
    assert answer.status_code == 200
    assert "<button" not in answer.text
    origin, message = popup_messages(answer)
    assert origin == APP_ORIGIN
    assert message["error"] == {"name": "InputError", "message": STALE_LINK}
    assert token_calls(bitbucket) == 0


def test_a_callback_whose_sign_in_is_gone_is_answered_at_the_app(
    http: requests.Session, site: tuple[Flask, str], bitbucket: EmulatorServer
) -> None:
    """A frontend's callback whose pending sign-in is gone (here: spent, replayed; also a
    Redis session expired, or cleared by another sign-in) is still answered in the popup or
    back at the app: the state carries the flow and the origin's place among the allowed
    ones. A forged mark reaches only an allowed origin, or this site's own; nothing else."""
    _, url = site
    for flow in ("popup", "redirect"):
        started = start(http, url, **start_params(flow, redirectUrl=f"{APP_ORIGIN}/x"))
        callback = grant_at_emulator(bitbucket.url, started.headers["Location"], JANE)
        assert http.get(callback, allow_redirects=False, timeout=10).status_code in (200, 302)
        replayed = http.get(callback, allow_redirects=False, timeout=10)
        if flow == "popup":
            assert replayed.status_code == 200
            origin, message = popup_messages(replayed)
            assert origin == APP_ORIGIN
            assert message["error"] == {"name": "InputError", "message": STALE_LINK}
        else:
            assert replayed.status_code == 302
            assert replayed.headers["Location"].startswith(f"{APP_ORIGIN}/?error=")
    allowed = sorted(FRONTEND["BITBUCKET_ALLOWED_ORIGINS"])
    for mark, target in ((f"p{allowed.index(APP_ORIGIN)}", APP_ORIGIN), ("p99", "/")):
        forged = http.get(f"{url}{PREFIX}/handler/frame?state=x.{mark}&code=y", timeout=10)
        assert popup_messages(forged)[0] == target
    assert "<button" in http.get(f"{url}{PREFIX}/handler/frame?state=x.q1&code=y", timeout=10).text


def test_a_rate_limited_popup_callback_is_answered_in_the_popup(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    """Past the rate limit, a popup's callback (its pending sign-in says it is one) gets the
    429 error in the popup, to its origin, and no token is asked for."""
    with serve(make_app(**FRONTEND, BITBUCKET_RATE_LIMIT="1/minute")) as url:
        started = start(http, url, **start_params())
        forged = http.get(f"{url}{PREFIX}/handler/frame?state=x&code=y", timeout=10)
        assert forged.status_code == 400  # the one callback of the minute
        callback = grant_at_emulator(bitbucket.url, started.headers["Location"], JANE)
        answer = http.get(callback, allow_redirects=False, timeout=10)
    assert "Too many sign-in attempts" in popup_refusal(answer, 429, APP_ORIGIN)
    assert token_calls(bitbucket) == 0


def test_an_origin_no_longer_allowed_at_the_callback_gets_nothing(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    """Two instances sharing the secret, the second no longer allowing the origin the first
    started the sign-in for: its callback checks again, posts (or redirects) only to its own
    app base URL, with a 403 error, before any token is asked for, and signs no one in."""
    first = make_app(**FRONTEND)
    second = make_app(
        BITBUCKET_ALLOWED_ORIGINS=[OTHER_APP_ORIGIN],
        BITBUCKET_APP_BASE_URL=f"{OTHER_APP_ORIGIN}/",
    )
    with serve(first) as first_url, serve(second) as second_url:
        for flow in ("popup", "redirect"):
            started = start(http, first_url, **start_params(flow, redirectUrl=f"{APP_ORIGIN}/x"))
            callback = urlsplit(grant_at_emulator(bitbucket.url, started.headers["Location"], JANE))
            answer = http.get(
                f"{second_url}{callback.path}?{callback.query}", allow_redirects=False, timeout=10
            )
            if flow == "popup":
                assert answer.status_code == 200
                origin, message = popup_messages(answer)
                assert origin == OTHER_APP_ORIGIN
                assert message["error"]["name"] == "NotAllowedError"
                assert "no longer allowed" in message["error"]["message"]
            else:
                assert answer.status_code == 302
                location = answer.headers["Location"]
                assert location.startswith(f"{OTHER_APP_ORIGIN}/?error=")
                assert "no+longer+allowed" in location
            assert refresh(http, second_url, origin=OTHER_APP_ORIGIN).status_code == 401
    assert token_calls(bitbucket) == 0
