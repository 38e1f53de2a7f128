"""``gunicorn tests.person_app:app``: the deployment app plus pages of a host app that call
Bitbucket as the signed-in person (``current_user.bitbucket``)."""

from __future__ import annotations

from bitbucket_signin.standalone import create_app

from .support import add_bitbucket_pages

app = create_app()
add_bitbucket_pages(app)
