"""The docs site: every setting in the configuration reference, every page in the menu."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bitbucket_signin import config
from bitbucket_signin.config import DEFAULTS, PREFIX, SETTINGS

from ..support import DOCS, docs_page

ROOT = DOCS.parent


def test_every_setting_the_code_reads_is_described() -> None:
    names = {setting.name for setting in SETTINGS}
    assert len(names) == len(SETTINGS)
    assert all(setting.doc.strip() for setting in SETTINGS)
    assert set(DEFAULTS) == {setting.name for setting in SETTINGS if not setting.required}
    source = Path(config.__file__).read_text(encoding="utf-8")
    named = set(re.findall(r"\{PREFIX\}([A-Z_]+)", source))
    named |= set(re.findall(r'values(?:\[|, )"([A-Z_]+)"', source))
    assert named <= names


def test_the_configuration_page_shows_every_setting_with_its_default() -> None:
    page = docs_page("configuration")
    assert "<!-- settings -->" not in page
    for setting in SETTINGS:
        row = next(
            line for line in page.splitlines() if line.startswith(f"| `{PREFIX}{setting.name}` |")
        )
        assert setting.doc in row
        assert row.endswith(" |")
    assert "| `BITBUCKET_SIGNIN_RESOLVERS` |" in page
    assert '`["userIdMatchingUserEntityAnnotation"]` |' in page
    assert "| `BITBUCKET_CATALOG` | The catalog file, YAML or JSON. |" in page
    assert (
        "| `BITBUCKET_CLIENT_ID` | Bitbucket Cloud's OAuth consumer key: sets Cloud sign-in on. "
        "| none: Cloud is off, and `BITBUCKET_SERVER_URL` must be set |"
    ) in page
    assert "| `BITBUCKET_TIMEOUT` |" in page
    assert "| `10` |" in page


def test_every_page_is_in_the_menu_and_every_menu_entry_is_a_page() -> None:
    site = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert site["docs_dir"] == "docs"

    def pages(entries: list[object]) -> set[str]:
        found: set[str] = set()
        for entry in entries:
            assert isinstance(entry, dict)
            for value in entry.values():
                found |= pages(value) if isinstance(value, list) else {str(value)}
        return found

    assert pages(site["nav"]) == {path.name for path in DOCS.glob("*.md")}
