#!/usr/bin/env bash
# A rolling update of 5 replicas to a new version, with tug, Docker Compose
# v5 and docker-compose 1.29 (which recreate the service), on the same engine
# and image.
# While each update runs, a load loop sends requests and counts the ones
# that fail, and the longest stretch in which all of them failed: for tug,
# through its gateway (one URL; replicas drained before they stop); for
# compose, to the service's replicas (endpoints re-read from the engine
# every 200 ms, as a balancer would). Prints time to done, failures and that longest outage.
#   scripts/bench/rollout.sh [ROUNDS]     (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
source scripts/bench/compose-lib.sh
cleanup() {
  cd /; "$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true
  for p in "${peers[@]}"; do (cd "$work" && "${p#*=}" -p tugbenchr down -t 1 >/dev/null 2>&1) || true; done
  rm -rf "$work"
}
trap cleanup EXIT

gwport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
write() { # $1 = version
  cat >"$work/tug.yaml" <<YAML
name: tugbenchr
gateway: { listen: ["127.0.0.1:$gwport"], access_log: off }
services:
  web:
    image: tug-bench/hello:1
    replicas: 5
    port: 8080
    route: { path: / }
    env: { VERSION: "$1" }
    health: { exec: [/app/hello, check], interval: 1s, timeout: 1s, retries: 3 }
    stop_grace_period: 2s
YAML
  cat >"$work/docker-compose.yml" <<YAML
version: '2.4'
services:
  web:
    image: tug-bench/hello:1
    scale: 5
    ports: ["127.0.0.1::8080"]
    environment: { PORT: "8080", VERSION: "$1" }
    healthcheck: { test: ["CMD", "/app/hello", "check"], interval: 1s, timeout: 1s, retries: 3 }
    stop_grace_period: 2s
YAML
}

# Load loop: until the stop file appears, GET / on the replicas that run
# (found by label), or on one address (`addr=127.0.0.1:PORT`).
cat >"$work/load.py" <<'PY'
import json, os, socket, subprocess, sys, time
label, stop = sys.argv[1], sys.argv[2]
eps, ok, failed, last = [], 0, 0, 0.0
i = 0
# The longest stretch in which every request failed: an outage as a client sees it.
fail_since, longest = None, 0.0
while not os.path.exists(stop):
    if label.startswith("addr="):
        eps = [int(label.rsplit(":", 1)[1])]
    elif time.time() - last > 0.2:
        ids = subprocess.run(["docker", "ps", "-q", "--filter", "label=" + label], capture_output=True, text=True).stdout.split()
        found = []
        if ids:
            out = subprocess.run(["docker", "inspect", "--format", "{{json .NetworkSettings.Ports}}"] + ids, capture_output=True, text=True).stdout
            for line in out.splitlines():
                for bindings in (json.loads(line) or {}).values():
                    for b in bindings or []:
                        found.append(int(b["HostPort"]))
        eps, last = found, time.time()
    if not eps:
        failed += 1
        fail_since = fail_since or time.time()
        longest = max(longest, time.time() - fail_since)
        time.sleep(0.01)
        continue
    port = eps[i % len(eps)]
    i += 1
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = s.recv(64)
        s.close()
        good = data.split(b" ")[1:2] == [b"200"]
    except OSError:
        good = False
    if good:
        ok += 1
        fail_since = None
    else:
        failed += 1
        fail_since = fail_since or time.time()
        longest = max(longest, time.time() - fail_since)
    time.sleep(0.005)
print(ok, failed, int(longest * 1000))
PY

declare -a tt tf to
declare -A ct cf co
for r in $(seq 1 "$rounds"); do
  write "1.$r"; "$tug" -f "$work/tug.yaml" up -d >/dev/null
  until curl -sf "http://127.0.0.1:$gwport/" >/dev/null; do sleep 0.1; done
  write "2.$r"
  rm -f "$work/stop"; python3 "$work/load.py" "addr=127.0.0.1:$gwport" "$work/stop" >"$work/load.out" & lp=$!
  sleep 0.5
  t0=$(now); "$tug" -f "$work/tug.yaml" up -d >/dev/null; t1=$(now)
  sleep 0.5; touch "$work/stop"; wait $lp
  tt+=("$(echo "$t1 - $t0" | bc)"); tf+=("$(cut -d' ' -f2 "$work/load.out")"); to+=("$(cut -d' ' -f3 "$work/load.out")")
  tok=$(cut -d' ' -f1 "$work/load.out")
  "$tug" -f "$work/tug.yaml" down >/dev/null
  line="round $r: tug ${tt[-1]}s, ${tf[-1]} failed of $((tok + ${tf[-1]})), longest outage ${to[-1]}ms"

  cd "$work"
  for p in "${peers[@]}"; do
    name=${p%%=*} bin=${p#*=}
    write "1.$r"; "$bin" -p tugbenchr up -d >/dev/null 2>&1; compose_wait tugbenchr 5
    write "2.$r"
    rm -f stop; python3 load.py com.docker.compose.project=tugbenchr stop >load.out & lp=$!
    sleep 0.5
    t0=$(now); "$bin" -p tugbenchr up -d >/dev/null 2>&1; compose_wait tugbenchr 5; t1=$(now)
    sleep 0.5; touch stop; wait $lp
    d=$(echo "$t1 - $t0" | bc); f=$(cut -d' ' -f2 load.out); o=$(cut -d' ' -f3 load.out)
    ct[$name]+=" $d"; cf[$name]+=" $f"; co[$name]+=" $o"
    line+="; compose $name ${d}s, $f failed of $(($(cut -d' ' -f1 load.out) + f)), longest outage ${o}ms"
    "$bin" -p tugbenchr down -t 1 >/dev/null 2>&1
  done
  cd - >/dev/null
  echo "$line"
done
for p in "${peers[@]}"; do
  name=${p%%=*}
  # shellcheck disable=SC2086
  ctm=$(m ${ct[$name]}); cfm=$(m ${cf[$name]}); com=$(m ${co[$name]})
  printf '%-40s %10s %10s %8s\n' "rolling update, 5 replicas, median of $rounds" tug "compose $name" ratio
  printf '%-40s %9.2fs %9.2fs %8.2f\n' "time to done (all new replicas healthy)" "$(m "${tt[@]}")" "$ctm" "$(echo "$(m "${tt[@]}") / $ctm" | bc -l)"
  printf '%-40s %10s %10s\n' "failed requests during the update" "$(m "${tf[@]}")" "$cfm"
  printf '%-40s %8sms %8sms\n' "longest stretch of only failures" "$(m "${to[@]}")" "$com"
done
