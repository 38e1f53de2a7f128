"""The docs' code for one's own app, run as written: the ``wsgi.py`` that turns a
ConfigError into one line, and the minimal ``signin.html`` override, over real HTTP."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from bitbucket_signin import BitbucketSignIn
from bitbucket_signin.emulator import EmulatorServer

from ..support import JANE, SECRET_KEY, VAL, block_after, serve, sign_in

YOURAPP = """\
from flask import Flask
from bitbucket_signin import BitbucketSignIn

def create_app():
    app = Flask(__name__)
    app.config.from_prefixed_env()
    BitbucketSignIn(app)
    return app
"""


def test_the_wsgi_py_of_the_docs_says_one_line_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "wsgi.py").write_text(block_after("deployment", "## Your own `wsgi.py`", "python"))
    (tmp_path / "yourapp.py").write_text(YOURAPP)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")} | {
        "FLASK_SECRET_KEY": SECRET_KEY
    }
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "yourapp: Neither BITBUCKET_CLIENT_ID (Bitbucket Cloud) nor BITBUCKET_SERVER_URL "
        "(Bitbucket Data Center) is set: set one, or both\n"
    )


def test_the_minimal_signin_html_of_the_docs_works(
    app_config: dict[str, Any], tmp_path: Path, http: requests.Session, bitbucket: EmulatorServer
) -> None:
    template = tmp_path / "templates" / "bitbucket_signin" / "signin.html"
    template.parent.mkdir(parents=True)
    template.write_text(
        block_after("configuration", "A minimal `templates/bitbucket_signin/signin.html`", "html"),
        encoding="utf-8",
    )
    app = Flask("yourapp", template_folder=str(tmp_path / "templates"))
    app.config.update(app_config, BITBUCKET_PRODUCT_NAME="Your App")
    BitbucketSignIn(app)
    with serve(app) as url:
        page = http.get(f"{url}/signin?next=/reports", timeout=10)
        assert page.status_code == 200
        assert "<h1>Sign in to Your App</h1>" in page.text
        assert '<input type="hidden" name="next" value="/reports">' in page.text
        refused = sign_in(http, url, bitbucket.url, VAL)
        assert refused.status_code == 403
        text = html.unescape(refused.text)
        assert "Ask an administrator to add this to your User entity:" in text
        assert f'bitbucket.org/user-id: "{VAL}"' in text
        assert sign_in(http, url, bitbucket.url, JANE).status_code == 302
