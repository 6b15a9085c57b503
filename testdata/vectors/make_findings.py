"""Makes testdata/vectors/findings-v1.json: vectors for issue 16's review findings, built
with implementations independent of prereg (Python joserfc 1.8.0, cryptography, fido2
2.2.1 from the interop venv). Run from the repository root:

    .venv/bin/python testdata/vectors/make_findings.py > testdata/vectors/findings-v1.json

Envelope cases reuse the keys of envelope-v1.json (so they open with the same fixture):
  invalid-curve-epk      request JWE whose epk is a point off P-384 -> key agreement refused
  epk-zero-point         request JWE whose epk is (0, 0)             -> key agreement refused
  der-es384-signature    response whose inner JWS carries a valid ES384 signature in DER
                         form (RFC 7518 §3.4 requires raw r||s)     -> signature refused
Attestation cases (packed, x5c [leaf, intermediate] under a fresh root):
  duplicate-aaguid-extension        leaf carries id-fido-gen-ce-aaguid twice
  alg-curve-mismatch                alg -7 (ES256) but the leaf key is P-384 (signature
                                    made with P-384/SHA-256, so it verifies)
  unknown-critical-extension        leaf has an unknown critical extension
  signature-algorithm-mismatch      leaf's outer signatureAlgorithm != TBS signature
  intermediate-without-keycertsign  intermediate keyUsage lacks keyCertSign
  root-pathlen-exceeded             root pathLenConstraint 0 above an intermediate
  anchor-not-a-ca                   the configured root is not a CA
  valid-p384-es384, valid-p256-es256  controls that must verify (same PKI shape)
  expired: leaf-expired             leaf valid 2019-01-01 .. 2020-01-01: accepted without
                                    a time, refused at any time after 2020
"""

import base64
import datetime
import hashlib
import json
import os
import struct
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fido2 import cbor
from joserfc import jwe, jws
from joserfc.jwk import ECKey

HERE = os.path.dirname(os.path.abspath(__file__))
JWE_ALGS = ["ECDH-ES+A256KW", "A256GCM"]


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64u_dec(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def envelope_cases(env):
    keys = env["keys"]
    transport_pub = {k: v for k, v in keys["transport"].items() if k != "d"}
    response_pub = {k: v for k, v in keys["response"].items() if k != "d"}
    payload = env["valid"][1]["expect"]  # the pin request
    good = jwe.encrypt_compact(
        {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": transport_pub["kid"],
         "cty": "fido-prereg+json"},
        json.dumps(payload).encode(), ECKey.import_key(transport_pub), algorithms=JWE_ALGS)
    header_b64, rest = good.split(".", 1)
    header = json.loads(b64u_dec(header_b64))

    def with_epk(x, y):
        h = dict(header)
        h["epk"] = {"kty": "EC", "crv": "P-384", "x": b64u(x), "y": b64u(y)}
        return b64u(json.dumps(h, separators=(",", ":")).encode()) + "." + rest

    x = b64u_dec(header["epk"]["x"])
    y = int.from_bytes(b64u_dec(header["epk"]["y"]), "big")
    off_curve_y = ((y + 1) % (2**384)).to_bytes(48, "big")
    cases = [
        {"name": "invalid-curve-epk", "kind": "request", "open_with": "transport",
         "jwe": with_epk(x, off_curve_y),
         "why": "epk (x, y+1) is not on P-384: no key agreement with an invalid-curve point"},
        {"name": "epk-zero-point", "kind": "request", "open_with": "transport",
         "jwe": with_epk(bytes(48), bytes(48)),
         "why": "epk (0, 0) is not on P-384"},
    ]

    # A response to the first valid request, its JWS signed correctly but DER-encoded.
    request_jwe = env["valid"][0]["jwe"]
    request_hash = b64u(hashlib.sha256(request_jwe.encode()).digest())
    body = {"typ": "fido-prereg/pin-response+v1", "request_hash": request_hash,
            "serial": "31636842", "pin": "48291734", "force_pin_change": True,
            "iat": 1764300000}
    jws_header = {"alg": "ES384", "kid": keys["signing"]["kid"], "typ": "fido-prereg+jws"}
    signing_input = (b64u(json.dumps(jws_header, separators=(",", ":")).encode()) + "." +
                     b64u(json.dumps(body, separators=(",", ":")).encode()))
    d = int.from_bytes(b64u_dec(keys["signing"]["d"]), "big")
    sk = ec.derive_private_key(d, ec.SECP384R1())
    der_sig = sk.sign(signing_input.encode(), ec.ECDSA(hashes.SHA384()))
    token = signing_input + "." + b64u(der_sig)
    # The same signature in raw form verifies with joserfc: the DER form is the only fault.
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    r, s = decode_dss_signature(der_sig)
    raw_token = signing_input + "." + b64u(r.to_bytes(48, "big") + s.to_bytes(48, "big"))
    jws.deserialize_compact(raw_token, ECKey.import_key(keys["signing"]), algorithms=["ES384"])
    resp = jwe.encrypt_compact(
        {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": response_pub["kid"], "cty": "JWS"},
        token.encode(), ECKey.import_key(response_pub), algorithms=JWE_ALGS)
    cases.append({"name": "der-es384-signature", "kind": "response", "open_with": "response",
                  "request_jwe": request_jwe, "jwe": resp,
                  "why": "ES384 signature in DER (%d bytes), not raw r||s (96 bytes)" %
                         len(der_sig)})
    return cases


# --- attestation -------------------------------------------------------------------------

RP_ID = "login.microsoft.com"
ORIGIN = "https://login.microsoft.com"
AAGUID = bytes.fromhex("a25342c03cdc44148e46f4807fca511c")
OID_AAGUID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
# Same encoded length as OID_AAGUID, so the DER can be patched in place.
OID_PLACEHOLDER = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.9")
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
# A leaf valid 2019-01-01 .. 2020-01-01 only (its CA chain is still valid).
EXPIRED_START = datetime.datetime(2019, 1, 1, tzinfo=datetime.timezone.utc)


def name(cn, ou=None):
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "prereg test vectors")]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def ca_cert(subject, issuer, pub, signer, path_len, ca=True, key_cert_sign=True, start=None):
    start = start or NOW
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650 * 3)))
    if ca:
        b = (b.add_extension(x509.BasicConstraints(ca=True, path_length=path_len),
                             critical=True)
             .add_extension(x509.KeyUsage(True, False, False, False, False, key_cert_sign,
                                          True, False, False), critical=True))
    return b.sign(signer, hashes.SHA256())


def der_len(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


ECDSA_SHA256 = tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d040302")))
ECDSA_SHA384 = tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d040303")))


def resign(tbs, key, hash_alg, outer_alg):
    sig = key.sign(tbs, ec.ECDSA(hash_alg))
    return tlv(0x30, tbs + outer_alg + tlv(0x03, b"\x00" + sig))


def leaf_cert(leaf_pub, inter, inter_key, fault=None):
    ext_value = x509.UnrecognizedExtension(OID_AAGUID, tlv(0x04, AAGUID))
    start, days = (EXPIRED_START, 365) if fault == "expired" else (NOW, 3650 * 2)
    b = (x509.CertificateBuilder().subject_name(name("prereg vector leaf",
                                                     "Authenticator Attestation"))
         .issuer_name(inter.subject).public_key(leaf_pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(ext_value, critical=False))
    if fault == "duplicate-aaguid":
        b = b.add_extension(x509.UnrecognizedExtension(OID_PLACEHOLDER, tlv(0x04, AAGUID)),
                            critical=False)
    if fault == "unknown-critical":
        b = b.add_extension(x509.UnrecognizedExtension(
            x509.ObjectIdentifier("1.3.6.1.4.1.55555.7"), b"\x05\x00"), critical=True)
    cert = b.sign(inter_key, hashes.SHA256())
    tbs = cert.tbs_certificate_bytes
    if fault == "duplicate-aaguid":
        # cryptography refuses duplicate extensions, so patch the placeholder OID into a
        # second AAGUID OID and sign the patched TBSCertificate again.
        prefix = b"\x06\x0b" + bytes([0x2b, 6, 1, 4, 1, 0x82, 0xe5, 0x1c, 1, 1])
        assert tbs.count(prefix + b"\x09") == 1 and tbs.count(prefix + b"\x04") == 1
        tbs = tbs.replace(prefix + b"\x09", prefix + b"\x04")
        der = resign(tbs, inter_key, hashes.SHA256(), ECDSA_SHA256)
        assert der.count(prefix + b"\x04") == 2
        return der
    if fault == "signature-algorithm-mismatch":
        # TBS says ecdsa-with-SHA256; the outer signatureAlgorithm says SHA-384, and the
        # signature really is SHA-384 (so only the field comparison can catch it).
        assert ECDSA_SHA256 in tbs
        return resign(tbs, inter_key, hashes.SHA384(), ECDSA_SHA384)
    return cert.public_bytes(serialization.Encoding.DER)


def cose_p256(pub):
    n = pub.public_numbers()
    return cbor.encode({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"),
                        -3: n.y.to_bytes(32, "big")})


def attestation_case(case_name, why, alg, leaf_key, pki, fault=None):
    inter, inter_key, root = pki
    leaf_der = leaf_cert(leaf_key.public_key(), inter, inter_key, fault)
    challenge = b64u(os.urandom(32))
    cd = json.dumps({"type": "webauthn.create", "challenge": challenge, "origin": ORIGIN,
                     "crossOrigin": False}, separators=(",", ":")).encode()
    cred_key = ec.generate_private_key(ec.SECP256R1())
    cred_id = os.urandom(32)
    auth_data = (hashlib.sha256(RP_ID.encode()).digest() + bytes([0x45]) +
                 struct.pack(">I", 0) + AAGUID + struct.pack(">H", len(cred_id)) + cred_id +
                 cose_p256(cred_key.public_key()))
    signed = auth_data + hashlib.sha256(cd).digest()
    # alg names the hash; the key's curve is whatever the leaf has.
    hash_alg = {-7: hashes.SHA256(), -35: hashes.SHA384()}[alg]
    sig = leaf_key.sign(signed, ec.ECDSA(hash_alg))
    att = cbor.encode({"fmt": "packed", "attStmt": {
        "alg": alg, "sig": sig,
        "x5c": [leaf_der, inter.public_bytes(serialization.Encoding.DER)]},
        "authData": auth_data})
    return {"name": case_name, "why": why, "rp_id": RP_ID, "origin": ORIGIN,
            "challenge": challenge, "aaguid": "a25342c0-3cdc-4414-8e46-f4807fca511c",
            "client_data_json": b64u(cd), "attestation_object": b64u(att),
            "trust_root_pem": root.public_bytes(serialization.Encoding.PEM).decode()}


def pki(root_path_len=1, root_ca=True, inter_key_cert_sign=True):
    """(intermediate, its key, root): a P-384 root over a P-256 intermediate."""
    start = EXPIRED_START
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = ca_cert(name("prereg vector root"), name("prereg vector root"),
                   root_key.public_key(), root_key, root_path_len, ca=root_ca, start=start)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = ca_cert(name("prereg vector intermediate"), root.subject,
                    inter_key.public_key(), root_key, 0, key_cert_sign=inter_key_cert_sign,
                    start=start)
    return inter, inter_key, root


def attestation_cases():
    good = pki()
    p256_leaf = ec.generate_private_key(ec.SECP256R1())
    p384_leaf = ec.generate_private_key(ec.SECP384R1())
    valid = [
        attestation_case("valid-p384-es384", "control: P-384 leaf, alg -35", -35, p384_leaf,
                         good),
        attestation_case("valid-p256-es256", "control: P-256 leaf, alg -7", -7, p256_leaf,
                         good),
    ]
    invalid = [
        attestation_case("duplicate-aaguid-extension",
                         "the leaf carries id-fido-gen-ce-aaguid twice (RFC 5280 §4.2)", -7,
                         p256_leaf, good, "duplicate-aaguid"),
        attestation_case("alg-curve-mismatch",
                         "alg -7 (ES256) names P-256 but the leaf key is P-384", -7,
                         p384_leaf, good),
        attestation_case("unknown-critical-extension",
                         "the leaf has a critical extension the verifier does not know "
                         "(RFC 5280 §4.2)", -7, p256_leaf, good, "unknown-critical"),
        attestation_case("signature-algorithm-mismatch",
                         "the leaf's signatureAlgorithm differs from its TBS signature field "
                         "(RFC 5280 §4.1.1.2)", -7, p256_leaf, good,
                         "signature-algorithm-mismatch"),
        attestation_case("intermediate-without-keycertsign",
                         "the intermediate's keyUsage lacks keyCertSign (RFC 5280 §4.2.1.3)",
                         -7, p256_leaf, pki(inter_key_cert_sign=False)),
        attestation_case("root-pathlen-exceeded",
                         "the root's pathLenConstraint 0 allows no intermediate below it "
                         "(RFC 5280 §4.2.1.9)", -7, p256_leaf, pki(root_path_len=0)),
        attestation_case("anchor-not-a-ca",
                         "the configured root has no basicConstraints cA (RFC 5280 §6.1)",
                         -7, p256_leaf, pki(root_ca=False)),
    ]
    # Valid when no time is given; refused once the verifier checks validity at any time
    # after 2020-01-01 (prereg webauthn verify-attestation checks the current time).
    expired = [attestation_case("leaf-expired",
                                "the leaf was valid 2019-01-01 .. 2020-01-01 only", -7,
                                p256_leaf, good, "expired")]
    return valid, invalid, expired


def main():
    env = json.load(open(os.path.join(HERE, "envelope-v1.json")))
    valid, invalid, expired = attestation_cases()
    out = {
        "made_with": "make_findings.py: joserfc 1.8.0, cryptography, fido2 2.2.1 (cbor)",
        "envelope": {"keys_from": "envelope-v1.json", "invalid": envelope_cases(env)},
        "attestation": {"valid": valid, "invalid": invalid, "expired": expired},
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
