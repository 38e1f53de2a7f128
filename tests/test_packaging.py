"""The built wheel carries the pages, static files and py.typed: render the page from an install."""

from __future__ import annotations

import configparser
import subprocess
import sys
import textwrap
from pathlib import Path

from bitbucket_signin import __version__

from .support import DATA, SECRET_KEY

ROOT = Path(__file__).parent.parent

RENDER = textwrap.dedent(
    """
    import sys
    import bitbucket_signin
    from bitbucket_signin.standalone import create_app

    assert bitbucket_signin.__file__.startswith(sys.argv[1]), bitbucket_signin.__file__
    app = create_app({
        "SECRET_KEY": sys.argv[2],
        "BITBUCKET_CLIENT_ID": "id",
        "BITBUCKET_CLIENT_SECRET": "secret",
        "BITBUCKET_CATALOG": sys.argv[3],
    })
    client = app.test_client()
    page = client.get("/signin")
    css = client.get("/_bitbucket_signin/static/signin.css")
    print(page.status_code, css.status_code)
    print(page.get_data(as_text=True))
    """
)


def test_wheel_install_renders_the_signin_page(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("bitbucket_signin-*.whl"))
    assert wheel.name.startswith(f"bitbucket_signin-{__version__}-")
    target = tmp_path / "installed"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "bitbucket_signin" / "py.typed").is_file()
    assert (target / "bitbucket_signin" / "emulator" / "example_accounts.yaml").is_file()
    (entry_points,) = target.glob("bitbucket_signin-*.dist-info/entry_points.txt")
    commands = configparser.ConfigParser()
    commands.read_string(entry_points.read_text())
    assert commands["flask.commands"]["bitbucket-signin"] == "bitbucket_signin.cli:cli"
    result = subprocess.run(
        [sys.executable, "-c", RENDER, str(target), SECRET_KEY, str(DATA / "catalog.yaml")],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    )
    statuses, page = result.stdout.split("\n", 1)
    assert statuses == "200 200"
    assert "Sign in with Bitbucket" in page
    assert "<h1" in page
