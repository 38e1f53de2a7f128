"""Validation of ``next``: same-origin paths only."""

from __future__ import annotations

import pytest

from bitbucket_signin.redirects import MAX_NEXT_LENGTH, is_safe_next, safe_next


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
