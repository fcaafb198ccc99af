#!/usr/bin/env bash
# Makes sure a container engine answers (and, with --registry, a local registry
# on 127.0.0.1:5000). On a fresh Debian-like machine as root it installs
# docker.io (and docker-registry) and starts the daemons. Idempotent.
set -euo pipefail

want_registry=0
[ "${1:-}" = "--registry" ] && want_registry=1

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
[ $want_registry = 1 ] && ! command -v docker-registry >/dev/null 2>&1 && need+=(docker-registry)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "engine.sh: missing ${need[*]} and not root: install them first" >&2
    exit 1
  fi
  echo "engine.sh: installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    echo "engine.sh: DOCKER_HOST=$DOCKER_HOST does not answer" >&2
    exit 1
  fi
  echo "engine.sh: starting dockerd" >&2
  nohup dockerd >/tmp/tug-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "engine.sh: dockerd did not start, see /tmp/tug-dockerd.log" >&2; tail -20 /tmp/tug-dockerd.log >&2; exit 1; }
fi

if [ $want_registry = 1 ] && ! (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null; then
  echo "engine.sh: starting docker-registry on 127.0.0.1:5000" >&2
  mkdir -p /tmp/tug-registry
  cat >/tmp/tug-registry/config.yml <<'YAML'
version: 0.1
storage:
  filesystem:
    rootdirectory: /tmp/tug-registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
YAML
  nohup docker-registry serve /tmp/tug-registry/config.yml >/tmp/tug-registry/log 2>&1 &
  for _ in $(seq 1 40); do
    (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && break
    sleep 0.25
  done
fi
exit 0
