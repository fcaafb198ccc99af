# Shared by the benchmarks that compare tug with docker-compose; sourced,
# from the repository root. Sets `tug` (the release binary) and `work` (a
# temp dir, also the state dir), and tags examples/hello as tug-bench/hello:1.
# TUG_BIN picks another tug binary (a debug build, say) instead.
bash scripts/engine.sh
need=()
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v bc >/dev/null || need+=(bc)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ -z "${TUG_BIN:-}" ]; then
  cargo build --release -q -p tug
  TUG_BIN=$PWD/target/release/tug
fi
tug=$TUG_BIN
work=$(mktemp -d)
export TUG_STATE_DIR=$work/state

# One image for both tools: hello built by tug, tagged plainly.
cat >"$work/build.yaml" <<YAML
name: tugbenchimg
services:
  hello:
    build: { rust: { package: hello, workspace: $PWD } }
YAML
"$tug" -f "$work/build.yaml" up -d >/dev/null
img=$(docker ps --filter label=dev.tug.stack=tugbenchimg --format '{{.Image}}' | head -1)
"$tug" -f "$work/build.yaml" down >/dev/null
docker tag "$img" tug-bench/hello:1

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
m() { printf '%s\n' "$@" | median; }

# docker-compose 1.29 has no --wait: poll until project $1 has $2 healthy containers.
compose_wait() {
  while :; do
    ids=$(docker ps -q --filter "label=com.docker.compose.project=$1")
    n=$(echo "$ids" | grep -c . || true)
    healthy=$( [ -n "$ids" ] && docker inspect --format '{{.State.Health.Status}}' $ids | grep -c '^healthy$' || true)
    [ "$n" = "$2" ] && [ "$healthy" = "$2" ] && return
    sleep 0.1
  done
}
