#!/usr/bin/env bash
# Re-lock the dependencies: resolve pyproject.toml (all extras) into requirements.lock, exact versions
# with hashes for every platform (universal) and Python >= 3.11. Run it after changing dependencies in
# pyproject.toml; tests/test_lock.py fails until you do. Needs uv (scripts/setup.sh installs it in .venv)
# and the package index; versions already in requirements.lock are kept where they still fit
# (`bash scripts/lock.sh --upgrade` moves everything to the newest allowed versions).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-$( [ -x .venv/bin/uv ] && echo .venv/bin/uv || echo uv )}
"$UV" pip compile pyproject.toml --all-extras --universal --python-version 3.11 --generate-hashes \
  --custom-compile-command "bash scripts/lock.sh" --quiet -o requirements.lock "$@"
