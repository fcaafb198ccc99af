#!/usr/bin/env bash
# Cache-hit speedup of `tug pipeline run`: a job that builds a small Rust
# workspace with `cache:` on target/ and its CARGO_HOME, run cold (no cache
# entry) and then again with the entry restored, RUNS times; medians.
#
#   scripts/bench/pipeline-cache.sh            # RUNS=3, a debug build of tug
#   TUG=target/release/tug scripts/bench/pipeline-cache.sh
#
# The job runs on the host in a fresh copy of the project (the default
# workspace), as on a CI runner. sccache is off for the job, so the cold
# run really compiles. The workspace has no dependencies: nothing is
# downloaded, and the timing is the build's.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
CRATES=${CRATES:-4}
if [ -z "${TUG:-}" ]; then
  cargo build -q -p tug
  TUG=$PWD/target/debug/tug
fi
TUG=$(realpath "$TUG")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A workspace of $CRATES crates, each with a few hundred generated functions.
P=$WORK/project
mkdir -p "$P"
{
  echo "[workspace]"
  echo "resolver = \"2\""
  printf 'members = ['
  for c in $(seq "$CRATES"); do printf '"crates/c%d", ' "$c"; done
  echo ']'
} >"$P/Cargo.toml"
for c in $(seq "$CRATES"); do
  mkdir -p "$P/crates/c$c/src"
  printf '[package]\nname = "c%d"\nversion = "0.1.0"\nedition = "2021"\n' "$c" >"$P/crates/c$c/Cargo.toml"
  if [ "$c" -gt 1 ]; then printf '\n[dependencies]\nc%d = { path = "../c%d" }\n' $((c - 1)) $((c - 1)) >>"$P/crates/c$c/Cargo.toml"; fi
  {
    for f in $(seq 300); do
      echo "pub fn f$f(x: u64) -> u64 { let v: Vec<u64> = (0..x).map(|i| i.wrapping_mul($f)).collect(); v.iter().sum::<u64>() ^ $f }"
    done
    echo "#[derive(Debug, Clone, PartialEq)] pub struct S$c { pub a: Vec<String>, pub b: std::collections::BTreeMap<u64, String> }"
  } >"$P/crates/c$c/src/lib.rs"
done
cat >"$P/tug.yaml" <<'YAML'
name: benchcache
pipelines:
  ci:
    jobs:
      build:
        env: { CARGO_HOME: .cargo-home, RUSTC_WRAPPER: "", CARGO_INCREMENTAL: "0" }
        cache:
          key: rust
          files: [Cargo.toml, "crates/*/Cargo.toml", "crates/*/src/*.rs"]
          paths: [target, .cargo-home]
        steps: [cargo build --workspace]
YAML
# rustup's proxies find the toolchain without CARGO_HOME; keep them on PATH.
export PATH="$HOME/.cargo/bin:$PATH"

now() { date +%s.%N; }
run() { # -> seconds
  local t0 t1
  t0=$(now)
  (cd "$P" && TUG_STATE_DIR="$WORK/state" "$TUG" pipeline run >"$WORK/last.log" 2>&1) || {
    cat "$WORK/last.log" >&2
    exit 1
  }
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -a COLD HIT
for r in $(seq "$RUNS"); do
  rm -rf "$WORK/state/benchcache/cache"
  c=$(run)
  grep -q "cache miss" "$WORK/last.log" || { echo "the cold run did not miss the cache" >&2; exit 1; }
  h=$(run)
  grep -q "cache hit" "$WORK/last.log" || { echo "the second run did not hit the cache" >&2; exit 1; }
  grep -q "Compiling" "$WORK/last.log" && echo "note: run $r compiled again after a cache hit" >&2
  COLD+=("$c")
  HIT+=("$h")
  printf 'run %d: cold %.2fs, cache hit %.2fs\n' "$r" "$c" "$h"
done
cold=$(printf '%s\n' "${COLD[@]}" | median)
hit=$(printf '%s\n' "${HIT[@]}" | median)
printf 'median: cold %.2fs, cache hit %.2fs, speedup %.1fx (tug %s)\n' "$cold" "$hit" "$(echo "$cold / $hit" | bc -l)" "$TUG"
