#!/usr/bin/env python3
"""Agreement of `tug lint` with hadolint on a corpus of Dockerfiles.

    lint-agreement.py TUG HADOLINT FILE...

Both tools run once over all files (JSON output). Compared: (file, line, rule)
for the DL rules tug implements in its default profile, on the files hadolint
parses (no DL1000 from hadolint). Prints recall and precision of tug against
hadolint, then every disagreement.
"""
import json
import subprocess
import sys
from collections import Counter

tug, hadolint, *files = sys.argv[1:]

rules = json.loads(subprocess.run([tug, "lint", "--list-rules", "--format", "json"],
                                  check=True, capture_output=True, text=True).stdout)
both = {r["id"] for r in rules if r["id"].startswith("DL") and r["profile"] == "default"}
both.discard("DL1000")

def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return json.loads(p.stdout or "[]")

had = run([hadolint, "--no-fail", "-f", "json", *files])
ours = run([tug, "lint", "--failure-threshold", "none", "--format", "json", *files])

unparsed = {f["file"] for f in had if f["code"] == "DL1000"}

# Deliberate differences, listed in the README: `COPY --from=org/image` names
# an image, not an undefined stage (hadolint reports DL3022 there).
def deliberate(f):
    if f["code"] != "DL3022":
        return False
    with open(f["file"], encoding="utf-8", errors="replace") as fh:
        line = fh.read().split("\n")[f["line"] - 1]
    src = next((w[len("--from="):] for w in line.split() if w.startswith("--from=")), "")
    return any(c in src for c in "/:.")

skipped = [f for f in had if f["file"] not in unparsed and deliberate(f)]
had = [f for f in had if not deliberate(f)]
H = {(f["file"], f["line"], f["code"]) for f in had
     if f["code"] in both and f["file"] not in unparsed}
T = {(f["file"], f["line"], f["rule"]) for f in ours
     if f["rule"] in both and f["file"] not in unparsed}

tp = len(H & T)
recall = tp / len(H) if H else 1.0
precision = tp / len(T) if T else 1.0
print(f"files: {len(files)} ({len(unparsed)} that hadolint cannot parse left out)")
print(f"DL rules compared: {len(both)}; findings: hadolint {len(H)}, tug {len(T)}, both {tp}")
print(f"recall {recall:.3f}  precision {precision:.3f}")
if skipped:
    print(f"left out as deliberate differences: {len(skipped)} hadolint DL3022 on COPY --from=<image>")
# ShellCheck rules tug implements, compared per (file, line): hadolint shows
# one SC finding per line, so a line where it shows another SC rule is not
# counted against tug.
sc = {r["id"] for r in rules if r["id"].startswith("SC")}
HS = {(f["file"], f["line"], f["code"]) for f in had if f["code"] in sc and f["file"] not in unparsed}
TS = {(f["file"], f["line"], f["rule"]) for f in ours if f["rule"] in sc and f["file"] not in unparsed}
shown = {(f["file"], f["line"]) for f in had if f["code"].startswith("SC")}
TS_judged = {t for t in TS if t in HS or (t[0], t[1]) not in shown}
sc_tp = len(HS & TS)
print(f"ShellCheck rules {', '.join(sorted(sc))}: hadolint {len(HS)}, tug {len(TS)}, both {sc_tp}; "
      f"recall {sc_tp / len(HS) if HS else 1.0:.3f}  precision {sc_tp / len(TS_judged) if TS_judged else 1.0:.3f}")
missed, extra = sorted(H - T), sorted(T - H)
if missed:
    print("only hadolint: " + ", ".join(f"{r} x{n}" for r, n in Counter(m[2] for m in missed).most_common()))
    for m in missed:
        print(f"  - {m[0]}:{m[1]} {m[2]}")
if extra:
    print("only tug:      " + ", ".join(f"{r} x{n}" for r, n in Counter(e[2] for e in extra).most_common()))
    for e in extra:
        print(f"  + {e[0]}:{e[1]} {e[2]}")
