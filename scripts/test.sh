#!/usr/bin/env bash
# The one test command: engine up, then format, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/engine.sh --registry
bash scripts/kube-tools.sh
export TUG_REQUIRE_ENGINE=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
