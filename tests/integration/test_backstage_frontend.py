"""Backstage's frontend protocol over real HTTP, the emulator playing Bitbucket: the popup and
redirect flows, ``/refresh`` and ``/logout`` across origins, beside the server-rendered flow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from bitbucket_signin.emulator import EmulatorServer

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
from ..processes import free_port, redis_process
from ..support import JANE, JANE_IDENTITY, VAL, grant_at_emulator, home_page, serve, sign_in

# Each test signs in several times from 127.0.0.1 within a minute.
pytestmark = pytest.mark.rate_limit("1000 per minute")


@pytest.fixture
def site(make_app: Callable[..., Flask]) -> Iterator[str]:
    """The app allowing two Backstage app origins, on a live server."""
    with serve(make_app(BITBUCKET_RATE_LIMIT="1000 per minute", **FRONTEND)) as url:
        yield url


def test_popup_posts_the_identity_to_the_app_origin_and_signs_in(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    page = frontend_sign_in(http, site, bitbucket.url, JANE, scope="account team")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Cross-Origin-Opener-Policy" not in page.headers
    origin, message = popup_messages(page)
    assert origin == APP_ORIGIN
    assert message["type"] == "authorization_response"
    response = message["response"]
    assert response["profile"] == {
        "displayName": "Jane Doe",
        "email": "jane@example.com",
        "picture": response["profile"]["picture"],
    }
    assert {"account", "team"} <= set(response["providerInfo"]["scope"].split(" "))
    assert response["providerInfo"]["expiresInSeconds"] == 3600
    assert "accessToken" not in response["providerInfo"]
    identity = response["backstageIdentity"]
    assert identity["expiresInSeconds"] == 3600
    assert identity["token"].count(".") == 2
    assert identity["identity"] == JANE_IDENTITY
    # The popup left a session that the app's later /refresh calls see (with credentials).
    again = refresh(http, site)
    assert again.status_code == 200
    assert again.json()["backstageIdentity"]["identity"] == identity["identity"]


def test_popup_script_posts_config_info_then_the_answer_and_closes(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    page = frontend_sign_in(http, site, bitbucket.url, JANE)
    script = page.text.split("<script>", 1)[1].split("</script>", 1)[0]
    config_info = script.index("postMessage({type:'config_info',targetOrigin:origin},'*')")
    answer = script.index("postMessage(message,origin)")
    assert config_info < answer < script.index("window.close()")
    assert "window.opener||window.parent" in script


def test_popup_failure_is_a_200_page_with_the_error(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    page = frontend_sign_in(http, site, bitbucket.url, VAL)  # not in the catalog
    assert page.status_code == 200
    origin, message = popup_messages(page)
    assert origin == APP_ORIGIN
    assert message["type"] == "authorization_response"
    assert message["error"]["name"] == "NotAllowedError"
    assert "unable to resolve user identity" in message["error"]["message"]
    assert "response" not in message
    assert refresh(http, site).status_code == 401


def test_popup_denied_at_bitbucket(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    started = start(http, site, **start_params())
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    page = http.get(
        f"{site}{PREFIX}/handler/frame", params={"error": "access_denied", "state": state}
    )
    assert page.status_code == 200
    _, message = popup_messages(page)
    assert message["error"] == {
        "name": "NotAllowedError",
        "message": "You chose not to let this site use your Bitbucket account, "
        "so you are not signed in.",
    }


def test_redirect_flow_returns_to_the_page_and_refresh_signs_in(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    page = f"{APP_ORIGIN}/catalog?filters%5Bkind%5D=component"
    answer = frontend_sign_in(http, site, bitbucket.url, JANE, "redirect", redirectUrl=page)
    assert answer.status_code == 302
    assert answer.headers["Location"] == page
    assert refresh(http, site).json()["backstageIdentity"]["identity"]["userEntityRef"] == (
        "user:default/jdoe"
    )


def test_redirect_flow_failure_goes_to_the_app_with_the_error(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    app = make_app(BITBUCKET_APP_BASE_URL=f"{APP_ORIGIN}/portal", **FRONTEND)
    with serve(app) as url:
        answer = frontend_sign_in(
            http, url, bitbucket.url, VAL, "redirect", redirectUrl=f"{APP_ORIGIN}/x"
        )
        assert answer.status_code == 302
        location = urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{APP_ORIGIN}/portal"
        assert "unable to resolve user identity" in parse_qs(location.query)["error"][0]
        # From another allowed origin than app.baseUrl's: back to that origin's root.
        answer = frontend_sign_in(
            http,
            url,
            bitbucket.url,
            VAL,
            "redirect",
            origin=OTHER_APP_ORIGIN,
            redirectUrl=f"{OTHER_APP_ORIGIN}/y",
        )
        assert answer.headers["Location"].startswith(f"{OTHER_APP_ORIGIN}/?error=")


def test_refresh_get_and_post_with_cors_for_the_app_origin(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    assert frontend_sign_in(http, site, bitbucket.url, JANE).status_code == 200
    for method in ("GET", "POST"):
        answer = refresh(http, site, method)
        assert answer.status_code == 200
        assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in answer.headers["Vary"]
        assert answer.json()["backstageIdentity"]["token"]


def test_preflights_are_answered_for_allowed_origins(site: str) -> None:
    for route, method in (("refresh", "GET"), ("refresh", "POST"), ("logout", "POST")):
        answer = requests.options(
            f"{site}{PREFIX}/{route}?env=development",
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "x-requested-with",
            },
            timeout=10,
        )
        assert answer.status_code in (200, 204)
        assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"
        assert method in answer.headers["Access-Control-Allow-Methods"]
        assert "x-requested-with" in answer.headers["Access-Control-Allow-Headers"].lower()


def test_refresh_errors_have_backstages_shape(http: requests.Session, site: str) -> None:
    answer = refresh(http, site)
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"]["name"] == "AuthenticationError"
    assert body["response"] == {"statusCode": 401}
    assert body["request"]["method"] == "GET"
    assert body["request"]["url"].startswith(f"{PREFIX}/refresh?")
    assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN  # the app reads why
    missing = http.get(f"{site}{PREFIX}/refresh", headers={"Origin": APP_ORIGIN})
    assert missing.status_code == 401
    assert missing.json()["error"] == {
        "name": "AuthenticationError",
        "message": "Invalid X-Requested-With header",
    }


def test_logout_from_the_app_origin(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    assert frontend_sign_in(http, site, bitbucket.url, JANE).status_code == 200
    headers = {**XHR, "Origin": APP_ORIGIN}
    assert http.get(f"{site}{PREFIX}/logout", headers=headers).status_code == 405
    answer = http.post(f"{site}{PREFIX}/logout?env=development", headers=headers)
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert refresh(http, site).status_code == 401
    without_header = http.post(f"{site}{PREFIX}/logout", headers={"Origin": APP_ORIGIN})
    assert without_header.status_code == 400  # no CSRF token, no X-Requested-With: refused


def test_unknown_parameters_are_ignored_and_no_flow_is_the_server_rendered_sign_in(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    started = http.get(
        f"{site}{PREFIX}/start",
        params={"next": "/dash", "origin": "https://evil.test", "utm_source": "x"},
        allow_redirects=False,
    )
    assert started.status_code == 302
    callback = grant_at_emulator(bitbucket.url, started.headers["Location"], JANE)
    answer = http.get(callback, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/dash"
    assert "Signed in as Jane Doe" in home_page(http, site).text
    answer = frontend_sign_in(http, site, bitbucket.url, JANE, whatever="1")
    assert answer.status_code == 200


def test_the_environment_comes_from_the_app_config(
    make_app: Callable[..., Flask], http: requests.Session, tmp_path: Path
) -> None:
    folder = tmp_path
    (folder / "app-config.yaml").write_text(
        "app: {baseUrl: 'http://localhost:3000'}\n"
        "auth:\n"
        "  environment: production\n"
        "  experimentalExtraAllowedOrigins: ['https://portal.example.com']\n"
        "  providers: {bitbucket: {production: {clientId: a, clientSecret: b}}}\n"
    )
    app = make_app(BITBUCKET_APP_CONFIG=str(folder / "app-config.yaml"))
    with serve(app) as url:
        assert start(http, url, **start_params(env="development")).status_code == 400
        assert start(http, url, **start_params(env="production")).status_code == 302
        other = start_params(env="production", origin=OTHER_APP_ORIGIN)
        assert start(http, url, **other).status_code == 302


def test_the_server_rendered_sign_in_still_lands_on_next(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    assert sign_in(http, site, bitbucket.url, JANE, "/x?y=1").headers["Location"] == "/x?y=1"


def test_with_redis_sessions_and_when_redis_is_away(
    make_app: Callable[..., Flask], http: requests.Session, bitbucket: EmulatorServer
) -> None:
    """Server-side sessions: the popup's sign-in is seen by /refresh; with Redis away the
    frontend gets Backstage's JSON error (503, readable by the app), and a popup the error
    posted to the app, never a page or a 500."""
    port = free_port()
    with redis_process(port) as redis_url:
        app = make_app(BITBUCKET_SESSION_REDIS_URL=redis_url, **FRONTEND)
        with serve(app) as url:
            assert frontend_sign_in(http, url, bitbucket.url, JANE).status_code == 200
            assert refresh(http, url).status_code == 200
    with serve(app) as url:
        answer = refresh(http, url)
        assert answer.status_code == 503
        assert answer.json()["response"] == {"statusCode": 503}
        assert answer.headers["Retry-After"]
        assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
        popup = start(http, url, **start_params())  # a popup: the error posted, no page
        assert popup.status_code == 503
        assert popup.headers["Retry-After"]
        assert "<button" not in popup.text
        origin, message = popup_messages(popup)
        assert origin == APP_ORIGIN
        assert message["error"]["name"] == "Error"
        server_flow = http.get(f"{url}{PREFIX}/start", allow_redirects=False, timeout=10)
        assert server_flow.status_code == 503  # the sign-in page, saying so
        assert "Sign-in sessions are unavailable" in server_flow.text


def test_a_page_too_long_to_keep_returns_to_the_apps_root(
    http: requests.Session, site: str, bitbucket: EmulatorServer
) -> None:
    """The page is kept in the session cookie with the pending sign-in; one too long for it
    (with the scope and origin over 512 characters) becomes the app's base URL."""
    page = f"{APP_ORIGIN}/search?q=" + "x" * 600
    answer = frontend_sign_in(http, site, bitbucket.url, JANE, "redirect", redirectUrl=page)
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{APP_ORIGIN}/"
