"""Headless Debian Chromium against the app under gunicorn and the emulator as its own process.

The processes and the browser start once per session; every test gets fresh browser contexts
(fresh cookies and cache), each recording every request it makes: a request to any origin
other than the app's or the emulator's fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from ..processes import app_environment, emulator_process, gunicorn_app
from ..support import DATA, clear_faults, serve
from .frontend import bundle
from .pages import SCREENSHOTS, WAIT_MS, origin

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOGO = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E"
    "%3Crect width='32' height='32' rx='8' fill='%235e4db2'/%3E"
    "%3Cpath d='M9 23 16 8l7 15h-4l-3-7-3 7z' fill='%23fff'/%3E%3C/svg%3E"
)
THEME = {
    "PRODUCT_NAME": "Acme Developer Portal",
    "LOGO_URL": LOGO,
    "BRAND_COLOR": "#5e4db2",
}
RESOLVERS = (
    "userIdMatchingUserEntityAnnotation,usernameMatchingUserEntityAnnotation,"
    "emailMatchingUserEntityProfileEmail"
)
SESSION_START = time.time()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives the browser."""
    for item in items:
        if item.path.parent.name == "browser":
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the screenshots of this run are."""
    if any(path.stat().st_mtime >= SESSION_START for path in SCREENSHOTS.glob("*.png")):
        terminalreporter.write_sep("-", "browser screenshots")
        terminalreporter.write_line(f"screenshots: {SCREENSHOTS}")


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    """The Bitbucket emulator as its own process."""
    with emulator_process(DATA / "accounts.yaml") as url:
        yield url


def themed_gunicorn(emulator_url: str, **settings: str) -> Iterator[str]:
    """The themed standalone app under gunicorn (3 workers) against the emulator, with
    ``settings`` (``BITBUCKET_`` names without the prefix) on top."""
    environment = app_environment(
        emulator_url,
        DATA / "catalog.yaml",
        SIGNIN_RESOLVERS=RESOLVERS,
        RATE_LIMIT="100000 per minute",  # every test signs in from 127.0.0.1
        **THEME,
        **settings,
    )
    with gunicorn_app(environment, workers=3) as url:
        yield url


@pytest.fixture(scope="session")
def app_url(emulator_url: str) -> Iterator[str]:
    """The standalone app under gunicorn (3 workers), themed, against the emulator."""
    yield from themed_gunicorn(emulator_url, TIMEOUT="5")


@pytest.fixture(scope="session")
def impatient_app_url(emulator_url: str) -> Iterator[str]:
    """The same app giving up on Bitbucket after one second."""
    yield from themed_gunicorn(emulator_url, TIMEOUT="1")


@pytest.fixture(scope="session")
def backstage_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Backstage test page: ``@backstage/core-app-api``'s ``BitbucketAuth``, bundled."""
    return bundle(tmp_path_factory.mktemp("backstage-page"))


def _static_site(directory: Path) -> Flask:
    site = Flask(__name__, static_folder=directory, static_url_path="")
    site.add_url_rule("/", "index", lambda: site.send_static_file("index.html"))
    return site


@pytest.fixture(scope="session")
def frontend_url(backstage_page: Path) -> Iterator[str]:
    """The Backstage app's origin, allowed by :func:`backstage_app_url`."""
    with serve(_static_site(backstage_page)) as url:
        yield url


@pytest.fixture(scope="session")
def foreign_frontend_url(backstage_page: Path) -> Iterator[str]:
    """The same Backstage app on an origin that is not allowed."""
    with serve(_static_site(backstage_page)) as url:
        yield url


@pytest.fixture(scope="session")
def cross_site_frontend_url(frontend_url: str) -> str:
    """The Backstage app's server by another name: an allowed origin on another site."""
    return frontend_url.replace("//127.0.0.1:", "//localhost:")


@pytest.fixture(scope="session")
def backstage_app_url(
    emulator_url: str, frontend_url: str, cross_site_frontend_url: str
) -> Iterator[str]:
    """The app as the auth backend of the Backstage app at :func:`frontend_url` (its
    ``app.baseUrl``; and :func:`cross_site_frontend_url`)."""
    origins = f"{frontend_url},{cross_site_frontend_url}"
    yield from themed_gunicorn(
        emulator_url, TIMEOUT="5", ALLOWED_ORIGINS=origins, APP_BASE_URL=f"{frontend_url}/"
    )


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless; Playwright gives it a fresh temporary profile directory."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000
    )
    yield browser
    browser.close()


@pytest.fixture(autouse=True)
def healthy_bitbucket(emulator_url: str) -> Iterator[None]:
    """No fault survives a test."""
    yield
    clear_faults(emulator_url)


class Contexts:
    """Makes browser contexts that record every request they send."""

    def __init__(self, browser: Browser, *allowed_urls: str) -> None:
        self.browser = browser
        self.allowed = {origin(url) for url in allowed_urls}
        self.contexts: list[BrowserContext] = []
        self.requested: list[str] = []

    def new(self, **options: Any) -> BrowserContext:
        """A fresh context (``browser.new_context`` options) with bounded waits."""
        context = self.browser.new_context(**options)
        context.set_default_timeout(WAIT_MS)
        context.set_default_navigation_timeout(WAIT_MS)
        context.on("request", lambda request: self.requested.append(request.url))
        self.contexts.append(context)
        return context

    def page(self, width: int = 1280, **options: Any) -> Page:
        """A page in a fresh context (no cookies), ``width`` by 800 CSS pixels."""
        return self.new(viewport={"width": width, "height": 800}, **options).new_page()

    def close(self) -> list[str]:
        """Close every context; returns the URLs requested from origins not allowed."""
        for context in self.contexts:
            context.close()
        return [
            url
            for url in self.requested
            if not url.startswith("data:") and origin(url) not in self.allowed
        ]


@pytest.fixture
def contexts(browser: Browser, app_url: str, emulator_url: str) -> Iterator[Contexts]:
    """Browser contexts for one test; at the end every request they made must have gone to
    the app or the emulator (nothing from a CDN, no web fonts)."""
    made = Contexts(browser, app_url, emulator_url)
    yield made
    foreign = made.close()
    assert not foreign, f"requests to other origins: {foreign}"


@pytest.fixture
def page(contexts: Contexts) -> Page:
    """A page in a fresh context, 1280 px wide, light."""
    return contexts.page()
