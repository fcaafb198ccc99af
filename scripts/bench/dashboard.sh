#!/usr/bin/env bash
# The dashboard with 50 replicas: time to load (navigation to the first full
# render: topology and every replica row, in headless Chromium), and the
# agent's RSS before the dashboard opens and while it is open with the 50
# replicas restarted one after another (a steady stream of events).
#
#   scripts/bench/dashboard.sh            # REPLICAS=50 RUNS=5 HOLD=60
#
# Needs the engine and scripts/ui-tools.sh. TUG=path/to/tug picks the binary
# (default: a debug build of this tree).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPLICAS=${REPLICAS:-50}
export RUNS=${RUNS:-5} HOLD=${HOLD:-60}
bash scripts/ui-tools.sh
export TUG_UI_TOOLS=${TUG_UI_TOOLS:-$HOME/.cache/tug/ui-tools}
if [ -z "${TUG:-}" ]; then
    cargo build -q -p tug
    TUG=$PWD/target/debug/tug
fi
WORK=$(mktemp -d)
NAME=dashbench$$
export TUG_STATE_DIR=$WORK/state
cleanup() { "$TUG" -f "$WORK/tug.yaml" down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
cat >"$WORK/tug.yaml" <<YAML
name: $NAME
services:
  web:
    build: { rust: { package: hello, workspace: $PWD } }
    port: 8080
    replicas: $REPLICAS
    health: { http: /health, interval: 2s, timeout: 1s, retries: 3 }
    stop_grace_period: 1s
YAML
"$TUG" -f "$WORK/tug.yaml" up -d --timeout 300s >/dev/null
URL=$("$TUG" -f "$WORK/tug.yaml" dashboard)
PID=$("$TUG" -f "$WORK/tug.yaml" -o json ps >/dev/null; cat "$TUG_STATE_DIR/$NAME/agent.pid")
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
sleep 5
BEFORE=$(rss)
echo "agent (pid $PID), $REPLICAS replicas, dashboard closed: RSS ${BEFORE} KiB"

# Events: restart one replica after another while the dashboard is open.
(
    sleep 5
    end=$((SECONDS + HOLD - 10))
    while [ $SECONDS -lt $end ]; do
        for id in $(docker ps -q --filter "label=dev.tug.stack=$NAME"); do
            [ $SECONDS -lt $end ] || break
            docker kill "$id" >/dev/null 2>&1 || true
            sleep 1
        done
    done
) &
CHURN=$!
SAMPLES=$WORK/rss
( while kill -0 $CHURN 2>/dev/null; do rss >>"$SAMPLES"; sleep 1; done ) &
SAMPLER=$!
node crates/tug/tests/ui/bench.mjs "$URL" "$REPLICAS"
wait $CHURN || true
wait $SAMPLER || true
EVENTS=$(curl -s "$URL/v1/events?limit=10000" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
sort -n "$SAMPLES" | awk -v before="$BEFORE" -v events="$EVENTS" '
    { v[NR] = $1 } END {
        printf "dashboard open, replicas killed and restarted (%d events recorded in all): RSS min %d KiB, median %d KiB, max %d KiB (%.2fx of closed)\n",
            events, v[1], v[int((NR + 1) / 2)], v[NR], v[NR] / before }'
