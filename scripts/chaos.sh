#!/usr/bin/env bash
# Chaos runs on the real engine; not part of the default test run (minutes).
#   TUG_CHAOS=1 scripts/chaos.sh [TRIALS]       (default 20 of each kind)
#
# A stack of 4 hello replicas (max_surge 1, max_unavailable 1), sampled
# every 100 ms: a replica is ready when its /health answers 200.
#  1. first converge: `tug up -d` and its agent are SIGKILLed at a random
#     point of a first converge; the next `tug up -d` converges.
#  2. rollout: the same, at a random point of a rolling update to a new
#     version; the next `tug up -d` finishes it (or rolls it back).
#     Capacity must never drop below replicas - max_unavailable = 3.
#  3. under the agent: a replica is killed, removed or stopped by hand.
# After each trial: duplicates (two containers of one replica), orphans
# (containers of an old version), time to heal (4 ready replicas of the
# wanted version and nothing else).
#
# Restarting the engine under the agent is the `engine_restart` test
# (TUG_TEST_RESTART_ENGINE=1 cargo test -p tug --test engine_restart), on a
# machine of its own: it restarts dockerd, which a shared engine forbids.
set -euo pipefail
if [ "${TUG_CHAOS:-}" != 1 ]; then
  echo "chaos.sh: set TUG_CHAOS=1 to run it (it takes minutes and needs the engine)"
  exit 0
fi
cd "$(dirname "$0")/.."
trials=${1:-20}
bash scripts/engine.sh >/dev/null
cargo build -q -p tug
tug=$PWD/target/debug/tug
work=$(mktemp -d)
export TUG_STATE_DIR=$work/state NO_COLOR=1
name=tugchaos$$
replicas=4
floor=3
sampler=

cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  "$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The hello example, built once by tug and tagged plainly.
if ! docker image inspect tug-chaos/hello:1 >/dev/null 2>&1; then
  cat >"$work/build.yaml" <<YAML
name: tugchaosimg$$
services:
  hello:
    build: { rust: { package: hello, workspace: $PWD } }
YAML
  "$tug" -f "$work/build.yaml" up -d >/dev/null
  img=$(docker ps --filter "label=dev.tug.stack=tugchaosimg$$" --format '{{.Image}}' | head -1)
  docker tag "$img" tug-chaos/hello:1
  "$tug" -f "$work/build.yaml" down >/dev/null
fi

write() { # $1 = version
  cat >"$work/tug.yaml" <<YAML
name: $name
services:
  web:
    image: tug-chaos/hello:1
    replicas: $replicas
    port: 8080
    env: { VERSION: "$1" }
    health: { http: /health, interval: 200ms, timeout: 1s, retries: 3 }
    update: { max_surge: 1, max_unavailable: 1 }
    stop_grace_period: 1s
YAML
}

ms() { date +%s%3N; }

# Ready replicas now: running containers of the stack whose /health answers.
ready() {
  local n=0 port
  for port in $(docker ps --filter "label=dev.tug.stack=$name" --format '{{.Ports}}' |
    grep -o '127.0.0.1:[0-9]*->8080' | sed 's/127.0.0.1:\([0-9]*\)->.*/\1/'); do
    if [ "$(curl -s -m 0.3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ]; then
      n=$((n + 1))
    fi
  done
  echo "$n"
}

# Samples capacity every 100 ms into $work/samples: "ms ready".
sample() {
  while :; do
    echo "$(ms) $(ready)" >>"$work/samples"
    sleep 0.1
  done
}

# Healed: exactly $replicas containers, all of version $1, running, ready.
healed() {
  local ids n v
  ids=$(docker ps -aq --filter "label=dev.tug.stack=$name")
  n=$(echo "$ids" | grep -c . || true)
  [ "$n" = "$replicas" ] || return 1
  v=$(docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' $ids | grep -c "^VERSION=$1\$" || true)
  [ "$v" = "$replicas" ] || return 1
  [ "$(ready)" = "$replicas" ]
}

# Duplicates: replica indexes held by more than one container of one version.
duplicates() {
  docker ps -aq --filter "label=dev.tug.stack=$name" |
    xargs -r docker inspect --format '{{index .Config.Labels "dev.tug.replica"}} {{index .Config.Labels "dev.tug.config-hash"}}' |
    sort | uniq -d | grep -c . || true
}

# Orphans: containers not of version $1 once healed.
orphans() {
  local ids
  ids=$(docker ps -aq --filter "label=dev.tug.stack=$name")
  [ -z "$ids" ] && { echo 0; return; }
  docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' $ids | grep '^VERSION=' | grep -vc "^VERSION=$1\$" || true
}

kill_all() { # SIGKILL the command and the stack's agent
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local pid
  pid=$(cat "$TUG_STATE_DIR/$name/agent.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -f "$TUG_STATE_DIR/$name/agent.pid"
}

heal() { # $1 = version; prints ms from now until healed (up to 120 s)
  local t0 deadline
  t0=$(ms)
  deadline=$((t0 + 120000))
  "$tug" -f "$work/tug.yaml" up -d >/dev/null 2>&1 || true
  until healed "$1"; do
    if [ "$(ms)" -gt "$deadline" ]; then
      echo "never"
      return
    fi
    sleep 0.1
  done
  echo $(($(ms) - t0))
}

min_between() { # $1 $2 = ms: the least ready count sampled in between
  awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { if (m == "" || $2 < m) m = $2 } END { print (m == "" ? "-" : m) }' "$work/samples"
}

stats() { # median and max of numbers on stdin
  sort -n | awk '{a[NR]=$1} END { if (NR == 0) { print "-"; exit } printf "median %d ms, max %d ms", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2), a[NR] }'
}

: >"$work/samples"
sample &
sampler=$!
dups_total=0
orphans_total=0
below=0

echo "== 1. SIGKILL of up (and its agent) during a first converge: $trials trials"
heals=()
for t in $(seq 1 "$trials"); do
  "$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true
  write 1
  delay=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", rand() * 3 }')
  "$tug" -f "$work/tug.yaml" up -d >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill_all "$pid"
  h=$(heal 1)
  d=$(duplicates)
  o=$(orphans 1)
  dups_total=$((dups_total + d))
  orphans_total=$((orphans_total + o))
  echo "trial $t: killed at ${delay}s, healed in ${h} ms, duplicates $d, orphans $o"
  [ "$h" != never ] && heals+=("$h")
done
echo "first converge: time to heal $(printf '%s\n' "${heals[@]}" | stats)"

echo "== 2. SIGKILL of up (and its agent) during a rolling update: $trials trials"
"$tug" -f "$work/tug.yaml" down >/dev/null 2>&1 || true
write 1
"$tug" -f "$work/tug.yaml" up -d >/dev/null
heals=()
mins=()
version=1
for t in $(seq 1 "$trials"); do
  until healed "$version"; do sleep 0.1; done
  version=$((version + 1))
  write "$version"
  delay=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", rand() * 4 }')
  start=$(ms)
  "$tug" -f "$work/tug.yaml" up -d >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill_all "$pid"
  h=$(heal "$version")
  end=$(ms)
  m=$(min_between "$start" "$end")
  d=$(duplicates)
  o=$(orphans "$version")
  dups_total=$((dups_total + d))
  orphans_total=$((orphans_total + o))
  [ "$m" != - ] && [ "$m" -lt "$floor" ] && below=$((below + 1))
  echo "trial $t: killed at ${delay}s, min ready $m (floor $floor), healed in ${h} ms, duplicates $d, orphans $o"
  [ "$h" != never ] && heals+=("$h")
  mins+=("$m")
done
echo "rollout: time to heal $(printf '%s\n' "${heals[@]}" | stats); min ready per trial: ${mins[*]}; trials below the floor: $below"

echo "== 3. replicas killed, removed and stopped under the agent: $trials trials"
for how in kill rm stop; do
  heals=()
  for t in $(seq 1 "$trials"); do
    until healed "$version"; do sleep 0.1; done
    victim=$(docker ps -q --filter "label=dev.tug.stack=$name" | shuf -n 1)
    t0=$(ms)
    case $how in
      kill) docker kill "$victim" >/dev/null ;;
      rm) docker rm -f "$victim" >/dev/null ;;
      stop) docker stop -t 1 "$victim" >/dev/null ;;
    esac
    deadline=$((t0 + 120000))
    until healed "$version"; do
      [ "$(ms)" -gt "$deadline" ] && break
      sleep 0.1
    done
    heals+=($(($(ms) - t0)))
  done
  echo "docker $how: time to heal $(printf '%s\n' "${heals[@]}" | stats)"
done

echo "== summary: $((trials * 2)) SIGKILL trials, duplicates $dups_total, orphans $orphans_total, rollout trials below replicas - max_unavailable: $below"
[ "$dups_total" = 0 ] && [ "$orphans_total" = 0 ] && [ "$below" = 0 ]
