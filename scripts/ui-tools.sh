#!/usr/bin/env bash
# What the dashboard's browser tests run (crates/tug/tests/dashboard_ui.rs):
# Debian's chromium, and playwright-core + axe-core from npm in a directory of
# their own (TUG_UI_TOOLS, default ~/.cache/tug/ui-tools), never in the repo.
# Idempotent; prints nothing when all is there.
set -euo pipefail
dir="${TUG_UI_TOOLS:-$HOME/.cache/tug/ui-tools}"
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
    else
        sudo apt-get install -y -qq chromium >/dev/null
    fi
fi
if [ -f "$dir/node_modules/playwright-core/package.json" ] && [ -f "$dir/node_modules/axe-core/axe.min.js" ]; then
    exit 0
fi
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
npm install --prefix "$dir" --silent --no-audit --no-fund playwright-core@1 axe-core@4 >/dev/null
