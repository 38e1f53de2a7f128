#!/usr/bin/env bash
# Sets up and runs every check: ruff, mypy (strict), the docs build (warnings are errors) and
# the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict  # into site/ (--quiet would hide the warnings)
.venv/bin/python -m pytest "$@"
