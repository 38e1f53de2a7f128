"""Theming a deployment: product name, logo and colour from config; templates overridden the
usual Flask way (an app's own ``templates/bitbucket_signin/…`` wins)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from flask import Flask
from playwright.sync_api import Page

from bitbucket_signin import BitbucketSignIn

from .conftest import LOGO, THEME
from .pages import heading, image_loaded, screenshot


def test_product_name_logo_and_colour_show(page: Page, app_url: str) -> None:
    page.goto(f"{app_url}/signin")
    product = THEME["PRODUCT_NAME"]
    assert product in page.title()
    assert heading(page) == f"Sign in to {product}"
    assert page.get_by_role("banner").inner_text().strip() == product
    logo = page.locator("header img")
    assert logo.get_attribute("src") == LOGO
    assert image_loaded(logo)
    button = page.get_by_role("button", name="Sign in with Bitbucket")
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(94, 77, 178)"
    assert button.evaluate("b => getComputedStyle(b).color") == "rgb(255, 255, 255)"
    screenshot(page, "theme")


def test_theme_css_carries_the_colour(app_url: str) -> None:
    response = requests.get(f"{app_url}/_bitbucket_signin/theme.css", timeout=10)
    assert response.headers["Content-Type"].startswith("text/css")
    assert f"--brand: {THEME['BRAND_COLOR']};" in response.text


def test_light_brand_colour_gets_dark_text(app_config: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(app_config, BITBUCKET_BRAND_COLOR="#ffc400")
    BitbucketSignIn(app)
    css = app.test_client().get("/_bitbucket_signin/theme.css").get_data(as_text=True)
    assert "--brand: #ffc400; --on-brand: #172b4d;" in css


def test_unthemed_page_says_sign_in(app_config: dict[str, Any]) -> None:
    app = Flask(__name__)
    app.config.update(app_config)
    BitbucketSignIn(app)
    page = app.test_client().get("/signin").get_data(as_text=True)
    assert '<h1 id="signin-title">Sign in</h1>' in page
    assert "<title>Sign in</title>" in page


def test_app_template_overrides_the_packaged_one(
    app_config: dict[str, Any], tmp_path: Path
) -> None:
    override = tmp_path / "bitbucket_signin" / "signin.html"
    override.parent.mkdir()
    override.write_text(
        '{% extends "bitbucket_signin/base.html" %}'
        "{% block content %}<h1>Welcome to the Acme portal</h1>"
        '<a href="{{ start_url }}">Use Bitbucket</a>{% endblock %}'
    )
    app = Flask(__name__, template_folder=str(tmp_path))
    app.config.update(app_config)
    BitbucketSignIn(app)
    response = app.test_client().get("/signin")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Welcome to the Acme portal</h1>" in page
    assert 'href="/api/auth/bitbucket/start"' in page
    assert "signin.css" in page  # the packaged base template still frames it
