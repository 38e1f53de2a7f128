"""``gunicorn tests.person_app:app``: the deployment app plus a page of a host app that
calls Bitbucket as the signed-in person (``current_user.bitbucket``)."""

from __future__ import annotations

from flask import Response, jsonify
from flask_login import current_user, login_required

from bitbucket_signin.demo import create_app

app = create_app()


@app.get("/bitbucket/me")
@login_required  # type: ignore[untyped-decorator]
def bitbucket_me() -> Response:
    answer = current_user.bitbucket.get("user")
    return jsonify(status=answer.status_code, uuid=answer.json().get("uuid"))
