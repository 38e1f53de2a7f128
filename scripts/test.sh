#!/usr/bin/env bash
# Sets up and runs every check: ruff, mypy (strict) and the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
