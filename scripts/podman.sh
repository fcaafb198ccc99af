#!/usr/bin/env bash
# Podman 4.3 (Debian) as a second engine for the tests: installs it with runc
# (crun does not run on this kind of host), starts its Docker-compatible API
# service on a socket of its own and loads the test images into it from the
# shared Docker engine (nothing is pulled). Idempotent; never touches dockerd.
#
#   bash scripts/podman.sh          # then: export TUG_PODMAN_HOST=unix:///run/tug-podman/podman.sock
#
# Prints the socket address on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=/run/tug-podman
sock="$dir/podman.sock"
conf="$dir/containers.conf"

need=()
for pkg in runc podman netavark aardvark-dns containernetworking-plugins; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "podman.sh: missing ${need[*]} and not root: install them first" >&2
    exit 1
  fi
  echo "podman.sh: installing ${need[*]}" >&2
  apt-get update -qq
  # runc first, so podman's `crun | runc` dependency takes it, not crun.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends runc >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$dir"
chmod 0700 "$dir"
# No systemd here: cgroupfs, events in a file (the events endpoint reads it),
# k8s-file logs (the logs endpoint reads them). Podman asks for nofile and
# nproc limits of 1048576 for root; without CAP_SYS_RESOURCE (this kind of
# host) runc may not raise them past its own, so ask for the host's (podman
# caps its own nproc at 32768).
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
cat >"$conf" <<CONF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
CONF

podman_() { CONTAINERS_CONF="$conf" podman "$@"; }

answers() { timeout 5 podman --url "unix://$sock" version >/dev/null 2>&1; }

# conmon starts in the service's working directory: a service left running
# in a directory since removed cannot start containers, so it is replaced.
if [ -f "$dir/service.pid" ] && readlink "/proc/$(cat "$dir/service.pid")/cwd" 2>/dev/null | grep -q ' (deleted)$'; then
  kill "$(cat "$dir/service.pid")" 2>/dev/null || true
  sleep 1
fi

if ! answers; then
  echo "podman.sh: starting podman system service on $sock" >&2
  rm -f "$sock"
  (cd / && CONTAINERS_CONF="$conf" exec nohup podman system service --time=0 "unix://$sock") \
    >"$dir/service.log" 2>&1 &
  echo $! >"$dir/service.pid"
  for _ in $(seq 1 60); do
    answers && break
    sleep 0.25
  done
  answers || { echo "podman.sh: the service did not answer, see $dir/service.log" >&2; tail -20 "$dir/service.log" >&2; exit 1; }
fi

# The test image: the same one the Docker tests use (tug-runtime's
# testing::busybox_image), from Docker when it has it, else built the same way.
image=tug-test/busybox:1
if ! podman_ image exists "$image"; then
  if docker image inspect "$image" >/dev/null 2>&1; then
    docker save "$image" | podman_ load -q >/dev/null
  else
    ctx=$(mktemp -d)
    cp /bin/busybox "$ctx/busybox"
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "sleep", "3600"]\n' >"$ctx/Dockerfile"
    podman_ build -q -t "$image" "$ctx" >/dev/null
    rm -rf "$ctx"
  fi
fi

echo "unix://$sock"
