"""Seeds fuzz/corpus/<target>/ from the committed vectors (testdata/vectors/*.json) and
test fixtures, so every target starts from inputs that reach deep into its parser.
Usage: python3 fuzz/make_corpus.py [CORPUS_DIR]   (default fuzz/corpus)
Uses only the standard library; with python-fido2 importable (the interop venv) it also
extracts the x5c intermediates from attestation objects for the x509_chain target.
"""

import base64
import hashlib
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def pem_to_der(pem):
    out, body, inside = [], [], False
    for line in pem.splitlines():
        if line.startswith("-----BEGIN CERTIFICATE"):
            inside, body = True, []
        elif line.startswith("-----END CERTIFICATE"):
            inside = False
            out.append(base64.b64decode("".join(body)))
        elif inside:
            body.append(line.strip())
    return out


def item(b):
    return struct.pack(">H", len(b)) + b


def x5c_of(attestation_object):
    try:
        from fido2 import cbor
    except ImportError:
        return []
    try:
        obj = cbor.decode(attestation_object)
        return list(obj["attStmt"].get("x5c", []))
    except Exception:  # noqa: BLE001 - a seed is optional
        return []


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")
    seeds = {t: [] for t in ["envelope_open_request", "envelope_open_response", "jwk_parse",
                             "webauthn_registration", "cose_key", "x509_chain",
                             "authenticator_request"]}
    vec = lambda n: json.load(open(os.path.join(ROOT, "testdata", "vectors", n)))  # noqa: E731
    env = vec("envelope-v1.json")
    findings = vec("findings-v1.json")
    att = vec("attestation-v1.json")

    for case in env["valid"] + env["invalid"] + findings["envelope"]["invalid"]:
        kind = "envelope_open_request" if case["kind"] == "request" else "envelope_open_response"
        seeds[kind].append(case["jwe"].encode())
    for k in env["keys"].values():
        seeds["jwk_parse"].append(json.dumps(k).encode())
        seeds["jwk_parse"].append(json.dumps({k2: v for k2, v in k.items() if k2 != "d"}).encode())
    for s in ("transport_jwks", "trusted_signing_jwks"):
        seeds["jwk_parse"].append(json.dumps(env[s]).encode())

    regs = (att["valid"] + att["invalid"] + findings["attestation"]["valid"] +
            findings["attestation"]["invalid"] + findings["attestation"]["expired"])
    for r in regs:
        cd, ao = b64u(r["client_data_json"]), b64u(r["attestation_object"])
        seeds["webauthn_registration"].append(struct.pack(">H", len(cd)) + cd + ao)
        if r.get("credential_public_key_cose"):
            seeds["cose_key"].append(b64u(r["credential_public_key_cose"]))
        roots = pem_to_der(r["trust_root_pem"])
        chain = x5c_of(ao)[1:]
        for root in roots:
            seeds["x509_chain"].append(b"".join(item(c) for c in chain) + item(root))
            seeds["x509_chain"].append(item(root))
    # Authenticator data: the 37-byte prefix of the signed part is in every object; the
    # cose target also parses authData, so seed one plain authData.
    seeds["cose_key"].append(hashlib.sha256(b"login.microsoft.com").digest() + b"\x05" +
                             b"\x00\x00\x00\x01")

    entra = open(os.path.join(ROOT, "crates", "authenticator", "tests", "fixtures",
                              "entra_creation_options.json"), "rb").read()
    cred_req = json.dumps(env["valid"][0]["expect"]["public_key"]).encode()
    for mode in (0, 1, 2):
        seeds["authenticator_request"].append(bytes([mode]) + entra)
        seeds["authenticator_request"].append(bytes([mode]) + cred_req)

    total = 0
    for target, items in seeds.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for data in items:
            name = hashlib.sha1(data).hexdigest()
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            total += 1
    print(f"seeded {total} inputs under {out}")


if __name__ == "__main__":
    main()
