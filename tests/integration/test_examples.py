"""Every example of ``examples/`` served on loopback (the deployment one under gunicorn), signed
in through the emulator over real HTTP."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from bitbucket_signin.emulator import EmulatorServer

from ..processes import ROOT, app_environment, free_port, gunicorn_app
from ..support import (
    CLIENT_ID,
    CLIENT_SECRET,
    JANE,
    LI,
    OMAR,
    SECRET_KEY,
    VAL,
    csrf_token,
    serve,
    sign_in,
)

EXAMPLES = ROOT / "examples"
DEMO_CATALOG = EXAMPLES / "demo" / "catalog.yaml"


def load_example(
    folder: Path, module: str, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Import an example's module from its folder as gunicorn would, configured by
    ``environment``; forgotten again after the test."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, module, raising=False)
    loaded = importlib.import_module(module)
    monkeypatch.setitem(sys.modules, module, loaded)  # removed when the test ends
    return loaded


def test_the_minimal_app(
    bitbucket: EmulatorServer, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = app_environment(bitbucket.url, DEMO_CATALOG)
    minimal = load_example(EXAMPLES / "minimal", "app", environment, monkeypatch)
    with serve(minimal.app) as url:
        assert http.get(f"{url}/", allow_redirects=False).status_code == 302
        assert sign_in(http, url, bitbucket.url, JANE).headers["Location"] == "/"
        assert http.get(f"{url}/").text == "Hello Jane Doe (user:default/jdoe)"
        http.cookies.clear()
        assert sign_in(http, url, bitbucket.url, VAL).status_code == 403


def test_the_factory_keeps_its_password_login_beside_bitbucket(
    bitbucket: EmulatorServer, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = app_environment(bitbucket.url, DEMO_CATALOG)
    portal = load_example(EXAMPLES / "factory", "portal", environment, monkeypatch)
    with serve(portal.create_app()) as url:
        protected = http.get(f"{url}/", allow_redirects=False)
        assert protected.headers["Location"].startswith("/login")  # the app's own login page
        form = http.get(f"{url}/login")
        assert "Sign in with Bitbucket" in form.text
        login = {"username": "admin", "csrf_token": csrf_token(form.text)}
        wrong = http.post(f"{url}/login", data={**login, "password": "guess"})
        assert "Wrong name or password." in wrong.text
        no_token = {"username": "admin", "password": "correct horse battery"}
        assert http.post(f"{url}/login", data=no_token).status_code == 400  # login CSRF
        right = http.post(f"{url}/login", data={**login, "password": "correct horse battery"})
        assert "Hello admin" in right.text
        assert "Signed in with password." in right.text

        with requests.Session() as other:
            assert sign_in(other, url, bitbucket.url, JANE).status_code == 302
            page = other.get(f"{url}/").text
            assert "Signed in with Bitbucket." in page
            assert "user:default/jdoe" in page
            signed_out = other.post(
                f"{url}/api/auth/bitbucket/logout", data={"csrf_token": csrf_token(page)}
            )
            assert signed_out.url.endswith("/signin")
        assert "Hello admin" in http.get(f"{url}/").text  # one person's sign-out, not another's


def test_the_backstage_app_config_deployment(
    bitbucket: EmulatorServer, http: requests.Session
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    environment = {
        "AUTH_BITBUCKET_CLIENT_ID": CLIENT_ID,
        "AUTH_BITBUCKET_CLIENT_SECRET": CLIENT_SECRET,
        "PORTAL_BASE_URL": url,
        **app_environment(bitbucket.url, DEMO_CATALOG),
    }
    del environment["FLASK_BITBUCKET_CLIENT_ID"], environment["FLASK_BITBUCKET_CLIENT_SECRET"]
    environment["FLASK_SECRET_KEY"] = SECRET_KEY
    portal = gunicorn_app(environment, app="wsgi:app", chdir=EXAMPLES / "backstage", url=url)
    with portal:
        # The app-config's resolvers: Jane by user id, Li by username, Omar by email.
        for account, ref in ((JANE, "jdoe"), (LI, "lchen"), (OMAR, "omar")):
            http.cookies.clear()
            assert sign_in(http, url, bitbucket.url, account).status_code == 302
            assert http.get(f"{url}/").json()["userEntityRef"] == f"user:default/{ref}"
        http.close()  # no kept-alive connection for gunicorn to wait on when it stops


def test_the_factorys_own_tests_pass() -> None:
    """The example tests of docs/testing.md: the portal's tests with bitbucket_signin.testing
    and the plugin's emulator, run as their own pytest from the example's folder."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLES / "factory",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
