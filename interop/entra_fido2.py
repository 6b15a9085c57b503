"""Client-side WebAuthn data for the Entra sandbox, made by python-fido2 (pinned in
requirements.txt) and pyca/cryptography, not by this project's code: the software-free
path of python-fido2 2.2.1 (no device, keys in `cryptography`).

Reads JSON on stdin, one of:
  {"mode": "register", "options": <Graph creationOptions body>, "origin": "...",
   "attestation": "packed-self" | "packed-x5c" | "none"}
      Parses the options with python-fido2 (PublicKeyCredentialCreationOptions), builds
      clientDataJSON with the challenge verbatim, authenticator data for the options'
      rp.id with UP|UV, credProtect 1 and hmac-secret, and the attestation object:
      packed self attestation, packed with an x5c leaf under a throwaway root (AAGUID
      extension set), or fmt none. Packed statements are checked with python-fido2's
      PackedAttestation first. Prints {"registration": <RegistrationResponse JSON>,
      "key_pem", "credential_id", "user_handle", "aaguid", "root_pem"?}.
  {"mode": "assert", "options": <PublicKeyCredentialRequestOptions JSON>, "origin",
   "key_pem", "credential_id", "user_handle", "sign_count", "uv": bool?}
      Signs an assertion with the key. Prints {"assertion": <AuthenticationResponse JSON>}.
"""

import datetime
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from fido2.attestation import PackedAttestation
from fido2.cose import ES256
from fido2.utils import sha256, websafe_decode, websafe_encode
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorData,
    CollectedClientData,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialRequestOptions,
    RegistrationResponse,
)

FLAG = AuthenticatorData.FLAG


def chain(aaguid):
    """A throwaway root and a packed-attestation leaf (WebAuthn §8.2.1)."""
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    later = now + datetime.timedelta(days=3650)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "python interop"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Entra Interop Root CA"),
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
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "python interop"),
                    x509.NameAttribute(
                        NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"
                    ),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Entra Interop EE"),
                ]
            )
        )
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(later)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4"),
                b"\x04\x10" + bytes(aaguid),
            ),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    return root, leaf, leaf_key


def register(req):
    options = PublicKeyCredentialCreationOptions.from_dict(req["options"]["publicKey"])
    origin = req["origin"]
    kind = req.get("attestation", "packed-self")
    assert any(p.alg == ES256.ALGORITHM for p in options.pub_key_cred_params)
    key = ec.generate_private_key(ec.SECP256R1())
    public_key = ES256.from_cryptography_key(key.public_key())
    aaguid = Aaguid(bytes(16)) if kind == "none" else Aaguid(os.urandom(16))
    cred_id = os.urandom(32)
    # The challenge goes into clientDataJSON exactly as Graph sent it (python-fido2
    # reads it as bytes; the text must be canonical base64url for that to round-trip).
    challenge_text = req["options"]["publicKey"]["challenge"]
    assert websafe_encode(options.challenge) == challenge_text
    client_data = CollectedClientData.create("webauthn.create", challenge_text, origin)
    auth_data = AuthenticatorData.create(
        sha256(options.rp.id.encode()),
        FLAG.UP | FLAG.UV | FLAG.AT | FLAG.ED,
        0,
        AttestedCredentialData.create(aaguid, cred_id, public_key),
        {"credProtect": 1, "hmac-secret": True},
    )
    signed = bytes(auth_data) + client_data.hash
    root_pem = None
    if kind == "none":
        fmt, att_stmt = "none", {}
    elif kind == "packed-x5c":
        root, leaf, leaf_key = chain(aaguid)
        sig = leaf_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        fmt, att_stmt = "packed", {"alg": -7, "sig": sig, "x5c": [leaf.public_bytes(Encoding.DER)]}
        root_pem = root.public_bytes(Encoding.PEM).decode()
    else:
        sig = key.sign(signed, ec.ECDSA(hashes.SHA256()))
        fmt, att_stmt = "packed", {"alg": -7, "sig": sig}
    if fmt == "packed":
        PackedAttestation().verify(att_stmt, auth_data, client_data.hash)
    response = RegistrationResponse(
        raw_id=cred_id,
        response=AuthenticatorAttestationResponse(
            client_data=client_data,
            attestation_object=AttestationObject.create(fmt, auth_data, att_stmt),
        ),
    )
    out = {
        "registration": dict(response),
        "key_pem": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "credential_id": websafe_encode(cred_id),
        "user_handle": websafe_encode(options.user.id),
        "aaguid": str(aaguid),
    }
    if root_pem:
        out["root_pem"] = root_pem
    return out


def assertion(req):
    options = PublicKeyCredentialRequestOptions.from_dict(req["options"])
    key = serialization.load_pem_private_key(req["key_pem"].encode(), password=None)
    cred_id = websafe_decode(req["credential_id"])
    assert any(d.id == cred_id for d in options.allow_credentials), "not allowed"
    challenge_text = req["options"]["challenge"]
    assert websafe_encode(options.challenge) == challenge_text
    client_data = CollectedClientData.create("webauthn.get", challenge_text, req["origin"])
    flags = FLAG.UP | (FLAG.UV if req.get("uv", True) else 0)
    auth_data = AuthenticatorData.create(sha256(options.rp_id.encode()), flags, req["sign_count"])
    sig = key.sign(bytes(auth_data) + client_data.hash, ec.ECDSA(hashes.SHA256()))
    response = AuthenticationResponse(
        raw_id=cred_id,
        response=AuthenticatorAssertionResponse(
            client_data=client_data,
            authenticator_data=auth_data,
            signature=sig,
            user_handle=websafe_decode(req["user_handle"]),
        ),
    )
    return {"assertion": dict(response)}


def main():
    req = json.load(sys.stdin)
    if req["mode"] == "register":
        out = register(req)
    elif req["mode"] == "assert":
        out = assertion(req)
    else:
        raise SystemExit(f"unknown mode {req['mode']!r}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
