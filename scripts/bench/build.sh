#!/usr/bin/env bash
# tug build vs docker build for examples/hello, warm cargo cache.
#
# tug:    `tug build --dest oci:DIR` (assembles the image from the static binary,
#         no daemon), then `tug build --dest docker-archive:FILE` + `docker load`.
# docker: `docker build` of a Dockerfile that copies the same prebuilt static
#         binary (and the same passwd/group/CA bundle//tmp) into FROM scratch,
#         with --no-cache (assembling every time, as tug does) and cached.
#
# Usage: scripts/bench/build.sh [RUNS]   (default 5; the median is reported)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
docker info >/dev/null 2>&1 || { echo "build.sh: no Docker engine; run scripts/engine.sh" >&2; exit 1; }

cargo build -q --release -p tug
tug=$PWD/target/release/tug
work=$(mktemp -d)
trap 'rm -rf "$work"; docker rmi -f tug-bench/docker:1 tug-bench/tug:1 >/dev/null 2>&1 || true' EXIT

# Warm the cargo cache (the static build of hello) once.
"$tug" build -f examples/hello/tug.yaml --dest "oci:$work/warm" -o json >/dev/null 2>"$work/warm.log"
bin=target/$(rustc -vV | sed -n 's/^host: //p')/release/hello
[ -x "$bin" ] || { echo "build.sh: $bin missing after tug build" >&2; exit 1; }

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk -v n="$1" 'BEGIN {printf "%.0f", n/1000000}'; }

# docker build context: the same files tug puts in its two layers.
ctx=$work/ctx
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/tmp"
chmod 1777 "$ctx/rootfs/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\napp:x:10001:10001:app:/app:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\napp:x:10001:\n' >"$ctx/rootfs/etc/group"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
cp "$bin" "$ctx/hello"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY hello /app/hello
USER 10001:10001
WORKDIR /app
EXPOSE 8080
ENTRYPOINT ["/app/hello"]
DOCKERFILE

t_oci=(); t_arch=(); t_dnc=(); t_dc=()
for i in $(seq 1 "$runs"); do
  rm -rf "$work/oci"
  a=$(now); "$tug" build -f examples/hello/tug.yaml --dest "oci:$work/oci" -o json >/dev/null 2>>"$work/tug.log"; b=$(now)
  t_oci+=($((b - a)))

  docker rmi -f tug-bench/tug:1 >/dev/null 2>&1 || true
  a=$(now)
  "$tug" build -f examples/hello/tug.yaml --dest "docker-archive:$work/hello.tar" -o json >"$work/build.json" 2>>"$work/tug.log"
  tag=$(sed -n 's/.*"tag": "\(.*\)".*/\1/p' "$work/build.json")
  docker load -q -i "$work/hello.tar" >/dev/null
  b=$(now)
  t_arch+=($((b - a)))

  docker rmi -f tug-bench/docker:1 >/dev/null 2>&1 || true
  a=$(now); docker build -q --no-cache -t tug-bench/docker:1 "$ctx" >/dev/null 2>>"$work/docker.log"; b=$(now)
  t_dnc+=($((b - a)))
  a=$(now); docker build -q -t tug-bench/docker:1 "$ctx" >/dev/null 2>>"$work/docker.log"; b=$(now)
  t_dc+=($((b - a)))
done
docker tag "$tag" tug-bench/tug:1

m_oci=$(printf '%s\n' "${t_oci[@]}" | median)
m_arch=$(printf '%s\n' "${t_arch[@]}" | median)
m_dnc=$(printf '%s\n' "${t_dnc[@]}" | median)
m_dc=$(printf '%s\n' "${t_dc[@]}" | median)

oci_bytes=$(du -sb "$work/oci/blobs" | cut -f1)
tug_engine=$(docker image inspect --format '{{.Size}}' tug-bench/tug:1)
docker_engine=$(docker image inspect --format '{{.Size}}' tug-bench/docker:1)
docker save tug-bench/docker:1 | gzip -n -6 | wc -c >"$work/dgz"
docker_gz=$(cat "$work/dgz")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a/b}'; }
echo "examples/hello, warm cargo cache, median of $runs runs ($(nproc) cores)"
printf '%-46s %10s\n' "step" "time"
printf '%-46s %8s ms\n' "tug build --dest oci:DIR" "$(ms "$m_oci")"
printf '%-46s %8s ms\n' "tug build --dest docker-archive + docker load" "$(ms "$m_arch")"
printf '%-46s %8s ms\n' "docker build --no-cache (FROM scratch)" "$(ms "$m_dnc")"
printf '%-46s %8s ms\n' "docker build (cached)" "$(ms "$m_dc")"
echo
echo "ratios (docker time / tug time; >1 means tug is faster):"
echo "  docker build --no-cache / tug build oci            $(ratio "$m_dnc" "$m_oci")"
echo "  docker build --no-cache / tug build archive+load   $(ratio "$m_dnc" "$m_arch")"
echo "  docker build (cached)   / tug build oci            $(ratio "$m_dc" "$m_oci")"
echo
printf '%-46s %12s\n' "size" "bytes"
printf '%-46s %12s\n' "tug OCI layout blobs (gzip layers)" "$oci_bytes"
printf '%-46s %12s\n' "docker save | gzip (docker-built image)" "$docker_gz"
printf '%-46s %12s\n' "engine image size, tug-built" "$tug_engine"
printf '%-46s %12s\n' "engine image size, docker-built" "$docker_engine"
echo "  engine size ratio (docker / tug)                   $(ratio "$docker_engine" "$tug_engine")"
