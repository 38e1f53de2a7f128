#!/usr/bin/env bash
# Sets up and runs every benchmark: prints a table, writes BENCHMARKS.md and
# bench/benchmarks.png, and exits 1 when a target is missed. --quick: a short smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --test
.venv/bin/python -m pip install --quiet -e ".[test,bench]"
exec .venv/bin/python -m bench.run "$@"
