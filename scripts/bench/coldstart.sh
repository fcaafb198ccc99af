#!/usr/bin/env bash
# Cold start through the gateway: a service with `autoscale: { min: 0 }` is
# left to scale to zero, then one request is sent and timed from sending to
# the first byte of the answer (curl's time_starttransfer). TRIALS times on
# Docker (an HTTP and an exec health check) and on the process runtime;
# prints p50 and p99 of each.
#   scripts/bench/coldstart.sh [TRIALS]     (default 20)
# RUNTIMES="docker" measures one runtime only; TUG_BIN picks the binary (a
# debug build, say); KEEP=1 keeps the state directory (agent logs) and
# prints where it is.
set -euo pipefail
cd "$(dirname "$0")/../.."
trials=${1:-20}
source scripts/bench/compose-lib.sh
trap 'docker rm -f tugbenchcoldfloor-$$ >/dev/null 2>&1 || true; cd /; for f in "$work"/*.yaml; do "$tug" -f "$f" down >/dev/null 2>&1 || true; done; if [ -n "${KEEP:-}" ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi' EXIT
export TUG_AUTOSCALE_INTERVAL=200ms

pct() { # $1 = percentile (0-100); values on stdin
  sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int((p/100)*NR+0.999999); if (i<1) i=1; if (i>NR) i=NR; print a[i]}'
}

# $1 = runtime (docker|process), $2 = the row's label, $3 = service body lines
run() {
  local rt=$1 label=$2 body=$3 port file
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  file=$work/cold-$label.yaml
  cat >"$file" <<YAML
name: tugbenchcold${label//-/}
gateway: { listen: ["127.0.0.1:$port"], access_log: off }
services:
  web:
$body
    port: 8080
    route: { path: / }
    stop_grace_period: 1s
    autoscale: { min: 0, max: 1, idle: 1s }
YAML
  "$tug" -f "$file" --runtime "$rt" up -d >/dev/null
  local times=()
  for i in $(seq 1 "$trials"); do
    # Wait until it is at zero again (stopped, kept, and out of the gateway's pool).
    until [ "$("$tug" -f "$file" --runtime "$rt" ps -o json | python3 -c 'import json,sys; print(sum(r["service"]=="web" and r["state"]=="running" for r in json.load(sys.stdin)))')" = 0 ] \
      && "$tug" -f "$file" --runtime "$rt" routes -o json | python3 -c 'import json,sys; sys.exit(any(r["replicas"] for r in json.load(sys.stdin)["routes"]))'; do
      sleep 0.2
    done
    t=$(curl -s -o /dev/null -w '%{http_code} %{time_starttransfer}' "http://127.0.0.1:$port/")
    [ "${t%% *}" = 200 ] || { echo "$rt trial $i: got ${t%% *}" >&2; exit 1; }
    times+=("${t#* }")
  done
  "$tug" -f "$file" --runtime "$rt" down >/dev/null
  local p50 p99
  p50=$(printf '%s\n' "${times[@]}" | pct 50)
  p99=$(printf '%s\n' "${times[@]}" | pct 99)
  printf '%-12s %10.0f %10.0f\n' "$label" "$(echo "$p50 * 1000" | bc)" "$(echo "$p99 * 1000" | bc)"
}

# The engine's floor: `docker start` of a stopped container (same image and
# port publishing, no tug), timed to the first byte of an answer (curl
# retried every 10 ms). What tug adds is its row minus this one.
floor() {
  local name=tugbenchcoldfloor-$$ port t0 t1 times=()
  docker create --name "$name" -p 127.0.0.1::8080 tug-bench/hello:1 >/dev/null
  for i in $(seq 1 "$trials"); do
    t0=$(now)
    docker start "$name" >/dev/null
    port=$(docker port "$name" 8080/tcp | head -1 | sed 's/.*://')
    until curl -s -o /dev/null "http://127.0.0.1:$port/"; do sleep 0.01; done
    t1=$(now)
    times+=("$(echo "$t1 - $t0" | bc)")
    docker stop -t 1 "$name" >/dev/null
  done
  docker rm -f "$name" >/dev/null
  printf '%-12s %10.0f %10.0f\n' "docker-start" \
    "$(echo "$(printf '%s\n' "${times[@]}" | pct 50) * 1000" | bc)" \
    "$(echo "$(printf '%s\n' "${times[@]}" | pct 99) * 1000" | bc)"
}

printf '%-12s %10s %10s   (cold start, request to first byte, %s trials)\n' runtime "p50 ms" "p99 ms" "$trials"
runtimes=${RUNTIMES:-docker process}
# On Docker with either kind of health check: an HTTP one (probed from the
# host) and an exec one (a process run in the container by the engine).
[[ " $runtimes " != *" docker "* ]] || run docker docker-http "    image: tug-bench/hello:1
    health: { http: /health, interval: 100ms, timeout: 1s, retries: 3 }"
[[ " $runtimes " != *" docker "* ]] || run docker docker-exec "    image: tug-bench/hello:1
    health: { exec: [/app/hello, check], interval: 100ms, timeout: 1s, retries: 3 }"
[[ " $runtimes " != *" docker "* ]] || floor
[[ " $runtimes " != *" process "* ]] || run process process "    build: { rust: { package: hello, workspace: $PWD } }
    health: { http: /health, interval: 100ms, timeout: 1s, retries: 3 }"
