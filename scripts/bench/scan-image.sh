#!/usr/bin/env bash
# Image scanning: time of `tug scan IMAGE` on the examples/hello image and on
# a generated ~200 MB image (4 layers: text files, random binaries, copies of
# the hello binary with its cargo-auditable data, a layer deleting files),
# per uncompressed layer byte; then SBOM generation time.
#
#   scripts/bench/scan-image.sh [MB=200]
#
# Needs python3 and the RustSec snapshot ($TUG_ADVISORY_DB or ../shared/data/advisory-db).
# TUG=path/to/tug measures that binary instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${1:-200}
RUNS=${RUNS:-3}
DB=${TUG_ADVISORY_DB:-$(cd .. && pwd)/shared/data/advisory-db}
if [ -z "${TUG:-}" ]; then
  cargo build --release -q -p tug
  TUG=$PWD/target/release/tug
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$TUG" build -f examples/hello/tug.yaml --dest "oci:$WORK/hello" >/dev/null
HELLO_BIN=$(find target/tug-static -path '*release/hello' -type f | head -1)

python3 - "$WORK/big" "$MB" "$HELLO_BIN" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
out, mb, hello = sys.argv[1], int(sys.argv[2]), sys.argv[3]
r = random.Random(7)
os.makedirs(f"{out}/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)
def layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data, mode in files:
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode
            t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    gz = gzip.compress(raw, compresslevel=1, mtime=0)
    return raw, gz
words = [("".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9)))) for _ in range(5000)]
budget = mb * 1024 * 1024
text = [(f"srv/conf/{i}.conf", (" ".join(r.choice(words) for _ in range(4000)) + "\n").encode(), 0o644)
        for i in range(int(budget * 0.4) // 24000)]
rand = [(f"srv/data/{i}.bin", os.urandom(1 << 20), 0o644) for i in range(int(budget * 0.4) >> 20)]
hb = open(hello, "rb").read()
bins = [(f"usr/local/bin/svc{i}", hb, 0o755) for i in range(max(1, int(budget * 0.2) // len(hb)))]
gone = [(f"srv/conf/.wh.{i}.conf", b"", 0o644) for i in range(0, len(text), 10)]
descs, diffs = [], []
for files in (text, rand, bins, gone):
    raw, gz = layer(files)
    d, n = blob(gz)
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n})
    diffs.append("sha256:" + hashlib.sha256(raw).hexdigest())
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": "10001"},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
cd, cn = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
                  "layers": descs}).encode()
md, mn = blob(man)
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
open(f"{out}/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn}]}))
PY

for img in hello big; do
  bytes=$("$TUG" scan "oci:$WORK/$img" --db "$DB" -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(l["bytes"] for l in d["layers"]))')
  best=
  for _ in $(seq "$RUNS"); do
    s=$(date +%s.%N)
    "$TUG" scan "oci:$WORK/$img" --db "$DB" -o json >/dev/null
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$best" ] || (( $(echo "$t < $best" | bc -l) )); then best=$t; fi
  done
  python3 -c "b=$bytes; t=$best; print(f'{\"$img\":6} {b/1e6:8.1f} MB uncompressed  best of $RUNS: {t:6.3f} s  {t/b*1e9:7.2f} ns/byte  {b/t/1e6:7.1f} MB/s')"
done

# SBOM generation: the hello image (its binary's embedded list) and this
# workspace's Cargo.lock.
for src in "oci:$WORK/hello" "oci:$WORK/big" .; do
  s=$(date +%s.%N)
  n=$("$TUG" sbom "$src" --format cyclonedx | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["components"]))')
  e=$(date +%s.%N)
  python3 -c "print(f'sbom {\"$src\".split(\"/\")[-1]:8} {$n:5d} components  {($e-$s):6.3f} s')"
done
