#!/usr/bin/env bash
# Python tools the Kubernetes render tests run: kubernetes-validate (the
# official OpenAPI schemas) and checkov. Idempotent; a venv keeps their pinned
# dependencies away from the system's Python. TUG_KUBE_TOOLS moves it.
set -euo pipefail
venv="${TUG_KUBE_TOOLS:-$HOME/.cache/tug/kube-venv}"
if [ -x "$venv/bin/kubernetes-validate" ] && [ -x "$venv/bin/checkov" ]; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate checkov
"$venv/bin/kubernetes-validate" --version >/dev/null
"$venv/bin/checkov" --version >/dev/null
