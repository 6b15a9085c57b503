"""End-to-end client of the fulfiller sandbox, built only from HTTP and independent tools
(urllib, joserfc, python-fido2), for crates/sandbox/tests/it/fulfilment_e2e.rs.

Reads one JSON object on stdin:
  {"base_url": "http://127.0.0.1:PORT", "token": "...", "origin": "https://login.example",
   "rp_id": "login.example", "pin": {"type": "generate", "length": 8},
   "min_pin_length": 6, "force_pin_change": true,
   "product_id": 1, "inventory_product_id": 1, "customization_id": "C19881",
   "verify_attestation": false}
and does what a requester does:
  1. GET the transport and signing JWKS (no token); pick a transport key at random;
  2. make a P-384 response key per request; seal a PIN request and a credential request
     to the transport key with joserfc (ECDH-ES+A256KW / A256GCM, cty fido-prereg+json);
  3. POST /v1/fpr/shipments; POST /sandbox/v1/advance {shipment_id, to_state: 103};
  4. GET /v1/fpr/shipments/{id}, read shipment_items[0].product_data[0];
  5. open both responses with the response keys, verify the inner ES384 JWS against the
     signing JWKS, check typ, request_hash and serial;
  6. if verify_attestation: check clientDataJSON and verify the attestation with
     python-fido2.
Prints {"shipment_id", "state", "serial", "firmware_version", "pin", "force_pin_change",
"credential": {...}, "attestation_verified"} as JSON.
"""

import base64
import hashlib
import json
import random
import sys
import urllib.request

from joserfc import jwe, jws
from joserfc.jwk import ECKey, KeySet

JWE_ALGS = ["ECDH-ES+A256KW", "A256GCM"]
JWS_ALGS = ["ES384"]


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def call(cfg, method, path, body=None, token=True):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(cfg["base_url"] + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + cfg["token"])
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def seal(payload, transport):
    key = ECKey.import_key(transport)
    protected = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": transport["kid"],
                 "cty": "fido-prereg+json"}
    return jwe.encrypt_compact(protected, json.dumps(payload).encode(), key,
                               algorithms=JWE_ALGS)


def response_key(kid):
    key = ECKey.generate_key("P-384", parameters={"kid": kid, "use": "enc"}, private=True)
    return key, key.as_dict(private=False)


def open_response(token, key, signing):
    obj = jwe.decrypt_compact(token, key, algorithms=JWE_ALGS)
    assert obj.protected["cty"] == "JWS", obj.protected
    signed = jws.deserialize_compact(obj.plaintext.decode(), signing, algorithms=JWS_ALGS)
    assert signed.protected.get("typ") == "fido-prereg+jws", signed.protected
    return json.loads(signed.payload)


def request_hash(token):
    return b64u(hashlib.sha256(token.encode("ascii")).digest())


def verify_attestation(cfg, options, credential):
    from fido2.attestation import Attestation
    from fido2.webauthn import AttestationObject, CollectedClientData

    response = credential["response"]
    client_data = CollectedClientData(unb64u(response["clientDataJSON"]))
    assert client_data.type == "webauthn.create", client_data.type
    assert client_data.origin == cfg["origin"], client_data.origin
    assert b64u(client_data.challenge) == options["challenge"], "challenge"
    att = AttestationObject(unb64u(response["attestationObject"]))
    assert att.auth_data.rp_id_hash == hashlib.sha256(cfg["rp_id"].encode()).digest()
    assert att.auth_data.is_user_present()
    Attestation.for_type(att.fmt)().verify(att.att_stmt, att.auth_data, client_data.hash)
    return att.fmt


def main():
    cfg = json.load(sys.stdin)
    transport = random.choice(call(cfg, "GET", "/.well-known/yubico-transport-keys.jwks",
                                   token=False)["keys"])
    signing = KeySet.import_key_set(call(cfg, "GET", "/.well-known/yubico-sign.jwks",
                                         token=False))
    pin_key, pin_pub = response_key("rk-pin")
    cred_key, cred_pub = response_key("rk-cred")
    options = {
        "rp": {"id": cfg["rp_id"], "name": "Example"},
        "user": {"id": b64u(b"user-7dc95e2f"), "name": "jan@example.com",
                 "displayName": "Jan Lindberg"},
        "challenge": b64u(hashlib.sha256(b"challenge").digest()),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        "timeout": 1209600000,
        "excludeCredentials": [],
        "authenticatorSelection": {"authenticatorAttachment": "cross-platform",
                                   "residentKey": "required", "userVerification": "required"},
        "attestation": "direct",
    }
    pin_request = seal({"typ": "fido-prereg/pin-request+v1", "response_key": pin_pub,
                        "pin": cfg["pin"], "min_pin_length": cfg["min_pin_length"],
                        "force_pin_change": cfg["force_pin_change"]}, transport)
    cred_request = seal({"typ": "fido-prereg/credential-request+v1", "response_key": cred_pub,
                         "origin": cfg["origin"], "public_key": options}, transport)
    created = call(cfg, "POST", "/v1/fpr/shipments", {
        "delivery_type": 1,
        "recipient": {"recipient_company": "Example Inc.", "recipient_email": "jan@example.com",
                      "recipient_firstname": "Jan", "recipient_lastname": "Lindberg",
                      "recipient_telephone": "+1 555-5555"},
        "mailing_address": {"street_line1": "7788 Foxrun Street", "street_line2": "",
                            "city": "Dedham", "region": "MA", "postal_code": "02026",
                            "country_code_2": "US"},
        "shipment_items": [{"product_id": cfg["product_id"],
                            "inventory_product_id": cfg["inventory_product_id"],
                            "product_quantity": 1, "customization_id": cfg["customization_id"],
                            "product_customizations": [{"fido_pin_request": pin_request,
                                                        "fido_credential_requests": [cred_request]}]}],
    })
    sid = created["shipment_id"]
    assert created["shipment_state"]["shipment_state_id"] == 2, created
    call(cfg, "POST", "/sandbox/v1/advance", {"shipment_id": sid, "to_state": 103})
    shipment = call(cfg, "GET", "/v1/fpr/shipments/" + sid)
    state = shipment["shipment_state"]["shipment_state_id"]
    assert state in (103, 104), shipment["shipment_state"]
    pd = shipment["shipment_items"][0]["product_data"][0]

    pin = open_response(pd["fido_pin_response"], pin_key, signing)
    cred = open_response(pd["fido_credential_responses"][0], cred_key, signing)
    assert pin["typ"] == "fido-prereg/pin-response+v1", pin["typ"]
    assert cred["typ"] == "fido-prereg/credential-response+v1", cred["typ"]
    assert pin["request_hash"] == request_hash(pin_request), "PIN request_hash"
    assert cred["request_hash"] == request_hash(cred_request), "credential request_hash"
    assert pin["serial"] == cred["serial"] == pd["serial_number"], "serial"
    assert cred["firmware_version"] == pd["firmware_version"]
    # A response opened with the other request's key must fail.
    try:
        open_response(pd["fido_pin_response"], cred_key, signing)
        raise AssertionError("the PIN response opened with the credential response key")
    except AssertionError:
        raise
    except Exception:
        pass
    fmt = verify_attestation(cfg, options, cred["credential"]) if cfg.get("verify_attestation") else None
    json.dump({"shipment_id": sid, "state": state, "serial": pd["serial_number"],
               "firmware_version": pd["firmware_version"], "pin": pin["pin"],
               "force_pin_change": pin["force_pin_change"], "aaguid": cred["aaguid"],
               "credential": cred["credential"], "attestation_verified": fmt}, sys.stdout)


if __name__ == "__main__":
    main()
