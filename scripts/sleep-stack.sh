#!/usr/bin/env bash
# Writes FILE: a stack NAME of REPLICAS replicas that only sleep, on the
# tiny busybox image (imported if the engine lacks it). The agent's idle
# bench and its code-order profile supervise it.
#   scripts/sleep-stack.sh NAME REPLICAS FILE
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 replicas=$2 file=$3
image=tug-bench/idle-busybox:1
bash scripts/busybox-image.sh "$image"
cat >"$file" <<YAML
name: $name
services:
  app:
    image: $image
    command: [sleep, "86400"]
    replicas: $replicas
    health: none
    stop_grace_period: 1s
YAML
