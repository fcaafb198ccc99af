#!/usr/bin/env bash
# The one test command: engine up, then format, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/engine.sh --registry
export TUG_REQUIRE_ENGINE=1

# The reference producer of `.dep-v0` audit data, for the interop tests.
command -v cargo-auditable >/dev/null || cargo install --locked cargo-auditable
export TUG_REQUIRE_TOOLS=1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
