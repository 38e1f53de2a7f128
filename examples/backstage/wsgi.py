"""A portal whose sign-in is configured by a Backstage ``app-config.yaml``, for gunicorn:

    gunicorn --chdir examples/backstage wsgi:app

``FLASK_BITBUCKET_APP_CONFIG`` names another app-config; the catalog is
``FLASK_BITBUCKET_CATALOG``. A misconfiguration stops start-up with one line.
"""

from pathlib import Path
from typing import Any

from flask import Flask
from flask_login import current_user, login_required

from bitbucket_signin import BitbucketSignIn, ConfigError

app = Flask(__name__)
app.config["BITBUCKET_APP_CONFIG"] = str(Path(__file__).with_name("app-config.yaml"))
app.config.from_prefixed_env()
try:
    BitbucketSignIn(app)
except ConfigError as error:
    raise SystemExit(f"portal: {error}") from None


@app.get("/")
@login_required  # type: ignore[untyped-decorator]
def identity() -> dict[str, Any]:
    """Who is signed in, as Backstage's identity API says it."""
    return {
        "userEntityRef": current_user.user_entity_ref,
        "ownershipEntityRefs": list(current_user.ownership_entity_refs),
    }
