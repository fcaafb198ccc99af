#!/usr/bin/env bash
# Dependency audit: `tug scan --scanners vuln` vs `cargo audit` on the same
# lockfiles and the same advisory database, several runs each. Prints times,
# the ratio, and whether both report the same advisory ids.
#
#   scripts/bench/audit.sh [DB_DIR]
#
# Lockfiles: this repository's Cargo.lock, and a larger one assembled from
# real lockfiles (this repo, cargo-audit's own) plus one old release of every
# crate the database names, so that hundreds of advisories match.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=$(realpath "${1:-${TUG_BENCH_DB:-../shared/data/advisory-db}}")
RUNS=${RUNS:-10}
[ -d "$DB/crates" ] || { echo "no advisory database at $DB" >&2; exit 1; }
command -v cargo-audit >/dev/null || { echo "cargo-audit not found: cargo install cargo-audit --locked" >&2; exit 1; }
cargo build --release -q -p tug
TUG=$PWD/target/release/tug
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/repo" "$WORK/large"
cp Cargo.lock "$WORK/repo/Cargo.lock"
AUDIT_LOCK=$(ls -d "$HOME"/.cargo/registry/src/*/cargo-audit-*/Cargo.lock 2>/dev/null | tail -1 || true)
python3 - "$DB" "$WORK/large/Cargo.lock" Cargo.lock ${AUDIT_LOCK:+"$AUDIT_LOCK"} <<'PY'
import os, sys, tomllib
db, out, *locks = sys.argv[1:]
REG = "registry+https://github.com/rust-lang/crates.io-index"
pkgs = {}
for path in locks:
    with open(path, "rb") as f:
        for p in tomllib.load(f).get("package", []):
            if p.get("source", "").startswith("registry+"):
                pkgs[(p["name"], p["version"])] = REG
for name in sorted(os.listdir(os.path.join(db, "crates"))):
    pkgs.setdefault((name, "0.1.0"), REG)
lines = ["version = 3", "", "[[package]]", 'name = "bench-root"', 'version = "0.1.0"', "dependencies = ["]
lines += [f' "{n} {v}",' for (n, v) in sorted(pkgs)]
lines += ["]", ""]
for (n, v) in sorted(pkgs):
    lines += ["[[package]]", f'name = "{n}"', f'version = "{v}"', f'source = "{REG}"', ""]
open(out, "w").write("\n".join(lines))
print(f"large lockfile: {len(pkgs) + 1} packages")
PY

# --no-yanked: the yanked check would query the crates.io index over the network.
# Range edges: for every version bound in every advisory, the bound itself,
# a pre-release of it and the next patch, to compare range semantics.
mkdir -p "$WORK/edges"
python3 - "$DB" "$WORK/edges/Cargo.lock" <<'PY'
import os, re, sys
db, out = sys.argv[1:]
REG = "registry+https://github.com/rust-lang/crates.io-index"
pkgs = set()
for name in sorted(os.listdir(os.path.join(db, "crates"))):
    d = os.path.join(db, "crates", name)
    for f in os.listdir(d):
        text = open(os.path.join(d, f)).read()
        for v in re.findall(r"[<>=^~]=?\s*(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)", text):
            base = v.split("-")[0]
            ma, mi, pa = base.split(".")
            for x in {v, base, base + "-alpha.1", f"{ma}.{mi}.{int(pa) + 1}"}:
                pkgs.add((name, x))
lines = ["version = 3", "", "[[package]]", 'name = "bench-root"', 'version = "0.1.0"', "dependencies = ["]
lines += [f' "{n} {v}",' for (n, v) in sorted(pkgs)]
lines += ["]", ""]
for (n, v) in sorted(pkgs):
    lines += ["[[package]]", f'name = "{n}"', f'version = "{v}"', f'source = "{REG}"', ""]
open(out, "w").write("\n".join(lines))
print(f"edges lockfile: {len(pkgs) + 1} packages")
PY

AUDIT=(cargo audit --db "$DB" --no-fetch --stale --no-yanked --json)
compare() {
  local dir=$1
  "$TUG" scan --scanners vuln --db "$DB" --format json "$dir" > "$WORK/tug.json"
  (cd "$dir" && "${AUDIT[@]}" > "$WORK/audit.json" 2>"$WORK/audit.err" || true)
  python3 - "$WORK/tug.json" "$WORK/audit.json" <<'PY'
import json, sys
tug = json.load(open(sys.argv[1]))
try:
    audit = json.load(open(sys.argv[2]))
except ValueError:
    sys.exit("cargo audit produced no JSON: see its stderr")
t_v = {(f["rule_id"], f["advisory"]["package"], f["advisory"]["version"]) for f in tug["findings"] if f["advisory"]["kind"] == "vulnerability"}
t_w = {(f["rule_id"], f["advisory"]["package"], f["advisory"]["version"]) for f in tug["findings"] if f["advisory"]["kind"] != "vulnerability"}
a_v = {(v["advisory"]["id"], v["package"]["name"], v["package"]["version"]) for v in audit["vulnerabilities"]["list"]}
a_w = set()
for kind, lst in audit.get("warnings", {}).items():
    if kind == "yanked":
        continue
    for w in lst:
        if w.get("advisory"):
            a_w.add((w["advisory"]["id"], w["package"]["name"], w["package"]["version"]))
for label, t, a in [("vulnerabilities", t_v, a_v), ("informational", t_w, a_w)]:
    same = "same" if t == a else "DIFFERENT"
    print(f"  {label:<16} tug {len(t):>4}  cargo-audit {len(a):>4}  -> {same}")
    for x in sorted(t - a)[:10]: print(f"    only tug:         {x}")
    for x in sorted(a - t)[:10]: print(f"    only cargo-audit: {x}")
PY
}

for name in repo large edges; do
  dir=$WORK/$name
  echo "== $name: $(grep -c '^\[\[package\]\]' "$dir/Cargo.lock") packages"
  compare "$dir"
  if command -v hyperfine >/dev/null; then
    hyperfine -N -i --warmup 2 --runs "$RUNS" --export-json "$WORK/t.json" \
      -n tug "$TUG scan --scanners vuln --db $DB --format json $dir" \
      -n cargo-audit "cargo audit --db $DB --no-fetch --stale --no-yanked --json -f $dir/Cargo.lock" >/dev/null
    python3 - "$WORK/t.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
cpu = lambda x: (x["user"] + x["system"]) * 1000
for n, x in r.items():
    print(f"  {n:<12} wall {x['mean']*1000:8.1f} ms ±{x['stddev']*1000:5.1f} (min {x['min']*1000:.1f})   cpu {cpu(x):7.1f} ms")
print(f"  cargo-audit/tug: wall {r['cargo-audit']['mean']/r['tug']['mean']:.1f}x, min {r['cargo-audit']['min']/r['tug']['min']:.1f}x, cpu {cpu(r['cargo-audit'])/cpu(r['tug']):.1f}x")
PY
  else
    for t in tug cargo-audit; do
      s=$(date +%s%N)
      for _ in $(seq "$RUNS"); do
        if [ $t = tug ]; then "$TUG" scan --scanners vuln --db "$DB" --format json "$dir" >/dev/null
        else cargo audit --db "$DB" --no-fetch --stale --no-yanked --json -f "$dir/Cargo.lock" >/dev/null || true; fi
      done
      echo "  $t: $(( ($(date +%s%N) - s) / RUNS / 1000000 )) ms/run"
    done
  fi
done
