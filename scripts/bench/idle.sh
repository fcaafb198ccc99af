#!/usr/bin/env bash
# The agent at rest: RSS and CPU of a stack's agent supervising 50 replicas
# of a tiny image (busybox-static `sleep`) on Docker, after the converge.
#   scripts/bench/idle.sh [REPLICAS] [SECONDS]     (default 50 60)
# Goal: ≤ 20 MB RSS and ≤ 1% of one core. Release build (TUG_BIN picks
# another binary).
set -euo pipefail
cd "$(dirname "$0")/../.."
replicas=${1:-50}
secs=${2:-60}
bash scripts/engine.sh >/dev/null
if [ -z "${TUG_BIN:-}" ]; then
  cargo build --release -q -p tug
  TUG_BIN=$PWD/target/release/tug
fi
tug=$TUG_BIN
work=$(mktemp -d)
export TUG_STATE_DIR=$work/state
name=tugidle$$
bash scripts/sleep-stack.sh "$name" "$replicas" "$work/tug.yaml"
trap '"$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$tug" -f "$work/tug.yaml" up -d >/dev/null
pid=$(cat "$TUG_STATE_DIR/$name/agent.pid")
sleep 10   # let the converge's aftermath settle
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
# What the idle agent touches from here on: RSS also counts pages touched
# once (start-up, the converge) and the code the kernel maps around each
# fault, which stay resident until memory is short.
echo 1 >"/proc/$pid/clear_refs"
t0=$(ticks)
sleep "$secs"
t1=$(ticks)
rss_kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
hwm_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
anon_kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
file_kb=$(awk '/^RssFile:/ {print $2}' "/proc/$pid/status")
ref_kb=$(awk '/^Referenced:/ {s += $2} END {print s}' "/proc/$pid/smaps")
threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
cpu=$(echo "scale=3; ($t1 - $t0) * 100 / $hz / $secs" | bc)
running=$(docker ps -q --filter "label=dev.tug.stack=$name" | wc -l)
echo "agent idle with $running replicas over ${secs}s: RSS $((rss_kb / 1024)) MiB (anonymous $((anon_kb / 1024)), file-backed $((file_kb / 1024)); peak $((hwm_kb / 1024)); touched while idle $((ref_kb / 1024))), CPU ${cpu}% of one core, $threads threads"
