"""``gunicorn wsgi:app`` with several workers and the emulator as its own process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import requests

from ..processes import app_environment, emulator_process, gunicorn_app, run_wsgi
from ..support import DATA, JANE, SECRET_KEY, sign_in


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    catalog = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    shutil.copy(DATA / "catalog.yaml", catalog)
    with (
        emulator_process(DATA / "accounts.yaml") as emulator_url,
        gunicorn_app(app_environment(emulator_url, catalog), workers=3) as app_url,
    ):
        yield app_url, emulator_url


def test_session_holds_in_every_worker(deployment: tuple[str, str]) -> None:
    app_url, emulator_url = deployment
    with requests.Session() as http:
        assert sign_in(http, app_url, emulator_url, JANE).status_code == 302
        for _ in range(30):
            # A new connection each time, so gunicorn spreads the requests over its workers.
            response = requests.get(f"{app_url}/", cookies=http.cookies, allow_redirects=False)
            assert response.status_code == 200
            assert "Signed in as Jane Doe" in response.text
        assert response.headers["Cache-Control"] == "no-store"


def test_signin_page_served(deployment: tuple[str, str]) -> None:
    app_url, _ = deployment
    page = requests.get(f"{app_url}/signin", timeout=5)
    assert page.status_code == 200
    assert "Sign in with Bitbucket" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("environment", "line"),
    [
        ({}, "SECRET_KEY is not set: sessions cannot be signed without it"),
        (
            {"FLASK_SECRET_KEY": SECRET_KEY},
            "Neither BITBUCKET_CLIENT_ID (Bitbucket Cloud) nor BITBUCKET_SERVER_URL "
            "(Bitbucket Data Center) is set: set one, or both",
        ),
    ],
)
def test_wsgi_refuses_to_start_with_one_line(environment: dict[str, str], line: str) -> None:
    result = run_wsgi(environment)
    assert result.returncode == 1
    assert result.stderr == f"bitbucket-signin: {line}\n"
