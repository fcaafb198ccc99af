#!/bin/sh
# Rewrites expected.tsv from cargo-audit's report on every corpus lockfile,
# against the advisory-db/ subset beside it. Needs `cargo audit` and jq.
# --no-yanked: the yanked check needs the crates.io index (network).
set -eu
cd "$(dirname "$0")"
out=expected.tsv.new
printf '# lockfile\tadvisory\tcrate\tversion\tkind (from %s)\n' "$(cargo audit --version | sed "s/^cargo-audit-audit/cargo-audit/")" > "$out"
for lock in */Cargo.lock; do
    # cargo audit exits 1 when it finds something: only a missing report is an error.
    cargo audit --db advisory-db --no-fetch --stale --no-yanked -f "$lock" --json > report.json || true
    jq -r --arg f "$lock" '
        ( .vulnerabilities.list[] | [$f, .advisory.id, .package.name, .package.version, "vulnerability"] ),
        ( .warnings | to_entries[] | select(.key != "yanked") | .value[]
          | [$f, .advisory.id, .package.name, .package.version, .kind] )
        | @tsv' report.json
done | LC_ALL=C sort >> "$out"
rm -f report.json
mv "$out" expected.tsv
