#!/usr/bin/env bash
# schemathesis against a live agent: a one-service stack (busybox-static
# imported as an image) goes up with its agent serving the API over TCP on
# loopback, then schemathesis generates requests from the agent's own
# OpenAPI document. Fails on any 5xx, a crash, or a dead agent afterwards.
#   scripts/api-fuzz.sh [MAX_EXAMPLES]     (default 30; the run stays ≤ 2 min)
# TUG_BIN picks the tug binary (default: a debug build of this tree).
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-30}
st=$(bash scripts/schemathesis.sh)
if [ -z "${TUG_BIN:-}" ]; then
  cargo build -q -p tug
  TUG_BIN=$PWD/target/debug/tug
fi
image=tug-test/apifuzz-busybox:1
bash scripts/busybox-image.sh "$image"
work=$(mktemp -d)
export TUG_STATE_DIR=$work/state
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=apifuzz$$
cat >"$work/tug.yaml" <<YAML
name: $name
dashboard: { listen: ":$port" }
services:
  app:
    image: $image
    command: [sleep, "3600"]
    replicas: 2
    health: none
    stop_grace_period: 1s
YAML
trap '"$TUG_BIN" -f "$work/tug.yaml" down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$TUG_BIN" -f "$work/tug.yaml" up -d >/dev/null
pid=$(cat "$TUG_STATE_DIR/$name/agent.pid")
# Loopback needs no token; sent anyway so the run also works beyond it.
token=$(cat "$TUG_STATE_DIR/$name/token" 2>/dev/null || true)
# `down` ends the agent and the streams never end: each is checked by the
# agent's own tests; everything else is fuzzed.
"$st" run "http://127.0.0.1:$port/v1/openapi.json" \
  --checks not_a_server_error \
  --exclude-path /v1/down --exclude-path /v1/events/stream --exclude-path /v1/logs \
  --max-examples "$examples" --request-timeout 10 --max-time 90 \
  --generation-deterministic --no-color \
  ${token:+-H "Authorization: Bearer $token"}
# The agent is still up and answering.
kill -0 "$pid"
curl -fsS "http://127.0.0.1:$port/v1/ps" ${token:+-H "Authorization: Bearer $token"} >/dev/null
echo "api-fuzz: no 5xx, agent (pid $pid) alive"
