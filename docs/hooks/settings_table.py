"""MkDocs hook: the configuration page's table of settings, made from the code.

``<!-- settings -->`` in a page becomes a table of :data:`bitbucket_signin.config.SETTINGS`:
each key, what it does and its default, so the docs say what the code does.
"""

from __future__ import annotations

import json
from typing import Any

from bitbucket_signin.config import PREFIX, SETTINGS, Setting

MARKER = "<!-- settings -->"


def default_text(setting: Setting) -> str:
    """The default as the docs show it."""
    if setting.default_doc is not None:
        return setting.default_doc
    if setting.required:
        return "required"
    value = setting.default
    if value is None or value == []:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, list):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def settings_table() -> str:
    """The Markdown table of every setting."""
    rows = [
        f"| `{PREFIX}{setting.name}` | {setting.doc} | {default_text(setting)} |"
        for setting in SETTINGS
    ]
    return "\n".join(["| key | meaning | default |", "|---|---|---|", *rows])


def on_page_markdown(markdown: str, **_: Any) -> str:
    return markdown.replace(MARKER, settings_table())
