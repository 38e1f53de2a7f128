"""Both providers clicked through in Chromium: Bitbucket Cloud and Bitbucket Data Center side
by side, the app under gunicorn, the emulator (playing both) as its own process."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Page, Route

from ..datacenter import DC_CLIENT_ID, DC_CLIENT_SECRET, DC_PREFIX, INSTANCE
from ..processes import app_environment, gunicorn_app
from ..support import DATA
from .conftest import RESOLVERS, Contexts
from .pages import (
    WAIT_MS,
    alert_text,
    axe_violations,
    heading,
    horizontal_overflow,
    image_loaded,
    screenshot,
    sign_out,
)

CLOUD_BUTTON = "Sign in with Bitbucket Cloud"
DC_BUTTON = f"Sign in with {INSTANCE}"


@pytest.fixture(scope="module")
def instance_url(emulator_url: str) -> str:
    """Data Center as browsers see it: at ``localhost`` (the catalog says
    ``localhost/user-id``), under the emulator's context path."""
    return f"http://localhost:{urlsplit(emulator_url).port}/bitbucket"


@pytest.fixture(scope="module")
def both_url(emulator_url: str, instance_url: str) -> Iterator[str]:
    """The standalone app with both providers under gunicorn; its Data Center callback is
    registered at the emulator as the link's one redirect URL."""
    environment = app_environment(
        emulator_url,
        DATA / "catalog.yaml",
        SIGNIN_RESOLVERS=RESOLVERS,
        RATE_LIMIT="100000 per minute",
        TIMEOUT="5",
        SERVER_URL=instance_url,
        SERVER_API_URL=f"{emulator_url}/bitbucket",
        SERVER_CLIENT_ID=DC_CLIENT_ID,
        SERVER_CLIENT_SECRET=DC_CLIENT_SECRET,
        SERVER_NAME=INSTANCE,
        PRODUCT_NAME="Acme Developer Portal",
    )
    with gunicorn_app(environment, workers=2) as url:
        link = {
            "secret": DC_CLIENT_SECRET,
            "redirect_url": f"{url}{DC_PREFIX}/handler/frame",
            "name": "Acme Developer Portal",
        }
        requests.put(
            f"{emulator_url}/_emulator/datacenter/links/{DC_CLIENT_ID}", json=link, timeout=5
        ).raise_for_status()
        yield url


@pytest.fixture
def both(browser: Browser, both_url: str, emulator_url: str, instance_url: str) -> Iterator[Page]:
    """A page of a fresh context; every request it makes goes to the app or the emulator."""
    made = Contexts(browser, both_url, emulator_url, instance_url)
    yield made.page()
    foreign = made.close()
    assert not foreign, f"requests to other origins: {foreign}"


def test_both_buttons_sign_in(
    both: Page, both_url: str, emulator_url: str, instance_url: str
) -> None:
    page = both
    page.goto(f"{both_url}/?tab=groups")
    assert page.get_by_role("button", name=CLOUD_BUTTON).is_visible()
    assert page.get_by_role("button", name=DC_BUTTON).is_visible()
    screenshot(page, "datacenter-1-signin")

    page.get_by_role("button", name=CLOUD_BUTTON).click()
    page.wait_for_url(f"{emulator_url}/site/oauth2/authorize?**", timeout=WAIT_MS)
    with page.expect_navigation(timeout=WAIT_MS):
        page.get_by_role("button", name="Grant access as Jane Doe").click()
    assert page.url == f"{both_url}/?tab=groups"
    assert heading(page) == "Signed in as Jane Doe"
    sign_out(page)

    page.goto(f"{both_url}/?tab=groups")
    page.get_by_role("button", name=DC_BUTTON).click()
    page.wait_for_url(f"{instance_url}/rest/oauth2/latest/authorize?**", timeout=WAIT_MS)
    screenshot(page, "datacenter-1-consent")
    with page.expect_navigation(timeout=WAIT_MS):
        page.get_by_role("button", name="Allow as Jane Doe").click()
    assert page.url == f"{both_url}/?tab=groups"
    assert heading(page) == "Signed in as Jane Doe"
    assert "jane_example.com" in page.inner_text("main")
    assert image_loaded(page.locator("img.avatar"))
    screenshot(page, "datacenter-1-home")
    sign_out(page)
    assert page.get_by_role("button", name=DC_BUTTON).is_visible()


def test_a_link_left_too_long_says_start_again(
    both: Page, both_url: str, emulator_url: str, instance_url: str
) -> None:
    page = both
    page.goto(f"{both_url}/signin")
    page.get_by_role("button", name=DC_BUTTON).click()
    page.wait_for_url(f"{instance_url}/rest/oauth2/latest/authorize?**", timeout=WAIT_MS)

    def late(route: Route) -> None:
        """The click gets its code; then 10 s pass before the browser brings it back (a slow
        network, a laptop put to sleep)."""
        answer = route.fetch(max_redirects=0)
        requests.post(f"{emulator_url}/_emulator/clock", json={"advance": 11}, timeout=5)
        route.fulfill(response=answer)

    page.route(f"{instance_url}/rest/oauth2/latest/authorize", late)
    with page.expect_navigation(timeout=WAIT_MS) as navigation:
        page.get_by_role("button", name="Allow as Jane Doe").click()
    assert navigation.value is not None
    assert navigation.value.status == 400
    assert "The sign-in link expired" in alert_text(page)
    screenshot(page, "datacenter-2-expired")
    assert page.get_by_role("button", name=DC_BUTTON).is_visible()


@pytest.mark.parametrize("width", [360, 1280])
def test_two_buttons_are_accessible_and_fit_a_phone(
    browser: Browser, both_url: str, emulator_url: str, instance_url: str, width: int
) -> None:
    made = Contexts(browser, both_url, emulator_url, instance_url)
    page = made.page(width)
    page.goto(f"{both_url}/signin")
    assert axe_violations(page) == []
    assert horizontal_overflow(page) == 0
    screenshot(page, f"signin-two-providers-light-{width}", docs=True)
    page.get_by_role("button", name=DC_BUTTON).click()
    page.wait_for_url(f"{instance_url}/rest/oauth2/latest/authorize?**", timeout=WAIT_MS)
    assert axe_violations(page) == []
    assert horizontal_overflow(page) == 0
    screenshot(page, f"datacenter-consent-light-{width}", docs=True)
    assert not made.close()
