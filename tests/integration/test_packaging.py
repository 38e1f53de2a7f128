"""The sdist and the wheel build cleanly, and the wheel alone, installed into a fresh virtual
environment with its dependencies, signs a person in: templates, static files and py.typed
included."""

from __future__ import annotations

import configparser
import subprocess
import sys
import tarfile
import textwrap
import venv
from pathlib import Path

import pytest

from bitbucket_signin import __version__

from ..support import CLIENT_ID, CLIENT_SECRET, DATA, JANE, SECRET_KEY

ROOT = Path(__file__).parent.parent.parent

# Runs inside the fresh environment: the emulator and an app on loopback, a whole sign-in
# over real HTTP, then the pages and files a browser would ask for.
SIGN_IN = textwrap.dedent(
    """
    import sys
    import requests
    from flask import Flask
    from flask_login import current_user, login_required
    from werkzeug.serving import make_server
    import threading

    import bitbucket_signin
    from bitbucket_signin import BitbucketSignIn
    from bitbucket_signin.emulator import EmulatorServer, load_accounts
    from bitbucket_signin.testing import emulator_settings, sign_in

    site, secret_key, client_id, client_secret, catalog, accounts, account = sys.argv[1:]
    assert bitbucket_signin.__file__.startswith(site), bitbucket_signin.__file__
    with EmulatorServer(load_accounts(accounts)) as emulator:
        app = Flask("installed")
        app.config.update(
            SECRET_KEY=secret_key,
            BITBUCKET_CLIENT_ID=client_id,
            BITBUCKET_CLIENT_SECRET=client_secret,
            BITBUCKET_CATALOG=catalog,
            **emulator_settings(emulator.url),
        )
        BitbucketSignIn(app)
        app.add_url_rule("/", "home", login_required(lambda: current_user.user_entity_ref))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        with requests.Session() as http:
            page = http.get(f"{url}/signin")
            css = http.get(f"{url}/_bitbucket_signin/static/signin.css")
            print(page.status_code, css.status_code, css.headers["Content-Type"])
            print("Sign in with Bitbucket" in page.text)
            print(sign_in(http, url, emulator.url, account).status_code)
            print(http.get(f"{url}/").text)
        server.shutdown()
    """
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build``: the sdist, then the wheel built from the sdist."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return out


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    built = sorted(path.name for path in dist.iterdir())
    assert len(built) == 2
    assert built[0] == f"bitbucket_signin-{__version__}-py3-none-any.whl"
    assert built[1] == f"bitbucket_signin-{__version__}.tar.gz"
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    with tarfile.open(next(dist.glob("*.tar.gz"))) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"templates/bitbucket_signin/signin.html", "static/signin.css"} <= names
    assert not any(name.startswith(("tests/", "bench/", ".venv/")) for name in names)


def test_the_wheel_alone_signs_in_from_a_fresh_environment(dist: Path, tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)  # no system site-packages, no project on the path
    python = environment / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    subprocess.run(  # this pip installs into it; the dependencies come from pip's cache
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert (Path(site) / "bitbucket_signin" / "py.typed").is_file()
    assert (Path(site) / "bitbucket_signin" / "emulator" / "example_accounts.yaml").is_file()
    (entry_points,) = Path(site).glob("bitbucket_signin-*.dist-info/entry_points.txt")
    commands = configparser.ConfigParser()
    commands.read_string(entry_points.read_text())
    assert commands["flask.commands"]["bitbucket-signin"] == "bitbucket_signin.cli:cli"
    result = subprocess.run(
        [
            str(python),
            "-c",
            SIGN_IN,
            site,
            SECRET_KEY,
            CLIENT_ID,
            CLIENT_SECRET,
            str(DATA / "catalog.yaml"),
            str(DATA / "accounts.yaml"),
            JANE,
        ],
        cwd=tmp_path,  # not the repository: nothing of it on sys.path
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "200 200 text/css; charset=utf-8",
        "True",
        "302",
        "user:default/jdoe",
    ]
