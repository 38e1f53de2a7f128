"""``TRUSTED_HOSTS`` is what decides which Host may become the ``redirect_uri``: checked by
our own code, and by a Flask that knows the setting (3.1 and later, required)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from packaging.requirements import Requirement

from bitbucket_signin.app_extension import get_extension
from bitbucket_signin.errors import SignInError
from bitbucket_signin.views import _callback_url

from ..support import serve

ROOT = Path(__file__).parents[2]
TRUSTED = ["portal.test", ".corp.test"]
CALLBACK_PATH = "/api/auth/bitbucket/handler/frame"


@pytest.mark.parametrize(
    ("host", "redirect_uri"),
    [
        ("portal.test", f"http://portal.test{CALLBACK_PATH}"),
        ("portal.test:8443", f"http://portal.test:8443{CALLBACK_PATH}"),
        ("sso.corp.test", f"http://sso.corp.test{CALLBACK_PATH}"),
        ("evil.test", None),
        ("portal.test.evil.test", None),
        ("evilportal.test", None),
        ("127.0.0.1", None),  # loopback is no exception once TRUSTED_HOSTS is set
    ],
)
def test_only_a_trusted_host_becomes_the_redirect_uri(
    make_app: Callable[..., Flask], host: str, redirect_uri: str | None
) -> None:
    """Over HTTP, with ``TRUSTED_HOSTS`` set and no callback URL configured."""
    with serve(make_app(TRUSTED_HOSTS=TRUSTED)) as live_app:
        response = requests.get(
            f"{live_app}/api/auth/bitbucket/start",
            headers={"Host": host},
            allow_redirects=False,
        )
    if redirect_uri is None:
        assert response.status_code == 400
        assert host not in response.headers.get("Location", "")
        return
    assert response.status_code == 302
    assert parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"] == [redirect_uri]


@pytest.mark.parametrize("host", ["evil.test", "portal.test.evil.test", "localhost"])
def test_our_own_check_refuses_an_untrusted_host(make_app: Callable[..., Flask], host: str) -> None:
    """As on a Flask that does not enforce ``TRUSTED_HOSTS`` itself (3.0 ignored it): the
    setting alone is not taken for "every host is trusted"."""
    app = make_app()
    with app.test_request_context("/api/auth/bitbucket/start", headers={"Host": host}):
        app.config["TRUSTED_HOSTS"] = TRUSTED  # set, but not seen by Flask for this request
        with pytest.raises(SignInError) as refused:
            _callback_url(get_extension().provider("bitbucket"))
    assert refused.value.status == 400


def test_flask_that_enforces_trusted_hosts_is_required() -> None:
    """``TRUSTED_HOSTS`` exists from Flask 3.1: an older Flask cannot be installed with us."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [flask] = [
        Requirement(text)
        for text in project["project"]["dependencies"]
        if Requirement(text).name == "flask"
    ]
    assert not flask.specifier.contains("3.0.3")
    assert flask.specifier.contains(version("flask"))
