"""A host app with its own password login and LoginManager: adding Bitbucket sign-in keeps
its login page, messages and users, and one LoginManager may serve several apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from flask import Flask, get_flashed_messages, redirect, request
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user

from bitbucket_signin import BitbucketSignIn, CatalogUser
from bitbucket_signin.emulator import EmulatorServer

from ..support import JANE, LI, FakeClock, remove_from_catalog, serve, sign_in

REFRESH = "/api/auth/bitbucket/refresh"
XHR = {"X-Requested-With": "XMLHttpRequest"}
# The app's own accounts; one is named like Jane's Bitbucket uuid (a name anyone could pick).
PASSWORDS = {"ada": "ada-password", JANE: "lookalike-password"}
ORDERS = [
    "app-without-bitbucket",
    "manager-and-loader-before-init-app",
    "loader-after-init-app",
    "manager-after-init-app",
]


class PasswordUser(UserMixin):  # type: ignore[misc]
    def __init__(self, name: str) -> None:
        self.id = name


def set_up_password_login(app: Flask, manager: LoginManager) -> None:
    """The app's own login: its login page, message and user loader."""
    manager.init_app(app)
    manager.login_view = "password_login"
    manager.login_message = "Members only: please log in."
    manager.login_message_category = "warning"

    @manager.user_loader  # type: ignore[untyped-decorator]
    def load_password_user(user_id: str) -> PasswordUser | None:
        return PasswordUser(user_id) if user_id in PASSWORDS else None


def host_app(config: dict[str, Any], order: str, manager: LoginManager | None = None) -> Flask:
    """A tiny app with a password form and a protected ``/whoami``, plus Bitbucket sign-in
    added in the given ``order``."""
    app = Flask(__name__)
    app.config.update(config)
    manager = manager or LoginManager()
    if order == "manager-and-loader-before-init-app":
        set_up_password_login(app, manager)
        BitbucketSignIn(app)
    elif order == "loader-after-init-app":
        manager.init_app(app)
        BitbucketSignIn(app)
        set_up_password_login(app, manager)
    elif order == "manager-after-init-app":
        BitbucketSignIn(app)
        set_up_password_login(app, manager)
    else:
        set_up_password_login(app, manager)

    @app.route("/login", methods=["GET", "POST"])
    def password_login() -> ResponseReturnValue:
        if request.method == "GET":
            flashed = get_flashed_messages(with_categories=True)
            return "".join(f"<p>{category}: {message}</p>" for category, message in flashed)
        name = request.form.get("username", "")
        if PASSWORDS.get(name) != request.form.get("password"):
            return "wrong password", 401
        login_user(PasswordUser(name))
        return redirect("/whoami")

    @app.get("/whoami")
    @login_required  # type: ignore[untyped-decorator]
    def whoami() -> str:
        if isinstance(current_user, CatalogUser):
            return f"bitbucket {current_user.user_entity_ref}"
        return f"password {current_user.get_id()}"

    return app


def password_sign_in(http: requests.Session, url: str, name: str) -> requests.Response:
    form = {"username": name, "password": PASSWORDS[name]}
    return http.post(f"{url}/login", data=form, allow_redirects=False, timeout=10)


def whoami(http: requests.Session, url: str) -> requests.Response:
    return http.get(f"{url}/whoami", allow_redirects=False, timeout=10)


@pytest.fixture
def browsers() -> Iterator[tuple[requests.Session, requests.Session]]:
    with requests.Session() as first, requests.Session() as second:
        yield first, second


@pytest.mark.parametrize("order", ORDERS)
def test_the_apps_own_login_keeps_working_next_to_bitbucket(
    app_config: dict[str, Any],
    bitbucket: EmulatorServer,
    browsers: tuple[requests.Session, requests.Session],
    order: str,
) -> None:
    """Before and after adding the extension, in every order of set-up: the app's login page
    and message stay, its password users are its own, and Bitbucket users sign in too."""
    ada, jane = browsers
    with serve(host_app(app_config, order)) as url:
        anonymous = whoami(ada, url)
        assert anonymous.status_code == 302
        assert anonymous.headers["Location"] == "/login?next=%2Fwhoami"
        assert ada.get(f"{url}/login").text == "<p>warning: Members only: please log in.</p>"
        assert password_sign_in(ada, url, "ada").status_code == 302
        assert whoami(ada, url).text == "password ada"
        if order == "app-without-bitbucket":
            return
        assert ada.get(f"{url}{REFRESH}", headers=XHR).status_code == 401
        assert sign_in(jane, url, bitbucket.url, JANE).status_code == 302
        assert whoami(jane, url).text == "bitbucket user:default/jdoe"
        assert jane.get(f"{url}{REFRESH}", headers=XHR).status_code == 200
        assert whoami(ada, url).text == "password ada"


def test_a_host_account_named_like_a_bitbucket_uuid_stays_a_host_account(
    app_config: dict[str, Any],
    bitbucket: EmulatorServer,
    browsers: tuple[requests.Session, requests.Session],
) -> None:
    """Which loader runs is decided by the profile our sign-in signed into the session, not by
    the shape of the user id: a password account named like Jane's uuid does not become Jane,
    and Jane signing in with Bitbucket does not become that account."""
    lookalike, jane = browsers
    with serve(host_app(app_config, "manager-and-loader-before-init-app")) as url:
        assert password_sign_in(lookalike, url, JANE).status_code == 302
        assert whoami(lookalike, url).text == f"password {JANE}"
        assert lookalike.get(f"{url}{REFRESH}", headers=XHR).status_code == 401
        assert sign_in(jane, url, bitbucket.url, JANE).status_code == 302
        assert whoami(jane, url).text == "bitbucket user:default/jdoe"


@pytest.mark.parametrize("ending", ["session-duration-over", "removed-from-the-catalog"])
def test_an_ended_bitbucket_session_never_falls_through_to_the_apps_loader(
    app_config: dict[str, Any],
    bitbucket: EmulatorServer,
    http: requests.Session,
    catalog_file: Path,
    clock: FakeClock,
    ending: str,
) -> None:
    """When our loader refuses Jane's Bitbucket session, it is over: the app's loader is not
    asked about the same id (the app has an account named like her uuid)."""
    config = {**app_config, "BITBUCKET_SESSION_DURATION": 60, "BITBUCKET_CLOCK": clock}
    with serve(host_app(config, "manager-and-loader-before-init-app")) as url:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
        assert whoami(http, url).text == "bitbucket user:default/jdoe"
        if ending == "removed-from-the-catalog":
            remove_from_catalog(catalog_file, "jdoe", clock)
        else:
            clock.advance(61)
        assert whoami(http, url).status_code == 302
        assert http.get(f"{url}{REFRESH}", headers=XHR).status_code == 401


def test_one_browser_switches_between_the_two_logins(
    app_config: dict[str, Any], bitbucket: EmulatorServer, http: requests.Session
) -> None:
    """A password login on top of a Bitbucket session is the password user (not signed out),
    and a Bitbucket sign-in on top of a password session is the Bitbucket user."""
    with serve(host_app(app_config, "loader-after-init-app")) as url:
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
        assert password_sign_in(http, url, "ada").status_code == 302
        assert whoami(http, url).text == "password ada"
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
        assert whoami(http, url).text == "bitbucket user:default/jdoe"


def catalog_of_li(folder: Path) -> Path:
    """A catalog with only Li, matched by her Bitbucket uuid."""
    li = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "User",
        "metadata": {"name": "li", "annotations": {"bitbucket.org/user-id": LI}},
        "spec": {"profile": {"displayName": "Li Chen"}},
    }
    path = folder / "li.yaml"
    path.write_text(yaml.safe_dump(li), encoding="utf-8")
    return path


def test_one_login_manager_shared_by_two_apps(
    app_config: dict[str, Any],
    bitbucket: EmulatorServer,
    browsers: tuple[requests.Session, requests.Session],
    tmp_path: Path,
) -> None:
    """The app-factory pattern: one module-level LoginManager, two apps with different
    catalogs. Each signs in its own people and keeps them signed in, whichever was made last."""
    shared = LoginManager()
    jane_app = host_app(app_config, "manager-and-loader-before-init-app", shared)
    li_config = {**app_config, "BITBUCKET_CATALOG": str(catalog_of_li(tmp_path))}
    li_app = host_app(li_config, "manager-and-loader-before-init-app", shared)
    jane, li = browsers
    with ExitStack() as stack:
        jane_url, li_url = (stack.enter_context(serve(app)) for app in (jane_app, li_app))
        assert sign_in(jane, jane_url, bitbucket.url, JANE).status_code == 302
        assert sign_in(li, li_url, bitbucket.url, LI).status_code == 302
        for _ in range(2):
            assert whoami(jane, jane_url).text == "bitbucket user:default/jdoe"
            assert whoami(li, li_url).text == "bitbucket user:default/li"
        with requests.Session() as stranger:
            assert sign_in(stranger, li_url, bitbucket.url, JANE).status_code == 403
            assert sign_in(stranger, jane_url, bitbucket.url, LI).status_code == 403
