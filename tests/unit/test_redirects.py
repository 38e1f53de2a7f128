"""Validation of ``next``: same-origin paths only."""

from __future__ import annotations

import pytest

from bitbucket_signin.redirects import (
    MAX_NEXT_LENGTH,
    bare_origin,
    is_safe_next,
    safe_next,
    url_origin,
)


@pytest.mark.parametrize(
    "value",
    ["/", "/dash?x=1", "/a/b#frag", "/search?q=a%20b", "/a%2Fb", "/@user", "/docs/caf%C3%A9"],
)
def test_same_origin_paths_are_kept(value: str) -> None:
    assert safe_next(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "//evil.test",
        "/\\evil.test",
        "\\\\evil.test",
        "/%09/evil.test",
        "/\t/evil.test",
        "/\n/evil.test",
        "https://evil.test",
        "https:evil.test",
        "javascript:alert(1)",
        "data:text/html,hi",
        "/%2F%2Fevil.test",
        "/%252F%252Fevil.test",
        "/%5Cevil.test",
        "/%EF%BC%8Fevil.test",
        "/\uff0fevil.test",
        "evil.test",
        "",
        "/" + "a" * MAX_NEXT_LENGTH,
        "/%ff",
        None,
        42,
    ],
)
def test_hostile_values_fall_back(value: object) -> None:
    assert not is_safe_next(value)
    assert safe_next(value) == "/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://localhost:3000", "http://localhost:3000"),
        ("HTTPS://Portal.Example.COM:443/", "https://portal.example.com"),
        ("http://127.0.0.1:80/a?b#c", "http://127.0.0.1"),
        ("http://[::1]:7007/x", "http://[::1]:7007"),
        ("https://a.example/x", "https://a.example"),
        ("https://*.example.com", None),
        ("http://localhost:3000@evil.test/", None),
        ("http://localhost:3000\\@evil.test/", None),
        ("http:/\\evil.test", None),
        ("http:evil.test", None),
        ("//evil.test", None),
        ("javascript:alert(1)", None),
        ("http://local\thost:3000", None),
        ("http://bücher.example", None),
        ("http://localhost:99999", None),
        ("null", None),
        (None, None),
    ],
)
def test_url_origin(value: object, expected: str | None) -> None:
    assert url_origin(value) == expected


def test_bare_origin_has_no_path_query_or_fragment() -> None:
    assert bare_origin("https://a.example/") == "https://a.example"
    assert bare_origin("https://a.example/x") is None
    assert bare_origin("https://a.example?x") is None
    assert bare_origin("https://a.example#x") is None
