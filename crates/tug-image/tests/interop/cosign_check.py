#!/usr/bin/env python3
"""Checks a key pair and a signature written by tug with implementations
other than tug's: `cryptography` (OpenSSL) for ECDSA P-256/SHA-256 and the
keys' PEM/DER forms, hashlib's scrypt and PyNaCl's secretbox for cosign's
encrypted private key. Each check is written from cosign's formats:

  DIR/tug.pub       PUBLIC KEY PEM (SPKI), ECDSA P-256
  DIR/tug.key       ENCRYPTED SIGSTORE PRIVATE KEY PEM: JSON with scrypt
                    parameters and a nacl/secretbox ciphertext of PKCS#8 DER
  DIR/payload.json  simple-signing payload, signed byte for byte
  DIR/payload.sig   base64 DER ECDSA signature

Usage: cosign_check.py DIR PASSWORD DIGEST REFERENCE
Exits 0 and prints "ok" when every check passes, else 1 naming the check.
"""

import base64
import hashlib
import json
import pathlib
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox


def fail(check, detail):
    print(f"FAIL {check}: {detail}")
    sys.exit(1)


def pem_body(text, label):
    lines = text.strip().splitlines()
    if lines[0] != f"-----BEGIN {label}-----" or lines[-1] != f"-----END {label}-----":
        fail("pem", f"not a {label} PEM")
    return base64.b64decode("".join(lines[1:-1]))


def main():
    d = pathlib.Path(sys.argv[1])
    password, digest, reference = sys.argv[2].encode(), sys.argv[3], sys.argv[4]

    pub = serialization.load_pem_public_key((d / "tug.pub").read_bytes())
    if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
        fail("public key", "not ECDSA P-256")

    payload = (d / "payload.json").read_bytes()
    sig = base64.b64decode((d / "payload.sig").read_text().strip(), validate=True)
    try:
        pub.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        fail("signature", "does not verify over payload.json with tug.pub")

    doc = json.loads(payload)
    if list(doc) != ["critical", "optional"] or doc["optional"] is not None:
        fail("payload", f"top-level keys {list(doc)}")
    crit = doc["critical"]
    if list(crit) != ["identity", "image", "type"]:
        fail("payload", f"critical keys {list(crit)}")
    if crit["type"] != "cosign container image signature":
        fail("payload", f"critical.type {crit['type']!r}")
    if crit["identity"] != {"docker-reference": reference}:
        fail("payload", f"critical.identity {crit['identity']}")
    if crit["image"] != {"docker-manifest-digest": digest}:
        fail("payload", f"critical.image {crit['image']}")
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        fail("payload", f"digest {digest!r}")
    # cosign marshals with Go's encoding/json: compact, no trailing newline.
    if payload != json.dumps(doc, separators=(",", ":")).encode():
        fail("payload", "not compact JSON in cosign's key order")

    body = json.loads(pem_body((d / "tug.key").read_text(), "ENCRYPTED SIGSTORE PRIVATE KEY"))
    kdf, cipher = body["kdf"], body["cipher"]
    if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
        fail("private key", f"kdf {kdf['name']}, cipher {cipher['name']}")
    p = kdf["params"]
    secret = hashlib.scrypt(
        password,
        salt=base64.b64decode(kdf["salt"]),
        n=p["N"],
        r=p["r"],
        p=p["p"],
        maxmem=256 * 1024 * 1024,
        dklen=32,
    )
    try:
        der = SecretBox(secret).decrypt(
            base64.b64decode(body["ciphertext"]), base64.b64decode(cipher["nonce"])
        )
    except CryptoError:
        fail("private key", "secretbox does not open with this password")
    private = serialization.load_der_private_key(der, password=None)
    if private.public_key().public_numbers() != pub.public_numbers():
        fail("private key", "its public half is not tug.pub")
    print("ok")


if __name__ == "__main__":
    main()
