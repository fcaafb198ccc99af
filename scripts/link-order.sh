#!/usr/bin/env bash
# Regenerates crates/tug/link/agent.order, the link order of scripts/dist.sh:
# every function of the tug binary that the agent runs while it starts,
# converges a 10-replica stack on Docker, answers `tug ps` and idles, as
# callgrind (valgrind) records them. The binary must keep its symbols:
#   CARGO_PROFILE_DIST_STRIP=false cargo build --profile dist -p tug
#   TUG_BIN=target/dist/tug scripts/link-order.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/engine.sh >/dev/null
command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
if [ -z "${TUG_BIN:-}" ]; then
  CARGO_PROFILE_DIST_STRIP=false cargo build --profile dist -p tug --locked
  TUG_BIN=${CARGO_TARGET_DIR:-$PWD/target}/dist/tug
fi
tug=$TUG_BIN
if ! nm "$tug" >/dev/null 2>&1; then
  echo "link-order: $tug has no symbols (build it with CARGO_PROFILE_DIST_STRIP=false)" >&2
  exit 1
fi
work=$(mktemp -d)
export TUG_STATE_DIR=$work/state
name=tugorder$$
bash scripts/sleep-stack.sh "$name" 10 "$work/tug.yaml"
trap '"$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# The agent under callgrind; `tug up -d` finds it answering and uses it.
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.out" \
  "$tug" -f "$work/tug.yaml" --runtime docker agent >"$work/valgrind.log" 2>&1 &
for _ in $(seq 1 120); do
  curl -sf --unix-socket "$TUG_STATE_DIR/$name/agent.sock" http://agent/v1/ps >/dev/null && break
  sleep 1
done
"$tug" -f "$work/tug.yaml" up -d >/dev/null
sleep 45 # idle: supervision, a resync
"$tug" -f "$work/tug.yaml" ps >/dev/null
"$tug" -f "$work/tug.yaml" down >/dev/null
wait
python3 - "$work/cg.out" "$tug" "$root/crates/tug/link/agent.order" <<'PY'
import re, subprocess, sys
out, binary, order = sys.argv[1:]
ran = set()
for line in open(out):
    m = re.match(r"c?fn=\(\d+\) (.+)$", line.rstrip("\n"))
    if m:
        ran.add(m.group(1))
defined = set()
for line in subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    p = line.split()
    if len(p) == 3 and p[1] in "tTwW":
        defined.add(p[2])
names = sorted(ran & defined)
open(order, "w").write("\n".join(names) + "\n")
print(f"link-order: {len(names)} functions the agent ran -> {order}")
PY
