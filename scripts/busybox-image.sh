#!/usr/bin/env bash
# Imports Debian's busybox-static as IMAGE (with `sh` and `sleep`) unless the
# engine has it: a tiny image for stacks that only need to run, since no
# image can be pulled here.
#   scripts/busybox-image.sh IMAGE
set -euo pipefail
image=$1
docker image inspect "$image" >/dev/null 2>&1 && exit 0
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" && cp /bin/busybox "$root/bin/busybox"
for t in sh sleep; do ln -s busybox "$root/bin/$t"; done
tar -C "$root" -c . | docker import - "$image" >/dev/null
