"""Scores tug, kingfisher and Trivy secret findings against TRUTH.tsv.

TRUTH.tsv: path, line, label (`secret` or `not`), note. Paths are as in the
repository; the bench renames test-named directories to `samples` so
Trivy does not skip them, and this maps them back. Truth is pooled: every
line any tool reports is labelled, so recall is against all secrets found
by any of the tools. A reported line missing from TRUTH.tsv is listed and
counted as a false positive until it is labelled.
"""
import json, os, re, sys

truth_path, work = sys.argv[1], sys.argv[2]
SOURCE = re.compile(r"^(kingfisher/src/|detect-secrets/detect_secrets/|gitleaks/(detect|config|report)/)")
truth = {}
for row in open(truth_path):
    if not row.strip() or row.startswith("#"):
        continue
    path, line, label, *_ = row.rstrip("\n").split("\t")
    truth[(path, int(line))] = label


def back(p):
    p = os.path.normpath(p)
    p = p[2:] if p.startswith("./") else p
    # samples/ was testdata/ (kingfisher, gitleaks) or test_data/ (detect-secrets).
    if p.startswith("detect-secrets/samples/"):
        return p.replace("detect-secrets/samples/", "detect-secrets/test_data/", 1)
    return p.replace("/samples/", "/testdata/", 1)


def load(name):
    f = os.path.join(work, f"c-{name}.json")
    try:
        doc = json.load(open(f))
    except (OSError, ValueError):
        return set()
    if name == "tug":
        return {(back(x["file"]), x["line"]) for x in doc.get("findings", [])}
    if name == "kf":
        return {(back(x["finding"]["path"]), int(x["finding"]["line"])) for x in doc.get("findings", [])}
    return {
        (back(r["Target"]), s["StartLine"])
        for r in doc.get("Results") or []
        for s in r.get("Secrets") or []
    }


secrets = {k for k, v in truth.items() if v == "secret"}
print(f"truth: {len(secrets)} secret lines, {len(truth) - len(secrets)} labelled non-secrets")
print(f"{'tool':<12}{'found':>7}{'TP':>6}{'FP':>6}{'unlab':>7}{'recall':>9}{'precision':>11}{'FP in source':>14}")
unlabelled = {}
for name, label in (("tug", "tug"), ("kf", "kingfisher"), ("trivy", "trivy")):
    found = load(name)
    tp = len(found & secrets)
    unl = {k for k in found if k not in truth}
    fp = len(found) - tp
    src_fp = sorted(k for k in found if k not in secrets and SOURCE.match(k[0]))
    rec = tp / len(secrets) if secrets else 0.0
    prec = tp / len(found) if found else 0.0
    print(f"{label:<12}{len(found):>7}{tp:>6}{fp:>6}{len(unl):>7}{rec:>9.3f}{prec:>11.3f}{len(src_fp):>14}")
    for k in src_fp:
        print(f"    {label} finding in non-test source: {k[0]}:{k[1]}")
    if unl:
        unlabelled[label] = sorted(unl)
    missed = sorted(secrets - found)
    if name == "tug" and missed:
        print(f"    missed by tug: " + ", ".join(f"{p}:{l}" for p, l in missed))
for label, u in unlabelled.items():
    print(f"unlabelled lines reported by {label} (add them to TRUTH.tsv):")
    for p, l in u:
        print(f"    {p}\t{l}")
