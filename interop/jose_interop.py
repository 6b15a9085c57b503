"""Independent JOSE implementation (joserfc) for the envelope crate's interop tests.

Reads {"ops": [...]} as JSON on stdin and prints {"results": [...]} as JSON on stdout.
Each op is one of:
  {"op": "seal_request",  "payload": {...}, "transport": <public JWK>}
      -> {"jwe": "<compact JWE, cty fido-prereg+json>"}
  {"op": "seal_response", "payload": {...}, "signing": <private JWK>, "response_key": <public JWK>}
      -> {"jwe": "<compact JWE, cty JWS, around an ES384 JWS>"}
  {"op": "open_request",  "jwe": "...", "key": <private JWK>}
      -> {"header": {...}, "payload": {...}}
  {"op": "open_response", "jwe": "...", "key": <private JWK>, "signing_jwks": {"keys": [...]}}
      -> {"header": {...}, "jws_header": {...}, "payload": {...}}
Only the envelope profile's algorithms are enabled, so anything else fails here too.
"""

import json
import sys

from joserfc import jwe, jws
from joserfc.jwk import ECKey, KeySet

JWE_ALGS = ["ECDH-ES+A256KW", "A256GCM"]
JWS_ALGS = ["ES384"]


def seal_request(op):
    key = ECKey.import_key(op["transport"])
    protected = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": op["transport"]["kid"],
                 "cty": "fido-prereg+json"}
    plaintext = json.dumps(op["payload"]).encode()
    return {"jwe": jwe.encrypt_compact(protected, plaintext, key, algorithms=JWE_ALGS)}


def seal_response(op):
    signing = ECKey.import_key(op["signing"])
    header = {"alg": "ES384", "kid": op["signing"]["kid"], "typ": "fido-prereg+jws"}
    token = jws.serialize_compact(header, json.dumps(op["payload"]).encode(), signing,
                                  algorithms=JWS_ALGS)
    key = ECKey.import_key(op["response_key"])
    protected = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": op["response_key"]["kid"],
                 "cty": "JWS"}
    return {"jwe": jwe.encrypt_compact(protected, token.encode(), key, algorithms=JWE_ALGS)}


def open_request(op):
    obj = jwe.decrypt_compact(op["jwe"], ECKey.import_key(op["key"]), algorithms=JWE_ALGS)
    return {"header": obj.protected, "payload": json.loads(obj.plaintext)}


def open_response(op):
    obj = jwe.decrypt_compact(op["jwe"], ECKey.import_key(op["key"]), algorithms=JWE_ALGS)
    keys = KeySet.import_key_set(op["signing_jwks"])
    signed = jws.deserialize_compact(obj.plaintext.decode(), keys, algorithms=JWS_ALGS)
    return {"header": obj.protected, "jws_header": signed.protected,
            "payload": json.loads(signed.payload)}


OPS = {
    "seal_request": seal_request,
    "seal_response": seal_response,
    "open_request": open_request,
    "open_response": open_response,
}


def main():
    request = json.load(sys.stdin)
    results = [OPS[op["op"]](op) for op in request["ops"]]
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
