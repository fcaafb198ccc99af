#!/usr/bin/env bash
# Installs schemathesis (PyPI) into its own venv, idempotently; prints the
# path of its binary. SCHEMATHESIS_VENV moves the venv.
set -euo pipefail
venv="${SCHEMATHESIS_VENV:-$HOME/.cache/tug/schemathesis-venv}"
if ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis >&2
  "$venv/bin/schemathesis" --version >/dev/null
fi
echo "$venv/bin/schemathesis"
