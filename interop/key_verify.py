"""Independent WebAuthn relying party (Yubico python-fido2) for the authenticator
crate's interop tests: does the virtual key's output verify with someone else's code?

Reads JSON on stdin:
  {"root_pem": "<sandbox attestation root>", "rp_id": "...", "origin": "...",
   "registration": <RegistrationResponseJSON>, "create_challenge": "<b64url>",
   "assertions": [{"response": <AuthenticationResponseJSON>, "challenge": "<b64url>"}]}
Prints {"registration": {...} | {"error": "..."}, "assertions": [{...} | {"error": "..."}]}.
Registration is checked twice: fido2.attestation.PackedAttestation (statement, leaf
certificate requirements, chain to the root) and fido2.server.Fido2Server.register_complete
with an AttestationVerifier that trusts only the given root. Assertions go through
Fido2Server.authenticate_complete against the registered credential.
"""

import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fido2.attestation import AttestationVerifier, PackedAttestation, verify_x509_chain
from fido2.server import Fido2Server
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import RegistrationResponse


class SandboxRoot(AttestationVerifier):
    def __init__(self, root_der):
        super().__init__()
        self.root_der = root_der

    def ca_lookup(self, attestation_result, auth_data):
        return self.root_der


def main():
    req = json.load(sys.stdin)
    root = x509.load_pem_x509_certificate(req["root_pem"].encode())
    root_der = root.public_bytes(Encoding.DER)
    origin = req["origin"]
    server = Fido2Server(
        {"id": req["rp_id"], "name": "interop"},
        attestation="direct",
        verify_origin=lambda o: o == origin,
        verify_attestation=SandboxRoot(root_der),
    )
    out = {}
    credential = None
    try:
        reg = RegistrationResponse.from_dict(req["registration"])
        att = reg.response.attestation_object
        client_data = reg.response.client_data
        result = PackedAttestation().verify(att.att_stmt, att.auth_data, client_data.hash)
        verify_x509_chain(result.trust_path + [root_der])
        leaf = x509.load_der_x509_certificate(result.trust_path[0])
        state = {"challenge": req["create_challenge"], "user_verification": "required"}
        auth_data = server.register_complete(state, req["registration"])
        credential = auth_data.credential_data
        out["registration"] = {
            "fmt": att.fmt,
            "attestation_type": result.attestation_type.name,
            "trust_path_len": len(result.trust_path),
            "leaf_subject": leaf.subject.rfc4514_string(),
            "aaguid": str(credential.aaguid),
            "credential_id": websafe_encode(credential.credential_id),
            "flags": auth_data.flags,
            "user_present": auth_data.is_user_present(),
            "user_verified": auth_data.is_user_verified(),
            "counter": auth_data.counter,
            "extensions": auth_data.extensions,
            "client_data_type": client_data.type,
            "client_data_challenge": websafe_encode(client_data.challenge),
            "public_key_alg": credential.public_key.ALGORITHM,
        }
    except Exception as e:  # noqa: BLE001 - the test wants the reason
        out["registration"] = {"error": f"{type(e).__name__}: {e}"}

    out["assertions"] = []
    for a in req.get("assertions", []):
        try:
            if credential is None:
                raise ValueError("no registered credential")
            state = {"challenge": a["challenge"], "user_verification": "required"}
            server.authenticate_complete(state, [credential], a["response"])
            ad = websafe_decode(a["response"]["response"]["authenticatorData"])
            uh = a["response"]["response"].get("userHandle")
            out["assertions"].append({
                "ok": True,
                "counter": int.from_bytes(ad[33:37], "big"),
                "user_handle": uh,
            })
        except Exception as e:  # noqa: BLE001
            out["assertions"].append({"error": f"{type(e).__name__}: {e}"})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
