"""The apps the benchmark serves under gunicorn: ours, and the floor of any Flask-Login app.

Both answer ``GET /protected`` with the same text for the signed-in person, read the same
signed session cookie (same ``FLASK_SECRET_KEY``), and are configured from ``FLASK_*``
environment variables like ``wsgi.py``.
"""

from __future__ import annotations

import os

from flask import Flask, Response
from flask_login import LoginManager, UserMixin, current_user, login_required

from bitbucket_signin.standalone import create_app


def protected() -> str:
    return f"Hello {current_user.display_name}"


class ConstantUser(UserMixin):  # type: ignore[misc]
    id = "constant"
    display_name = "User 0001"


def constant_app() -> Flask:
    """A Flask-Login app whose user loader returns one constant user, without a lookup."""
    app = Flask(__name__)
    app.secret_key = os.environ["FLASK_SECRET_KEY"]
    manager = LoginManager(app)
    user = ConstantUser()
    manager.user_loader(lambda user_id: user)
    app.add_url_rule("/protected", "protected", login_required(protected))
    return app


def our_app(name_workers: bool = False) -> Flask:
    """The production app (``wsgi.py``'s factory) with the same protected page; with
    ``name_workers``, each answer names the worker that served it (the constant app's
    answers do not, so figure 1 leaves it out)."""
    app = create_app()
    app.add_url_rule("/protected", "protected", login_required(protected))
    if name_workers:
        app.after_request(name_the_worker)
    return app


def name_the_worker(response: Response) -> Response:
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response
