"""The docs' security page names tests: each one must exist, and every module here is named."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def security_section() -> str:
    return (ROOT / "docs" / "security.md").read_text(encoding="utf-8")


def named_tests() -> list[tuple[Path, str]]:
    """(file, test) for every ``file.py::test`` and following ``::test`` in the section."""
    named: list[tuple[Path, str]] = []
    current = HERE
    for path, test in re.findall(r"`((?:[\w/]+\.py)?)::(\w+)`", security_section()):
        if path:
            current = ROOT / path if path.startswith("tests/") else HERE / path
        named.append((current, test))
    return named


def test_every_named_test_exists() -> None:
    named = named_tests()
    assert len(named) >= 30
    missing = [
        f"{path.name}::{test}"
        for path, test in named
        if not re.search(rf"^def {test}\(", path.read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert missing == []


def test_every_security_module_is_named() -> None:
    modules = {path.name for path, _ in named_tests()}
    here = {path.name for path in HERE.glob("test_*.py")} - {Path(__file__).name}
    assert here <= modules
