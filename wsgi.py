"""The app for ``gunicorn wsgi:app``, configured from ``FLASK_*`` environment variables."""

from bitbucket_signin import ConfigError
from bitbucket_signin.standalone import create_app

try:
    app = create_app()
except ConfigError as error:
    raise SystemExit(f"bitbucket-signin: {error}") from None
