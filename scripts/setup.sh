#!/usr/bin/env bash
# Creates .venv and installs the project into it; with --test also the test tools,
# Chromium, redis-server, npm and the pinned Backstage frontend packages (into a cache
# outside the repository: tests/browser/frontend.py).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install --quiet -e ".[test]"
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)          # the browser tests
  command -v redis-server >/dev/null || missing+=(redis-server)  # the session-store tests
  command -v npm >/dev/null || missing+=(npm)                     # the real Backstage frontend
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Installing ${missing[*]} from Debian's packages"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  .venv/bin/python -m tests.browser.frontend
else
  .venv/bin/python -m pip install --quiet -e .
fi
