#!/usr/bin/env bash
# Installs what the tests need (system packages, .venv with the test extras) and runs the
# linter and every test, the slow ones included. CI runs exactly this (.ci/run).
# Extra arguments go to pytest, e.g.: bash scripts/test.sh -k doctor
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ASSISTANT_VENV:-$repo/.venv}"

bash "$repo/scripts/install.sh" --test

cd "$repo"
echo ">> ruff check"
"$venv/bin/ruff" check .
echo ">> pytest (all tests, slow ones included)"
"$venv/bin/python" -m pytest -m "slow or not slow" -p no:cacheprovider "$@"
