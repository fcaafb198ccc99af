#!/usr/bin/env bash
# Converge a 10-service stack from nothing to all healthy, then a no-change
# re-run, with tug and with docker-compose on the same engine and the same
# image and health checks. Prints medians and ratios (tug / compose).
#   scripts/bench/up.sh [ROUNDS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
bash scripts/engine.sh
command -v bc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null; }
command -v docker-compose >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }
cargo build --release -q -p tug
tug=$PWD/target/release/tug
work=$(mktemp -d)
export TUG_STATE_DIR=$work/state
trap 'cd /; "$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true; (cd "$work" && docker-compose -p tugbenchc down -t 1 >/dev/null 2>&1) || true; rm -rf "$work"' EXIT

# One image for both: hello built by tug, tagged plainly.
cat >"$work/build.yaml" <<YAML
name: tugbenchimg
services:
  hello:
    build: { rust: { package: hello, workspace: $PWD } }
YAML
"$tug" -f "$work/build.yaml" up -d >/dev/null
img=$(docker ps --filter label=dev.tug.stack=tugbenchimg --format '{{.Image}}' | head -1)
"$tug" -f "$work/build.yaml" down >/dev/null
docker tag "$img" tug-bench/hello:1

{ echo "name: tugbench"; echo "services:"; } >"$work/tug.yaml"
{ echo "version: '2.4'"; echo "services:"; } >"$work/docker-compose.yml"
for i in $(seq 1 10); do
  cat >>"$work/tug.yaml" <<YAML
  s$i:
    image: tug-bench/hello:1
    port: 8080
    health: { exec: [/app/hello, check], interval: 1s, timeout: 1s, retries: 3 }
    stop_grace_period: 1s
YAML
  cat >>"$work/docker-compose.yml" <<YAML
  s$i:
    image: tug-bench/hello:1
    ports: ["127.0.0.1::8080"]
    environment: { PORT: "8080" }
    healthcheck: { test: ["CMD", "/app/hello", "check"], interval: 1s, timeout: 1s, retries: 3 }
    stop_grace_period: 1s
YAML
done

now() { date +%s.%N; }
# docker-compose 1.29 has no --wait: poll until every container reports healthy.
compose_wait() {
  while :; do
    ids=$(docker ps -q --filter label=com.docker.compose.project=tugbenchc)
    n=$(echo "$ids" | grep -c . || true)
    healthy=$( [ -n "$ids" ] && docker inspect --format '{{.State.Health.Status}}' $ids | grep -c '^healthy$' || true)
    [ "$n" = 10 ] && [ "$healthy" = 10 ] && return
    sleep 0.1
  done
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -a tc tn cc cn
for r in $(seq 1 "$rounds"); do
  t0=$(now); "$tug" -f "$work/tug.yaml" up -d >/dev/null; t1=$(now)
  "$tug" -f "$work/tug.yaml" up -d >/dev/null; t2=$(now)
  tc+=("$(echo "$t1 - $t0" | bc)"); tn+=("$(echo "$t2 - $t1" | bc)")
  "$tug" -f "$work/tug.yaml" down >/dev/null

  cd "$work"
  t0=$(now); docker-compose -p tugbenchc up -d >/dev/null 2>&1; compose_wait; t1=$(now)
  docker-compose -p tugbenchc up -d >/dev/null 2>&1; t2=$(now)
  cc+=("$(echo "$t1 - $t0" | bc)"); cn+=("$(echo "$t2 - $t1" | bc)")
  docker-compose -p tugbenchc down -t 1 >/dev/null 2>&1
  cd - >/dev/null
done

m() { printf '%s\n' "$@" | median; }
tcm=$(m "${tc[@]}"); tnm=$(m "${tn[@]}"); ccm=$(m "${cc[@]}"); cnm=$(m "${cn[@]}")
printf '%-34s %10s %10s %8s\n' "10 services, median of $rounds" tug compose ratio
printf '%-34s %9.2fs %9.2fs %8.2f\n' "converge from nothing to healthy" "$tcm" "$ccm" "$(echo "$tcm / $ccm" | bc -l)"
printf '%-34s %9.2fs %9.2fs %8.2f\n' "no-change re-run" "$tnm" "$cnm" "$(echo "$tnm / $cnm" | bc -l)"
