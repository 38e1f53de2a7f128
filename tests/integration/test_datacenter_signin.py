"""Signing in with Bitbucket Data Center, next to Bitbucket Cloud, over real HTTP: the app on
a loopback port, the emulator playing both."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests

from bitbucket_signin import get_extension
from bitbucket_signin.audit import AUDIT_LOGGER
from bitbucket_signin.emulator import EmulatorServer
from bitbucket_signin.errors import ConfigError
from bitbucket_signin.redis_sessions import PERSON_PREFIX
from bitbucket_signin.standalone import create_app

from ..datacenter import (
    DC_PREFIX,
    INSTANCE,
    Site,
    dc_sign_in,
    grant_dc,
    server_config,
    start_dc_sign_in,
)
from ..frontend_support import (
    APP_ORIGIN,
    AUTH,
    FRONTEND,
    popup_messages,
    published_keys,
    start_params,
    verify,
)
from ..support import (
    JANE,
    FakeClock,
    call_counts,
    csrf_token,
    emulator_requests,
    home_page,
    samples,
    session_contents,
    set_fault,
    sign_in,
)

XHR = {"X-Requested-With": "XMLHttpRequest"}
EMAIL = "emailMatchingUserEntityProfileEmail"
LOCAL_PART = {"resolver": "emailLocalPartMatchingUserEntityName", "allowedDomains": ["example.com"]}


def buttons(page: str) -> list[tuple[str, str]]:
    """(form action, button text) of each sign-in button."""
    forms = re.findall(r'<form method="get" action="([^"]+)".*?<span>([^<]+)</span>', page, re.S)
    return [(action, text.strip()) for action, text in forms]


def test_both_providers_get_a_button_and_routes(
    make_site: Callable[..., Site], bitbucket: EmulatorServer
) -> None:
    site = make_site()
    page = requests.get(f"{site.url}/signin", params={"next": "/x"}, timeout=5)
    assert buttons(page.text) == [
        ("/api/auth/bitbucket/start", "Sign in with Bitbucket Cloud"),
        (f"{DC_PREFIX}/start", f"Sign in with {INSTANCE}"),
    ]
    assert f"Use your Bitbucket Cloud or {INSTANCE} account" in page.text
    assert page.text.count('name="next" value="/x"') == 2
    # Chromium checks form-action on the redirect too: both providers' origins are allowed.
    policy = page.headers["Content-Security-Policy"]
    instance = f"http://localhost:{bitbucket.port}"
    assert f"form-action 'self' {bitbucket.url} {instance};" in policy
    assert f"img-src 'self' https: data: {bitbucket.url} {instance};" in policy


def test_an_https_callback_makes_the_cookie_secure(make_site: Callable[..., Site]) -> None:
    callback = f"https://portal.example.com{DC_PREFIX}/handler/frame"
    assert make_site(BITBUCKET_SERVER_CALLBACK_URL=callback).app.config["SESSION_COOKIE_SECURE"]


def test_data_center_alone(make_site: Callable[..., Site], http: requests.Session) -> None:
    site = make_site(BITBUCKET_CLIENT_ID=None, BITBUCKET_CLIENT_SECRET=None)
    page = requests.get(f"{site.url}/signin", timeout=5)
    assert buttons(page.text) == [(f"{DC_PREFIX}/start", f"Sign in with {INSTANCE}")]
    assert requests.get(f"{site.url}/api/auth/bitbucket/start", timeout=5).status_code == 404


def test_the_whole_flow_records_the_provider_and_refresh_and_logout_follow_it(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    site = make_site()
    authorize_url = start_dc_sign_in(http, site.url, "/dash?tab=1")
    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(
        f"http://localhost:{bitbucket.port}/bitbucket/rest/oauth2/latest/authorize?"
    )
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{site.url}{DC_PREFIX}/handler/frame"]
    answer = http.get(grant_dc(bitbucket, authorize_url, "jane@example.com"), allow_redirects=False)
    assert (answer.status_code, answer.headers["Location"]) == (302, "/dash?tab=1")

    contents = session_contents(site.app, http.cookies.get("session"))
    assert contents["_bitbucket_provider"] == "bitbucketServer"
    assert contents["_bitbucket_profile"]["id"] == 101
    home = home_page(http, site.url)
    assert "Signed in as Jane Doe" in home.text
    assert "<code>jane_example.com</code>" in home.text

    (token_call,) = [e for e in emulator_requests(bitbucket) if e["endpoint"] == "dc-token"]
    assert token_call["client_auth"] == "body"
    assert token_call["code_verifier"] is True
    assert token_call["redirect_uri"] == query["redirect_uri"][0]
    assert token_call["content_type"] == "application/x-www-form-urlencoded"

    mine = http.get(f"{site.url}{DC_PREFIX}/refresh", headers=XHR, timeout=5)
    assert mine.json()["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jdoe"
    assert mine.json()["profile"]["picture"].startswith(f"http://localhost:{bitbucket.port}/")
    clouds = http.get(f"{site.url}/api/auth/bitbucket/refresh", headers=XHR, timeout=5)
    assert clouds.status_code == 401

    out = http.post(
        f"{site.url}{DC_PREFIX}/logout",
        data={"csrf_token": csrf_token(home.text)},
        allow_redirects=False,
        timeout=5,
    )
    assert out.status_code == 303
    assert home_page(http, site.url).status_code == 302


def test_cloud_still_signs_in_next_to_it(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    site = make_site()
    assert sign_in(http, site.url, bitbucket.url, JANE).status_code == 302
    assert (
        session_contents(site.app, http.cookies.get("session"))["_bitbucket_provider"]
        == "bitbucket"
    )
    assert http.get(f"{site.url}{DC_PREFIX}/refresh", headers=XHR, timeout=5).status_code == 401


@pytest.mark.parametrize(
    ("resolvers", "who", "ref"),
    [
        (["userIdMatchingUserEntityAnnotation"], "jane@example.com", "user:default/jdoe"),
        (["userSlugMatchingUserEntityAnnotation"], "lchen", "user:default/lchen"),
        ([EMAIL], "omar", "user:default/omar"),  # Omar@Example.COM is omar@example.com
        ([LOCAL_PART], "omar", "user:default/omar"),
        (
            [
                {
                    "resolver": "userIdMatchingUserEntityAnnotation",
                    "dangerouslyAllowSignInWithoutUserInCatalog": True,
                }
            ],
            "val",
            "user:default/106",
        ),
    ],
)
def test_every_resolver(
    make_site: Callable[..., Site],
    bitbucket: EmulatorServer,
    http: requests.Session,
    resolvers: list[Any],
    who: str,
    ref: str,
) -> None:
    site = make_site(BITBUCKET_SERVER_SIGNIN_RESOLVERS=resolvers)
    assert dc_sign_in(http, site.url, bitbucket, who).status_code == 302
    refresh = http.get(f"{site.url}{DC_PREFIX}/refresh", headers=XHR, timeout=5)
    assert refresh.json()["backstageIdentity"]["identity"]["userEntityRef"] == ref


def test_the_decoy_listed_first_never_takes_the_sign_in(
    make_site: Callable[..., Site],
    bitbucket: EmulatorServer,
    http: requests.Session,
    catalog_file: Path,
) -> None:
    """``users?filter=jane@example.com`` lists Mallory (display name "jane@example.com")
    first; Mallory is in the catalog too: whoever takes the first result signs Jane in as her."""
    catalog_file.write_text(
        catalog_file.read_text()
        + "\n---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: mallory\n"
        '  annotations:\n    localhost/user-id: "66"\nspec:\n  memberOf: []\n',
    )
    site = make_site()
    assert dc_sign_in(http, site.url, bitbucket, "jane@example.com").status_code == 302
    assert "Signed in as Jane Doe" in home_page(http, site.url).text
    paths = [entry["path"] for entry in emulator_requests(bitbucket)]
    assert "/bitbucket/rest/api/latest/users/jane_example.com" in paths
    assert "/bitbucket/rest/api/latest/users/mallory" not in paths
    assert "/bitbucket/rest/api/latest/users/jane@example.com" not in paths


@pytest.mark.parametrize(
    ("who", "text"),
    [
        ("gone", "Your Bitbucket Data Center account is deactivated"),
        ("ci-bot", "Service accounts of Bitbucket Data Center cannot sign in here"),
    ],
)
def test_inactive_and_service_users_never_sign_in(
    make_site: Callable[..., Site],
    bitbucket: EmulatorServer,
    http: requests.Session,
    who: str,
    text: str,
) -> None:
    site = make_site(
        BITBUCKET_SERVER_SIGNIN_RESOLVERS=[
            {
                "resolver": "userIdMatchingUserEntityAnnotation",
                "dangerouslyAllowSignInWithoutUserInCatalog": True,
            }
        ]
    )
    answer = dc_sign_in(http, site.url, bitbucket, who)
    assert answer.status_code == 403
    assert text in answer.text
    assert "_bitbucket_profile" not in session_contents(site.app, http.cookies.get("session"))


def test_not_in_the_catalog_names_the_annotation_to_add(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    answer = dc_sign_in(http, make_site().url, bitbucket, "val")
    assert answer.status_code == 403
    assert "<dt>User id</dt><dd><code>106</code></dd>" in answer.text
    assert "<dt>User slug</dt><dd><code>val</code></dd>" in answer.text
    assert "localhost/user-id: &#34;106&#34;" in answer.text


def test_an_expired_code_says_the_link_expired_start_again(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    site = make_site()
    callback = grant_dc(bitbucket, start_dc_sign_in(http, site.url), "jane@example.com")
    requests.post(f"{bitbucket.url}/_emulator/clock", json={"advance": 11}, timeout=5)
    answer = http.get(callback, allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert "The sign-in link expired" in answer.text
    assert "Please start again from the sign-in page." in answer.text
    assert buttons(answer.text)[1] == (f"{DC_PREFIX}/start", f"Sign in with {INSTANCE}")


@pytest.mark.parametrize(
    ("endpoint", "fault", "status"),
    [
        ("dc-token", {"status": 503}, 503),
        ("dc-token", {"status": 500}, 502),
        ("dc-token", {"status": 200, "body": "{not json"}, 502),
        ("dc-whoami", {"status": 500}, 502),
        ("dc-whoami", {"status": 200, "body": "", "content_type": "text/plain"}, 502),
        ("dc-users", {"status": 429}, 503),
        ("dc-users", {"hang": True}, 504),
        ("dc-user", {"status": 404}, 502),
        ("dc-user", {"status": 503}, 503),
    ],
)
def test_faults_on_each_call(
    make_site: Callable[..., Site],
    bitbucket: EmulatorServer,
    http: requests.Session,
    endpoint: str,
    fault: dict[str, Any],
    status: int,
) -> None:
    site = make_site(BITBUCKET_TIMEOUT=0.5)
    set_fault(bitbucket.url, endpoint, **fault)
    answer = dc_sign_in(http, site.url, bitbucket, "jane@example.com")
    assert answer.status_code == status
    assert "Try again with Acme Bitbucket" in answer.text
    assert "_bitbucket_profile" not in session_contents(site.app, http.cookies.get("session"))


def test_deny_at_the_consent_page(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    site = make_site()
    authorize_url = start_dc_sign_in(http, site.url)
    denied = requests.post(
        authorize_url.replace(f"localhost:{bitbucket.port}", f"127.0.0.1:{bitbucket.port}").split(
            "?"
        )[0],
        data={
            **{k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()},
            "action": "deny",
        },
        allow_redirects=False,
        timeout=5,
    )
    answer = http.get(denied.headers["Location"], allow_redirects=False, timeout=5)
    assert answer.status_code == 403
    assert "You chose not to let this site use your Bitbucket account" in answer.text


def test_hostile_state_and_next(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    site = make_site()
    # A Cloud sign-in's state is no Data Center state, and the other way round.
    cloud_start = http.get(f"{site.url}/api/auth/bitbucket/start", allow_redirects=False, timeout=5)
    cloud_state = parse_qs(urlsplit(cloud_start.headers["Location"]).query)["state"][0]
    crossed = http.get(
        f"{site.url}{DC_PREFIX}/handler/frame",
        params={"code": "x", "state": cloud_state},
        timeout=5,
    )
    assert crossed.status_code == 400
    forged = http.get(
        f"{site.url}{DC_PREFIX}/handler/frame", params={"code": "x", "state": "forged"}, timeout=5
    )
    assert forged.status_code == 400
    assert not [e for e in emulator_requests(bitbucket) if e["endpoint"] == "dc-token"]
    # A hostile next lands on this site; the callback works once.
    callback = grant_dc(
        bitbucket, start_dc_sign_in(http, site.url, "//evil.example/x"), "jane@example.com"
    )
    first = http.get(callback, allow_redirects=False, timeout=10)
    assert (first.status_code, first.headers["Location"]) == (302, "/")
    assert http.get(callback, allow_redirects=False, timeout=10).status_code == 400


def test_pkce_verifier_is_the_challenges_and_fresh_each_time(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    """The emulator refuses a verifier that does not answer the S256 challenge: two sign-ins
    succeed with two different challenges."""
    site = make_site()
    challenges = []
    for _ in range(2):
        authorize_url = start_dc_sign_in(http, site.url)
        challenges.append(parse_qs(urlsplit(authorize_url).query)["code_challenge"][0])
        answer = http.get(
            grant_dc(bitbucket, authorize_url, "jane@example.com"), allow_redirects=False
        )
        assert answer.status_code == 302
    assert challenges[0] != challenges[1]
    assert all(
        len(base64.urlsafe_b64decode(c + "=")) == len(hashlib.sha256().digest()) for c in challenges
    )


def test_start_up_refusals_name_the_setting(
    bitbucket: EmulatorServer, app_config: dict[str, Any]
) -> None:
    config = {**app_config, **server_config(bitbucket)}
    with pytest.raises(
        ConfigError,
        match=r"^BITBUCKET_SERVER_SIGNIN_RESOLVERS: Sign-in resolver 'nope' is not available$",
    ):
        create_app({**config, "BITBUCKET_SERVER_SIGNIN_RESOLVERS": ["nope"]})
    with pytest.raises(ConfigError, match=r"^BITBUCKET_SERVER_CLIENT_SECRET is not set$"):
        create_app({**config, "BITBUCKET_SERVER_CLIENT_SECRET": ""})


def test_metrics_and_the_rate_limit_count_data_center_too(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    site = make_site(BITBUCKET_METRICS_PATH="/metrics", BITBUCKET_RATE_LIMIT="3 per minute")
    before = samples(requests.get(f"{site.url}/metrics", timeout=10).text)
    assert dc_sign_in(http, site.url, bitbucket, "jane@example.com").status_code == 302
    after = samples(requests.get(f"{site.url}/metrics", timeout=10).text)
    calls = call_counts(after) - call_counts(before)
    assert calls == {"token": 1, "whoami": 1, "user search": 1, "user": 1}
    count = ("bitbucket_signin_callback_seconds_count", ())
    assert after[count] - before.get(count, 0) == 1
    starts = [
        http.get(f"{site.url}{DC_PREFIX}/start", allow_redirects=False, timeout=5).status_code
        for _ in range(3)
    ]
    assert starts == [302, 302, 429]  # the sign-in above was the first start of the minute


def test_the_cli_resolves_a_data_center_account(make_site: Callable[..., Site]) -> None:
    runner = make_site().app.test_cli_runner()
    jane = ["--id", "101", "--name", "jane@example.com", "--slug", "jane_example.com"]
    found = runner.invoke(args=["bitbucket-signin", "resolve-server", *jane])
    assert found.exit_code == 0
    assert found.output.splitlines() == [
        "1. userIdMatchingUserEntityAnnotation",
        '   looked for: annotation localhost/user-id "101"',
        "   found: user:default/jdoe",
        "signs in as user:default/jdoe",
        "ownership refs: group:default/payments, group:default/platform, user:default/jdoe",
    ]
    val = ["--id", "106", "--name", "val", "--slug", "val"]
    missing = runner.invoke(args=["bitbucket-signin", "resolve-server", *val])
    assert missing.exit_code == 1
    assert 'localhost/user-id: "106"' in missing.output


def test_the_backstage_frontend_protocol_and_the_identity_token(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    """A Backstage frontend signs in through Data Center's popup, gets an identity token that
    the keys published for the whole site verify, and refreshes it with CORS."""
    site = make_site(**FRONTEND)
    started = http.get(
        f"{site.url}{DC_PREFIX}/start", params=start_params(), allow_redirects=False, timeout=5
    )
    callback = grant_dc(bitbucket, started.headers["Location"], "jane@example.com")
    origin, message = popup_messages(http.get(callback, allow_redirects=False, timeout=10))
    assert origin == APP_ORIGIN
    identity = message["response"]["backstageIdentity"]
    assert identity["identity"]["userEntityRef"] == "user:default/jdoe"
    # Data Center was asked for no scope (not Cloud's "account email"): only the frontend's.
    assert message["response"]["providerInfo"]["scope"] == "account"
    token = verify(
        identity["token"], published_keys(site.url), issuer=f"{site.url}{AUTH}", now=1000.0
    )
    assert token.claims["sub"] == "user:default/jdoe"
    again = http.get(
        f"{site.url}{DC_PREFIX}/refresh?optional&env=development",
        headers={**XHR, "Origin": APP_ORIGIN},
        timeout=5,
    )
    assert again.status_code == 200
    assert again.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert again.json()["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jdoe"
    for route, method in (("refresh", "POST"), ("logout", "POST")):
        preflight = requests.options(
            f"{site.url}{DC_PREFIX}/{route}",
            headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": method},
            timeout=5,
        )
        assert preflight.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    out = http.post(
        f"{site.url}{DC_PREFIX}/logout", headers={**XHR, "Origin": APP_ORIGIN}, timeout=5
    )
    assert (out.status_code, out.text) == (200, "")
    assert out.headers["Access-Control-Allow-Origin"] == APP_ORIGIN


def test_data_centers_session_duration_applies_to_its_sign_ins_only(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, clock: FakeClock
) -> None:
    site = make_site(BITBUCKET_SERVER_SESSION_DURATION="1h")
    with requests.Session() as dc_person, requests.Session() as cloud_person:
        assert dc_sign_in(dc_person, site.url, bitbucket, "jane@example.com").status_code == 302
        assert sign_in(cloud_person, site.url, bitbucket.url, JANE).status_code == 302
        clock.advance(30 * 60)
        assert home_page(dc_person, site.url).status_code == 200
        clock.advance(31 * 60)
        assert home_page(dc_person, site.url).status_code == 302  # signed out: over an hour
        assert home_page(cloud_person, site.url).status_code == 200


def test_redis_sessions_sign_a_data_center_person_out_everywhere(
    make_site: Callable[..., Site], bitbucket: EmulatorServer, redis_url: str
) -> None:
    """Sessions of a Data Center sign-in live as long as signed-in sessions (not as pending
    ones) and are indexed by the person, ``bitbucketServer:<id>``."""
    site = make_site(
        BITBUCKET_SESSION_REDIS_URL=redis_url,
        BITBUCKET_SERVER_SIGNIN_RESOLVERS=[
            "userIdMatchingUserEntityAnnotation",
            "userSlugMatchingUserEntityAnnotation",
        ],
    )
    laptop, phone, colleague = requests.Session(), requests.Session(), requests.Session()
    for browser, who in (
        (laptop, "jane@example.com"),
        (phone, "jane@example.com"),
        (colleague, "lchen"),
    ):
        assert dc_sign_in(browser, site.url, bitbucket, who, "/").status_code == 302
    index = redis.Redis.from_url(redis_url).ttl(f"{PERSON_PREFIX}bitbucketserver:101")
    assert 8 * 3600 < index <= 8 * 3600 + 60  # the idle timeout, as for any signed-in session
    page = home_page(laptop, site.url).text
    laptop.post(
        f"{site.url}/api/auth/bitbucket/logout/everywhere", data={"csrf_token": csrf_token(page)}
    )
    assert home_page(phone, site.url).status_code == 302
    assert home_page(colleague, site.url).status_code == 200
    assert get_extension(site.app).sign_out_everywhere("bitbucketServer:102") == 1
    assert home_page(colleague, site.url).status_code == 302


def test_the_audit_log_names_the_provider_and_the_account(
    make_site: Callable[..., Site],
    bitbucket: EmulatorServer,
    http: requests.Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = make_site()
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    assert dc_sign_in(http, site.url, bitbucket, "jane@example.com").status_code == 302
    with requests.Session() as service_account:
        assert dc_sign_in(service_account, site.url, bitbucket, "ci-bot").status_code == 403
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    fields = [(r["outcome"], r["reason"], r["provider"], r["user_id"], r["uuid"]) for r in records]
    assert fields == [
        ("success", "", "bitbucketServer", "bitbucketServer:101", None),
        ("refused", "ServiceAccount", None, None, None),  # refused before its profile
    ]
