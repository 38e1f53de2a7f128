"""The smallest app with Bitbucket sign-in: one protected page.

Configured from ``FLASK_*`` environment variables (``FLASK_BITBUCKET_CLIENT_ID=…`` sets
``BITBUCKET_CLIENT_ID``); see ``examples/README.md`` for running it against the emulator.
"""

from flask import Flask
from flask_login import current_user, login_required

from bitbucket_signin import BitbucketSignIn

app = Flask(__name__)
app.config.from_prefixed_env()
BitbucketSignIn(app)


@app.get("/")
@login_required  # type: ignore[untyped-decorator]
def home() -> str:
    return f"Hello {current_user.display_name} ({current_user.user_entity_ref})"
