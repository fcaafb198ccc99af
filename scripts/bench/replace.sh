#!/usr/bin/env bash
# Time from a replica's death to its replacement answering /health, with the
# agent running: N times `docker kill` (the engine does not restart a
# container killed by hand, so the agent must) and N times `docker rm -f`
# (the agent must recreate it), replicas taken in turn so no backoff builds
# up. Prints the median and the max of each, per tug binary given, so an
# older build (say, the agent that polled every second) runs in the same go.
#   scripts/bench/replace.sh [N] [TUG_BINARY...]   (default 20, target/debug/tug)
# Then the agent's idle RSS and CPU with 50 replicas, for the first binary
# (IDLE=0 skips that part).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20}
shift || true
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$PWD/target/debug/tug")
bash scripts/engine.sh >/dev/null
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }
work=$(mktemp -d)
export TUG_STATE_DIR=$work/state
stack=tugbenchkill$$
cleanup() {
  for b in "${bins[@]}"; do "$b" -f "$work/tug.yaml" down >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The image: examples/hello built by tug, once.
if ! docker image inspect tug-bench/hello:1 >/dev/null 2>&1; then
  cat >"$work/build.yaml" <<YAML
name: tugbenchimg$$
services:
  hello:
    build: { rust: { package: hello, workspace: $PWD } }
YAML
  "${bins[0]}" -f "$work/build.yaml" up -d >/dev/null
  img=$(docker ps --filter label=dev.tug.stack=tugbenchimg$$ --format '{{.Image}}' | head -1)
  "${bins[0]}" -f "$work/build.yaml" down >/dev/null
  docker tag "$img" tug-bench/hello:1
fi

write() { # $1 = replicas
  cat >"$work/tug.yaml" <<YAML
name: $stack
services:
  web:
    image: tug-bench/hello:1
    replicas: $1
    port: 8080
    health: { http: /health, interval: 1s, timeout: 1s, retries: 3 }
    stop_grace_period: 1s
    resources: { memory: 32Mi, pids: 32 }
YAML
}

now() { date +%s.%N; }
stats() { sort -n | awk '{a[NR]=$1} END {m=(NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); printf "median %.2fs  max %.2fs  (n=%d)", m, a[NR], NR}'; }

# Waits until replica $1 runs and answers /health; prints the seconds since $2.
healthy_after() {
  local r=$1 t0=$2 id port
  while :; do
    id=$(docker ps -q --filter "label=dev.tug.stack=$stack" --filter "label=dev.tug.replica=$r" --filter status=running | head -1)
    if [ -n "$id" ]; then
      port=$(docker port "$id" 8080/tcp 2>/dev/null | head -1 | sed 's/.*://')
      if [ -n "$port" ] && curl -fsS -m 1 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
        echo "$(now) - $t0" | bc
        return
      fi
    fi
    sleep 0.02
  done
}

for bin in "${bins[@]}"; do
  write 3
  "$bin" -f "$work/tug.yaml" up -d >/dev/null
  for how in kill rm; do
    times=()
    for i in $(seq 1 "$n"); do
      r=$(( i % 3 ))
      id=$(docker ps -q --filter "label=dev.tug.stack=$stack" --filter "label=dev.tug.replica=$r" | head -1)
      t0=$(now)
      if [ "$how" = kill ]; then docker kill "$id" >/dev/null; else docker rm -f "$id" >/dev/null; fi
      times+=("$(healthy_after "$r" "$t0")")
      sleep 4
    done
    printf '%-40s docker %-4s -> healthy: %s\n' "$bin" "$how" "$(printf '%s\n' "${times[@]}" | stats)"
  done
  "$bin" -f "$work/tug.yaml" down >/dev/null
done

# Idle cost of the agent supervising 50 replicas (first binary).
[ "${IDLE:-1}" = 0 ] && exit 0
bin=${bins[0]}
write 50
"$bin" -f "$work/tug.yaml" up -d --timeout 300s >/dev/null
pid=$(cat "$TUG_STATE_DIR/$stack/agent.pid")
sleep 10
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t1=$(ticks); sleep 30; t2=$(ticks)
hz=$(getconf CLK_TCK)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
printf '%-40s agent idle, 50 replicas: RSS %.1f MB, CPU %.2f%% of one core (30 s)\n' \
  "$bin" "$(echo "$rss / 1024" | bc -l)" "$(echo "($t2 - $t1) * 100 / $hz / 30" | bc -l)"
"$bin" -f "$work/tug.yaml" down >/dev/null
