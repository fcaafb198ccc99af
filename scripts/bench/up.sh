#!/usr/bin/env bash
# Converge a 10-service stack from nothing to all healthy, then a no-change
# re-run, with tug, Docker Compose v5 and docker-compose 1.29 on the same
# engine and the same image and health checks. Prints medians and ratios
# (tug / each compose).
#   scripts/bench/up.sh [ROUNDS] [exec|mixed]     (default 3 exec)
# exec: every service has an exec health check; mixed: every other one is
# probed over HTTP by tug (compose has only exec checks: the same
# `/app/hello check`, which GETs /health).
# Also the engine's floor: the same ten containers created and started by
# the docker CLI, all at once, with no health check waited for.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
checks=${2:-exec}
source scripts/bench/compose-lib.sh
cleanup() {
  cd /; "$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true
  for p in "${peers[@]}"; do (cd "$work" && "${p#*=}" -p tugbenchc down -t 1 >/dev/null 2>&1) || true; done
  floor_down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

{ echo "name: tugbench"; echo "services:"; } >"$work/tug.yaml"
{ echo "version: '2.4'"; echo "services:"; } >"$work/docker-compose.yml"
for i in $(seq 1 10); do
  probe="exec: [/app/hello, check]"
  [ "$checks" = mixed ] && [ $((i % 2)) = 0 ] && probe="http: /health"
  cat >>"$work/tug.yaml" <<YAML
  s$i:
    image: tug-bench/hello:1
    port: 8080
    health: { $probe, interval: 1s, timeout: 1s, retries: 3 }
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

# The engine alone: a network, then ten containers created and started
# concurrently, as both tools do.
floor() {
  docker network create tugbenchfloor >/dev/null
  seq 1 10 | xargs -P 10 -I{} docker create --name tugbenchfloor-{} --label tugbench.floor=1 \
    --network tugbenchfloor -p 127.0.0.1::8080 -e PORT=8080 tug-bench/hello:1 >/dev/null
  seq 1 10 | xargs -P 10 -I{} docker start tugbenchfloor-{} >/dev/null
}
floor_down() {
  local ids
  ids=$(docker ps -aq --filter label=tugbench.floor)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  docker network rm tugbenchfloor >/dev/null
}

declare -a tc tn tf
declare -A cc cn
for r in $(seq 1 "$rounds"); do
  t0=$(now); floor; t1=$(now)
  tf+=("$(echo "$t1 - $t0" | bc)")
  floor_down
  t0=$(now); "$tug" -f "$work/tug.yaml" up -d >/dev/null; t1=$(now)
  "$tug" -f "$work/tug.yaml" up -d >/dev/null; t2=$(now)
  tc+=("$(echo "$t1 - $t0" | bc)"); tn+=("$(echo "$t2 - $t1" | bc)")
  "$tug" -f "$work/tug.yaml" down >/dev/null

  cd "$work"
  for p in "${peers[@]}"; do
    name=${p%%=*} bin=${p#*=}
    t0=$(now); "$bin" -p tugbenchc up -d >/dev/null 2>&1; compose_wait tugbenchc 10; t1=$(now)
    "$bin" -p tugbenchc up -d >/dev/null 2>&1; t2=$(now)
    cc[$name]+=" $(echo "$t1 - $t0" | bc)"; cn[$name]+=" $(echo "$t2 - $t1" | bc)"
    "$bin" -p tugbenchc down -t 1 >/dev/null 2>&1
  done
  cd - >/dev/null
done

tcm=$(m "${tc[@]}"); tnm=$(m "${tn[@]}"); tfm=$(m "${tf[@]}")
for p in "${peers[@]}"; do
  name=${p%%=*}
  # shellcheck disable=SC2086
  ccm=$(m ${cc[$name]}); cnm=$(m ${cn[$name]})
  printf '%-34s %10s %10s %8s\n' "10 services ($checks), median of $rounds" tug "compose $name" ratio
  printf '%-34s %9.2fs %9.2fs %8.2f\n' "converge from nothing to healthy" "$tcm" "$ccm" "$(echo "$tcm / $ccm" | bc -l)"
  printf '%-34s %9.2fs %9.2fs %8.2f\n' "no-change re-run" "$tnm" "$cnm" "$(echo "$tnm / $cnm" | bc -l)"
done
printf 'engine floor (docker CLI: 10 containers created and started at once, no health gate): %.2fs; tug converges in %.2fx that\n' \
  "$tfm" "$(echo "$tcm / $tfm" | bc -l)"
