"""An app factory with its own password login, its own templates and Bitbucket sign-in beside
them: ``gunicorn --chdir examples/factory 'portal:create_app()'``.

The app's ``LoginManager``, ``login_view`` and ``user_loader`` stay its own: the extension
loads only the sessions its sign-in started and leaves every other one to ``load_user``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from werkzeug.security import check_password_hash, generate_password_hash

from bitbucket_signin import BitbucketSignIn, CatalogUser
from bitbucket_signin.security import csrf_token_is_valid

login_manager = LoginManager()
login_manager.login_view = "login"  # the app's own page, which links to Bitbucket sign-in
signin = BitbucketSignIn()


class LocalUser(UserMixin):  # type: ignore[misc]
    """Someone with a password of this app (a database row in a real one)."""

    def __init__(self, name: str, password_hash: str) -> None:
        self.id = f"local:{name}"
        self.display_name = name
        self.password_hash = password_hash


LOCAL_USERS = {"admin": LocalUser("admin", generate_password_hash("correct horse battery"))}


@login_manager.user_loader  # type: ignore[untyped-decorator]
def load_user(user_id: str) -> LocalUser | None:
    return next((user for user in LOCAL_USERS.values() if user.id == user_id), None)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app, configured from ``FLASK_*`` environment variables, then ``config``."""
    app = Flask(__name__)
    app.config.from_prefixed_env()
    app.config.update(config or {})
    login_manager.init_app(app)
    signin.init_app(app)  # after the app's LoginManager: it is kept as it is

    @app.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        error = None
        if request.method == "POST":
            if not csrf_token_is_valid():  # the extension's per-session token guards this form
                abort(400)
            user = LOCAL_USERS.get(request.form.get("username", ""))
            if user and check_password_hash(user.password_hash, request.form.get("password", "")):
                login_user(user)
                return redirect(url_for("home"))
            error = "Wrong name or password."
        return render_template("login.html", error=error, next=request.args.get("next", "/"))

    @app.post("/logout")
    def logout() -> ResponseReturnValue:
        if not csrf_token_is_valid():
            abort(400)
        logout_user()
        return redirect(url_for("login"))

    @app.get("/")
    @login_required  # type: ignore[untyped-decorator]
    def home() -> str:
        how = "Bitbucket" if isinstance(current_user, CatalogUser) else "password"
        return render_template("index.html", how=how)

    return app
