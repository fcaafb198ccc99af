#!/usr/bin/env bash
# The tug binary a release ships: the dist profile (fat LTO, one codegen
# unit, stripped), linked with the code the agent runs laid out together
# (crates/tug/link/agent.order), so a long-lived agent keeps few code pages
# resident: the kernel maps 64 KiB of text around every fault, and code
# scattered over the whole binary drags its neighbours in.
#   scripts/dist.sh          builds it; prints its path on stdout
# Extra cargo arguments go after the script's (say, --target-dir DIR).
# Linked by LLD (rustc's default linker on x86_64 Linux). The order names
# mangled symbols: after a Rust or dependency upgrade, regenerate it with
# scripts/link-order.sh (a stale order still links, just less tightly).
set -euo pipefail
cd "$(dirname "$0")/.."
order=$PWD/crates/tug/link/agent.order
cargo rustc --profile dist -p tug --bin tug --locked "$@" -- \
  -C "link-arg=-Wl,--symbol-ordering-file=$order" \
  -C link-arg=-Wl,--no-warn-symbol-ordering >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/dist/tug"
