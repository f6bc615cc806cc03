#!/usr/bin/env bash
# Set up huescale on a fresh machine: a virtual environment in .venv with the exact versions of
# requirements.lock (hash-checked, installed by uv), then the package itself (editable, --no-deps).
# Idempotent: re-running it only installs what is missing. Needs Python >= 3.11 as python3 (or $PYTHON)
# and the package index (uv's cache, ~/.cache/uv, makes later set-ups take seconds).
# Also installs Debian's chromium (root/sudo only) unless HUESCALE_NO_BROWSER=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
UV_VERSION=0.13.9
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "huescale needs Python >= 3.11")'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# uv installs the locked set in parallel (pip took 3-6 min for the same set)
[ "$(.venv/bin/uv --version 2>/dev/null)" = "uv $UV_VERSION" ] ||
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
# --compile-bytecode: uv does not write .pyc files by default, and with PYTHONDONTWRITEBYTECODE set (CI images)
# nothing else does: every `huescale` start and DVC stage then recompiled ~9 s of imports (measured on 2 cores)
.venv/bin/uv pip install -q --python .venv/bin/python --compile-bytecode --require-hashes -r requirements.lock
.venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
# DVC: no analytics or update checks (offline machines).
if [ -d .dvc ]; then
  .venv/bin/dvc config --local core.analytics false >/dev/null 2>&1 || true
  .venv/bin/dvc config --local core.check_update false >/dev/null 2>&1 || true
fi
# Headless Chromium for the report tests (Debian's package; Playwright drives the system browser).
if [ -z "${HUESCALE_NO_BROWSER:-}" ] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if $SUDO true 2>/dev/null; then
    echo "huescale: installing chromium (apt) for the report browser tests"
    $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  else
    echo "huescale: note: chromium is not installed and apt needs root; the browser tests will be skipped"
  fi
fi
echo "huescale: environment ready in .venv"
