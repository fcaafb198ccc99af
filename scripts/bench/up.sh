#!/usr/bin/env bash
# Converge a 10-service stack from nothing to all healthy, then a no-change
# re-run, with tug and with docker-compose on the same engine and the same
# image and health checks. Prints medians and ratios (tug / compose).
#   scripts/bench/up.sh [ROUNDS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
source scripts/bench/compose-lib.sh
trap 'cd /; "$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true; (cd "$work" && docker-compose -p tugbenchc down -t 1 >/dev/null 2>&1) || true; rm -rf "$work"' EXIT

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

declare -a tc tn cc cn
for r in $(seq 1 "$rounds"); do
  t0=$(now); "$tug" -f "$work/tug.yaml" up -d >/dev/null; t1=$(now)
  "$tug" -f "$work/tug.yaml" up -d >/dev/null; t2=$(now)
  tc+=("$(echo "$t1 - $t0" | bc)"); tn+=("$(echo "$t2 - $t1" | bc)")
  "$tug" -f "$work/tug.yaml" down >/dev/null

  cd "$work"
  t0=$(now); docker-compose -p tugbenchc up -d >/dev/null 2>&1; compose_wait tugbenchc 10; t1=$(now)
  docker-compose -p tugbenchc up -d >/dev/null 2>&1; t2=$(now)
  cc+=("$(echo "$t1 - $t0" | bc)"); cn+=("$(echo "$t2 - $t1" | bc)")
  docker-compose -p tugbenchc down -t 1 >/dev/null 2>&1
  cd - >/dev/null
done

tcm=$(m "${tc[@]}"); tnm=$(m "${tn[@]}"); ccm=$(m "${cc[@]}"); cnm=$(m "${cn[@]}")
printf '%-34s %10s %10s %8s\n' "10 services, median of $rounds" tug compose ratio
printf '%-34s %9.2fs %9.2fs %8.2f\n' "converge from nothing to healthy" "$tcm" "$ccm" "$(echo "$tcm / $ccm" | bc -l)"
printf '%-34s %9.2fs %9.2fs %8.2f\n' "no-change re-run" "$tnm" "$cnm" "$(echo "$tnm / $cnm" | bc -l)"
