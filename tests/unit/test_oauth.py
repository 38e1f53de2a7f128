"""oauth.py: Authlib's client set up for Bitbucket, and the code swapped for a token with every
failure turned into a status, against a stand-in token endpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, g
from werkzeug.datastructures import Authorization

from bitbucket_signin.config import load_settings
from bitbucket_signin.errors import SignInError, UpstreamError
from bitbucket_signin.oauth import PROVIDER, STALE_LINK, bitbucket_oauth_app, exchange_code
from bitbucket_signin.waiting import Deadline

from ..processes import free_port
from ..support import AUTHORIZE_PATH, CLIENT_ID, CLIENT_SECRET, SECRET_KEY, TOKEN_PATH
from .conftest import unit_config
from .fake_bitbucket import FakeBitbucket

CALLBACK = "http://127.0.0.1:5000/api/auth/bitbucket/handler/frame"
VERIFIER = "v" * 48
TOKEN = {"access_token": "the-access-token", "token_type": "bearer", "expires_in": 7200}


def oauth_app(bitbucket_url: str, **config: Any) -> Any:
    settings = load_settings(unit_config(bitbucket_url, **config))
    return bitbucket_oauth_app(settings, "unit-tests/1")


@pytest.fixture
def callback() -> Iterator[None]:
    """A callback request carrying code ``c`` and state ``s``, with ``s`` pending in its session."""
    app = Flask(__name__)
    app.secret_key = SECRET_KEY
    with app.test_request_context("/cb?code=c&state=s"):
        yield


def pend(app: Any, state: str = "s") -> None:
    app.save_authorize_data(state=state, code_verifier=VERIFIER, redirect_uri=CALLBACK)


def swap(app: Any, seconds: float = 5) -> dict[str, Any]:
    return exchange_code(app, Deadline(seconds))


def refusal(app: Any, seconds: float = 5) -> SignInError:
    with pytest.raises(SignInError) as refused:
        swap(app, seconds)
    return refused.value


@pytest.mark.usefixtures("callback")
def test_the_code_is_swapped_with_basic_auth_and_the_verifier(upstream: FakeBitbucket) -> None:
    upstream.answer(TOKEN_PATH, TOKEN)
    app = oauth_app(upstream.url)
    pend(app)
    assert swap(app)["access_token"] == "the-access-token"
    [call] = upstream.seen
    assert call.form == {
        "grant_type": "authorization_code",
        "code": "c",
        "redirect_uri": CALLBACK,
        "code_verifier": VERIFIER,
    }
    basic = Authorization.from_header(call.headers["Authorization"])
    assert basic is not None
    assert (basic.type, basic.username, basic.password) == ("basic", CLIENT_ID, CLIENT_SECRET)
    assert g.get(f"_oauth_token_{PROVIDER}") is None  # Authlib's copy is dropped


@pytest.mark.usefixtures("callback")
@pytest.mark.parametrize("pending", [None, "another-state"])
def test_a_state_not_pending_here_is_a_stale_link(
    upstream: FakeBitbucket, pending: str | None
) -> None:
    upstream.answer(TOKEN_PATH, TOKEN)
    app = oauth_app(upstream.url)
    if pending:
        pend(app, pending)
    error = refusal(app)
    assert (error.status, error.message) == (400, STALE_LINK)
    assert upstream.seen == []


@pytest.mark.usefixtures("callback")
@pytest.mark.parametrize(
    ("status", "body", "shown", "message"),
    [
        (429, {"error": "x"}, 503, "Bitbucket is limiting requests right now (token exchange"),
        (500, "oops", 502, "Bitbucket answered with an error (token exchange: HTTP 500)."),
        (503, "", 503, "Bitbucket is temporarily unavailable (token exchange: HTTP 503)."),
        (400, {"error": "invalid_grant"}, 502, "Bitbucket refused the sign-in (token exchange: "),
        (
            200,
            {"error": "invalid_grant"},
            502,
            "refused the sign-in (token exchange: invalid_grant)",
        ),
        (401, {"message": "no"}, 502, "refused the sign-in (token exchange: HTTP 401)."),
        (400, "<html>no</html>", 502, "Bitbucket sent a malformed answer (token exchange)."),
        (200, [TOKEN], 502, "Bitbucket sent an answer of the wrong shape (token exchange)."),
        (200, {"token_type": "bearer"}, 502, "Bitbucket sent no access token (token exchange)."),
        (200, {**TOKEN, "access_token": ""}, 502, "sent no access token (token exchange)."),
    ],
)
def test_every_failed_token_answer_is_a_status(
    upstream: FakeBitbucket, status: int, body: Any, shown: int, message: str
) -> None:
    upstream.answer(TOKEN_PATH, body, status)
    app = oauth_app(upstream.url)
    pend(app)
    error = refusal(app)
    assert isinstance(error, UpstreamError)
    assert error.status == shown
    assert message in error.message


@pytest.mark.usefixtures("callback")
def test_a_redirect_from_the_token_endpoint_is_not_followed(upstream: FakeBitbucket) -> None:
    upstream.answer(TOKEN_PATH, "", 307, Location=f"{upstream.url}/elsewhere")
    app = oauth_app(upstream.url)
    pend(app)
    assert "redirect, which is not followed (token exchange)" in refusal(app).message
    assert upstream.paths() == [TOKEN_PATH]


@pytest.mark.usefixtures("callback")
@pytest.mark.parametrize(
    ("endpoint", "status", "message"),
    [
        ("held", 504, "Bitbucket did not answer in time (token exchange)."),
        ("closed", 502, "Bitbucket could not be reached (token exchange)."),
    ],
)
def test_a_token_endpoint_that_cannot_answer(
    upstream: FakeBitbucket, endpoint: str, status: int, message: str
) -> None:
    upstream.hold(TOKEN_PATH)
    url = upstream.url if endpoint == "held" else f"http://127.0.0.1:{free_port()}"
    app = oauth_app(url, BITBUCKET_TIMEOUT=0.3)
    pend(app)
    error = refusal(app)
    assert (error.status, error.message) == (status, message)


@pytest.mark.usefixtures("callback")
def test_a_passed_deadline_makes_no_call(upstream: FakeBitbucket) -> None:
    upstream.answer(TOKEN_PATH, TOKEN)
    app = oauth_app(upstream.url)
    pend(app)
    assert refusal(app, seconds=0).status == 504
    assert upstream.seen == []


@pytest.mark.usefixtures("callback")
def test_the_authorize_url_asks_for_account_email_and_the_scopes_once_with_s256() -> None:
    app = oauth_app("http://127.0.0.1:9", BITBUCKET_SCOPES=["repository", "email", "account"])
    authorization = app.create_authorization_url(CALLBACK)
    url = urlsplit(authorization["url"])
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"http://127.0.0.1:9{AUTHORIZE_PATH}"
    assert query["scope"] == "account email repository"
    assert (query["client_id"], query["redirect_uri"]) == (CLIENT_ID, CALLBACK)
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == authorization["state"]
    assert "client_secret" not in query


def test_authlib_never_logs_the_verifier(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("authlib.integrations.base_client.sync_app")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        logger.debug("fetch token with code_verifier=%s", VERIFIER)
        logger.debug("redirect to the authorize page")
    assert [record.getMessage() for record in caplog.records] == ["redirect to the authorize page"]
