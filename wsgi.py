"""The app for ``gunicorn wsgi:app``, configured from ``FLASK_*`` environment variables."""

from bitbucket_signin.demo import create_app

app = create_app()
