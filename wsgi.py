"""The demo and deployment app: ``gunicorn wsgi:app``, configured from ``FLASK_*`` variables."""

from __future__ import annotations

from flask import Flask, render_template
from flask_login import login_required

from bitbucket_signin import BitbucketSignIn, get_state


def create_app(config: dict[str, object] | None = None) -> Flask:
    """An app with sign-in and a protected home page; ``config`` overrides the environment."""
    app = Flask(__name__)
    app.config.from_prefixed_env()
    app.config.update(config or {})
    BitbucketSignIn(app)

    @app.get("/")
    @login_required  # type: ignore[misc]
    def home() -> str:
        return render_template("bitbucket_signin/home.html", settings=get_state().settings)

    return app


app = create_app()
