#!/usr/bin/env bash
# Runs the cargo-fuzz targets under fuzz/ for a bounded time.
#   scripts/fuzz.sh                 every target, 60 s each
#   scripts/fuzz.sh spec_parse 300  one target, 300 s
# Needs the nightly toolchain; installs cargo-fuzz when missing.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target="${1:-}"
seconds="${2:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi

cd "$root/fuzz"
if [[ -n "$target" ]]; then
    targets=("$target")
else
    mapfile -t targets < <(cargo fuzz list)
fi

status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    echo "==> fuzzing $t for ${seconds}s"
    # New inputs go to corpus/ (ignored by git); seeds/ is read as a second corpus.
    if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "!! $t failed: see fuzz/artifacts/$t/" >&2
        status=1
    fi
done
exit "$status"
