"""Independent WebAuthn data for the webauthn crate's interop tests, built and checked
with Yubico's python-fido2 (pinned in requirements.txt) and pyca/cryptography.

Reads JSON on stdin, one of:
  {"mode": "make", "rp_id": "...", "origin": "..."}
      Builds registrations with software keys: packed self attestation (ES256, ES384,
      RS256), fmt none (ES256), and packed with an x5c chain under a throwaway EC root
      and under an RSA root (the shape of Yubico's chains); plus assertions for three
      of the credentials. Every item is first verified here with
      fido2.server.Fido2Server (and fido2.attestation.PackedAttestation for packed),
      so a failure on the Rust side is a disagreement, not a bad fixture.
      Prints {"registrations": [...], "assertions": [...]}; bytes are base64url.
  {"mode": "make-invalid", "rp_id": "...", "origin": "..."}
      Builds packed registrations that break one rule each (leaf without the OU, a CA
      leaf, AAGUID extension mismatch, critical AAGUID extension, self attestation with
      an alg unlike the key's, x5c leaf issued by an intermediate not in x5c, wrong
      signature hash). Each is confirmed refused by python-fido2 (PackedAttestation,
      or the x5c chain check) before it is printed as {"cases": [{"name", "challenge",
      "client_data_json", "attestation_object", "root_pem", "python_error"}]}.
  {"mode": "check", "items": [{"attestation_object": b64, "client_data_json": b64,
                                "ours": {"fmt","aaguid","credential_id","public_key_cose",
                                         "sign_count","uv","extensions"}}]}
      Parses each attestation object with python-fido2 and compares with what the Rust
      verifier reported. Prints {"results": [{"agree": bool, "diffs": [...]}]}.
"""

import datetime
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fido2 import cbor
from fido2.attestation import AttestationVerifier, PackedAttestation, verify_x509_chain
from fido2.cose import ES256, ES384, RS256
from fido2.server import Fido2Server
from fido2.utils import sha256, websafe_decode, websafe_encode
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

FLAG = AuthenticatorData.FLAG


class OneRoot(AttestationVerifier):
    def __init__(self, root_der):
        super().__init__()
        self.root_der = root_der

    def ca_lookup(self, attestation_result, auth_data):
        return self.root_der


def make_chain(
    aaguid,
    ou="Authenticator Attestation",
    leaf_ca=False,
    ext_aaguid=None,
    ext_critical=False,
    via_intermediate=False,
    root_rsa=False,
):
    """A root CA and a packed-attestation leaf per WebAuthn §8.2.1 (or breaking it, as
    the keyword arguments say). With via_intermediate, the leaf is issued by an
    intermediate CA; returns (root, leaf, leaf_key, intermediate)."""
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    later = now + datetime.timedelta(days=3650)
    root_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if root_rsa
        else ec.generate_private_key(ec.SECP256R1())
    )
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "python interop"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Interop Root CA"),
        ]
    )
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    issuer_name, issuer_key, intermediate = root_name, root_key, None
    if via_intermediate:
        issuer_key = ec.generate_private_key(ec.SECP256R1())
        issuer_name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "python interop"),
                x509.NameAttribute(NameOID.COMMON_NAME, "Interop Intermediate"),
            ]
        )
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(issuer_name)
            .issuer_name(root_name)
            .public_key(issuer_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(root_key, hashes.SHA256())
        )
    subject = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "python interop"),
    ]
    if ou:
        subject.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, "Interop EE"))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(issuer_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=leaf_ca, path_length=None), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4"),
                b"\x04\x10" + bytes(ext_aaguid if ext_aaguid is not None else aaguid),
            ),
            critical=ext_critical,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    if via_intermediate:
        return root, leaf, leaf_key, intermediate
    return root, leaf, leaf_key


class Signer:
    """A credential private key (EC or RSA) and how it signs."""

    def __init__(self, curve):
        if curve == "rsa":
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.cose_cls = RS256
        else:
            self.key = ec.generate_private_key(curve)
            self.cose_cls = ES256 if isinstance(curve, ec.SECP256R1) else ES384

    def sign(self, data):
        if self.cose_cls is RS256:
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        h = hashes.SHA256() if self.cose_cls is ES256 else hashes.SHA384()
        return self.key.sign(data, ec.ECDSA(h))


def registration(name, rp_id, origin, curve, fmt, with_chain=False, root_rsa=False):
    signer = Signer(curve)
    cose_cls = signer.cose_cls
    public_key = cose_cls.from_cryptography_key(signer.key.public_key())
    aaguid = Aaguid(os.urandom(16))
    cred_id = os.urandom(32)
    challenge = websafe_encode(os.urandom(32))
    client_data = CollectedClientData.create("webauthn.create", challenge, origin)
    extensions = {"credProtect": 1, "hmac-secret": True}
    auth_data = AuthenticatorData.create(
        sha256(rp_id.encode()),
        FLAG.UP | FLAG.UV | FLAG.AT | FLAG.ED,
        0,
        AttestedCredentialData.create(aaguid, cred_id, public_key),
        extensions,
    )
    signed = bytes(auth_data) + client_data.hash
    root_pem = None
    if fmt == "none":
        att_stmt = {}
    elif with_chain:
        root, leaf, leaf_key = make_chain(aaguid, root_rsa=root_rsa)
        sig = leaf_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        att_stmt = {"alg": -7, "sig": sig, "x5c": [leaf.public_bytes(Encoding.DER)]}
        root_pem = root.public_bytes(Encoding.PEM).decode()
    else:
        sig = signer.sign(signed)
        att_stmt = {"alg": cose_cls.ALGORITHM, "sig": sig}
    att_obj = AttestationObject.create(fmt, auth_data, att_stmt)

    # Self-check with python-fido2 before handing it to Rust.
    if fmt == "packed":
        PackedAttestation().verify(att_stmt, auth_data, client_data.hash)
    verifier = (
        OneRoot(x509.load_pem_x509_certificate(root_pem.encode()).public_bytes(Encoding.DER))
        if root_pem
        else None
    )
    server = Fido2Server(
        {"id": rp_id, "name": "interop"},
        attestation="direct" if verifier else None,
        verify_origin=lambda o: o == origin,
        verify_attestation=verifier,
    )
    response = {
        "id": websafe_encode(cred_id),
        "rawId": websafe_encode(cred_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": websafe_encode(client_data),
            "attestationObject": websafe_encode(att_obj),
        },
        "clientExtensionResults": {},
    }
    server.register_complete(
        {"challenge": challenge, "user_verification": "required"}, response
    )
    return signer, {
        "name": name,
        "challenge": challenge,
        "client_data_json": websafe_encode(client_data),
        "attestation_object": websafe_encode(att_obj),
        "root_pem": root_pem,
        "response": response,
        "expect": {
            "fmt": fmt,
            "aaguid": str(aaguid),
            "credential_id": websafe_encode(cred_id),
            "public_key_cose": websafe_encode(cbor.encode(public_key)),
            "alg": cose_cls.ALGORITHM,
            "attested": root_pem is not None,
        },
    }


def assertion(rp_id, origin, signer, reg, counter):
    challenge = websafe_encode(os.urandom(32))
    client_data = CollectedClientData.create("webauthn.get", challenge, origin)
    auth_data = AuthenticatorData.create(
        sha256(rp_id.encode()), FLAG.UP | FLAG.UV, counter
    )
    sig = signer.sign(bytes(auth_data) + client_data.hash)
    cred_id = websafe_decode(reg["expect"]["credential_id"])
    server = Fido2Server({"id": rp_id, "name": "interop"}, verify_origin=lambda o: o == origin)
    att = AttestationObject(websafe_decode(reg["attestation_object"]))
    server.authenticate_complete(
        {"challenge": challenge, "user_verification": "required"},
        [att.auth_data.credential_data],
        {
            "id": websafe_encode(cred_id),
            "rawId": websafe_encode(cred_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "authenticatorData": websafe_encode(auth_data),
                "signature": websafe_encode(sig),
            },
            "clientExtensionResults": {},
        },
    )
    return {
        "registration": reg["name"],
        "challenge": challenge,
        "client_data_json": websafe_encode(client_data),
        "authenticator_data": websafe_encode(auth_data),
        "signature": websafe_encode(sig),
        "counter": counter,
    }


def make(req):
    rp_id, origin = req["rp_id"], req["origin"]
    regs, asserts = [], []
    k1, r1 = registration("packed-self-es256", rp_id, origin, ec.SECP256R1(), "packed")
    k2, r2 = registration("packed-self-es384", rp_id, origin, ec.SECP384R1(), "packed")
    _, r3 = registration("none-es256", rp_id, origin, ec.SECP256R1(), "none")
    _, r4 = registration(
        "packed-x5c-es256", rp_id, origin, ec.SECP256R1(), "packed", with_chain=True
    )
    k5, r5 = registration("packed-self-rs256", rp_id, origin, "rsa", "packed")
    _, r6 = registration(
        "packed-x5c-rsa-root",
        rp_id,
        origin,
        ec.SECP256R1(),
        "packed",
        with_chain=True,
        root_rsa=True,
    )
    regs += [r1, r2, r3, r4, r5, r6]
    asserts.append(assertion(rp_id, origin, k1, r1, 1))
    asserts.append(assertion(rp_id, origin, k1, r1, 2))
    asserts.append(assertion(rp_id, origin, k2, r2, 7))
    asserts.append(assertion(rp_id, origin, k5, r5, 3))
    return {"registrations": regs, "assertions": asserts}


def invalid_case(name, rp_id, origin, chain_kwargs=None, self_alg=None, sig_hash=None):
    """One packed registration breaking one rule; python-fido2 must refuse it too."""
    key = ec.generate_private_key(ec.SECP256R1())
    public_key = ES256.from_cryptography_key(key.public_key())
    aaguid = Aaguid(os.urandom(16))
    cred_id = os.urandom(32)
    challenge = websafe_encode(os.urandom(32))
    client_data = CollectedClientData.create("webauthn.create", challenge, origin)
    auth_data = AuthenticatorData.create(
        sha256(rp_id.encode()),
        FLAG.UP | FLAG.UV | FLAG.AT,
        0,
        AttestedCredentialData.create(aaguid, cred_id, public_key),
    )
    signed = bytes(auth_data) + client_data.hash
    root_pem = None
    if chain_kwargs is not None:
        made = make_chain(aaguid, **chain_kwargs)
        root, leaf, leaf_key = made[0], made[1], made[2]
        sig = leaf_key.sign(signed, ec.ECDSA(sig_hash or hashes.SHA256()))
        att_stmt = {"alg": -7, "sig": sig, "x5c": [leaf.public_bytes(Encoding.DER)]}
        root_pem = root.public_bytes(Encoding.PEM).decode()
    else:
        sig = key.sign(signed, ec.ECDSA(hashes.SHA256()))
        att_stmt = {"alg": self_alg, "sig": sig}
    att_obj = AttestationObject.create("packed", auth_data, att_stmt)

    python_error = None
    try:
        result = PackedAttestation().verify(att_stmt, auth_data, client_data.hash)
        if root_pem:
            root_der = x509.load_pem_x509_certificate(root_pem.encode()).public_bytes(
                Encoding.DER
            )
            verify_x509_chain(result.trust_path + [root_der])
    except Exception as e:  # noqa: BLE001 - any refusal is what we want
        python_error = f"{type(e).__name__}: {e}"
    if python_error is None:
        raise SystemExit(f"python-fido2 accepted invalid case {name}")
    return {
        "name": name,
        "challenge": challenge,
        "client_data_json": websafe_encode(client_data),
        "attestation_object": websafe_encode(att_obj),
        "root_pem": root_pem,
        "python_error": python_error,
    }


def make_invalid(req):
    rp_id, origin = req["rp_id"], req["origin"]
    other = os.urandom(16)
    cases = [
        ("leaf-without-ou", {"chain_kwargs": {"ou": None}}),
        ("leaf-wrong-ou", {"chain_kwargs": {"ou": "Something Else"}}),
        ("leaf-is-ca", {"chain_kwargs": {"leaf_ca": True}}),
        ("aaguid-extension-mismatch", {"chain_kwargs": {"ext_aaguid": other}}),
        ("aaguid-extension-critical", {"chain_kwargs": {"ext_critical": True}}),
        ("intermediate-missing-from-x5c", {"chain_kwargs": {"via_intermediate": True}}),
        ("signature-hash-not-alg", {"chain_kwargs": {}, "sig_hash": hashes.SHA384()}),
        ("self-alg-not-key-alg", {"self_alg": -35}),
    ]
    return {"cases": [invalid_case(n, rp_id, origin, **kw) for n, kw in cases]}


def check(req):
    results = []
    for item in req["items"]:
        att = AttestationObject(websafe_decode(item["attestation_object"]))
        ad = att.auth_data
        cd = ad.credential_data
        theirs = {
            "fmt": att.fmt,
            "aaguid": str(cd.aaguid),
            "credential_id": websafe_encode(cd.credential_id),
            "public_key_cose": websafe_encode(cbor.encode(cd.public_key)),
            "sign_count": ad.counter,
            "uv": ad.is_user_verified(),
            "extensions": dict(ad.extensions) if ad.extensions else None,
        }
        ours = item["ours"]
        diffs = [
            {"field": k, "ours": ours.get(k), "python_fido2": v}
            for k, v in theirs.items()
            if ours.get(k) != v
        ]
        results.append({"agree": not diffs, "diffs": diffs})
    return {"results": results}


def main():
    req = json.load(sys.stdin)
    modes = {"make": make, "make-invalid": make_invalid, "check": check}
    out = modes[req["mode"]](req)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
