"""joserfc's rate for the envelope's four operations, for `cargo bench -p envelope`.

Reads one JSON object on stdin:
  {"rounds": <int>, "batch_seconds": <float>,
   "transport": <private JWK, use enc>, "response_key": <private JWK, use enc>,
   "signing": <private JWK, use sig>, "signing_jwks": {"keys": [...]},
   "request_payload": {...}, "response_payload": {...},
   "request_jwe": "<compact JWE sealed by prereg>", "response_jwe": "<compact JWE>"}
and prints {"ops_per_s": {"seal request": r, "open request": r,
"seal response (sign+encrypt)": r, "open response (decrypt+verify)": r},
"version": "<joserfc version>"}.

Rates are the fastest of `rounds` batches of `batch_seconds`, the four operations'
batches interleaved (as prereg's bench does, so both see the machine's load the same way).
Keys are imported once, outside the timed loops, as prereg's bench holds parsed keys;
each timed operation does what the envelope operation does: JSON encoding of the payload,
JWE (and for responses JWS) sealing, or opening, verification and JSON decoding.
"""

import json
import sys
import time

import joserfc
from joserfc import jwe, jws
from joserfc.jwk import ECKey, KeySet

JWE_ALGS = ["ECDH-ES+A256KW", "A256GCM"]
JWS_ALGS = ["ES384"]


def interleaved_best_rates(fns, rounds, batch_seconds):
    for fn in fns.values():
        for _ in range(5):
            fn()
    best = {name: 0.0 for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = 0
            start = time.perf_counter()
            while time.perf_counter() - start < batch_seconds:
                fn()
                n += 1
            best[name] = max(best[name], n / (time.perf_counter() - start))
    return best


def main():
    cfg = json.load(sys.stdin)
    rounds = int(cfg["rounds"])
    batch_seconds = float(cfg["batch_seconds"])
    transport = ECKey.import_key(cfg["transport"])
    transport_pub = ECKey.import_key({k: v for k, v in cfg["transport"].items() if k != "d"})
    response_key = ECKey.import_key(cfg["response_key"])
    response_pub = ECKey.import_key({k: v for k, v in cfg["response_key"].items() if k != "d"})
    signing = ECKey.import_key(cfg["signing"])
    trusted = KeySet.import_key_set(cfg["signing_jwks"])
    req_header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM",
                  "kid": cfg["transport"]["kid"], "cty": "fido-prereg+json"}
    resp_header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM",
                   "kid": cfg["response_key"]["kid"], "cty": "JWS"}
    jws_header = {"alg": "ES384", "kid": cfg["signing"]["kid"], "typ": "fido-prereg+jws"}
    request_payload = cfg["request_payload"]
    response_payload = cfg["response_payload"]

    def seal_request():
        jwe.encrypt_compact(req_header, json.dumps(request_payload).encode(), transport_pub,
                            algorithms=JWE_ALGS)

    def open_request():
        obj = jwe.decrypt_compact(cfg["request_jwe"], transport, algorithms=JWE_ALGS)
        json.loads(obj.plaintext)

    def seal_response():
        token = jws.serialize_compact(jws_header, json.dumps(response_payload).encode(),
                                      signing, algorithms=JWS_ALGS)
        jwe.encrypt_compact(resp_header, token.encode(), response_pub, algorithms=JWE_ALGS)

    def open_response():
        obj = jwe.decrypt_compact(cfg["response_jwe"], response_key, algorithms=JWE_ALGS)
        signed = jws.deserialize_compact(obj.plaintext.decode(), trusted, algorithms=JWS_ALGS)
        json.loads(signed.payload)

    out = interleaved_best_rates({
        "seal request": seal_request,
        "open request": open_request,
        "seal response (sign+encrypt)": seal_response,
        "open response (decrypt+verify)": open_response,
    }, rounds, batch_seconds)
    json.dump({"ops_per_s": out, "version": getattr(joserfc, "__version__", "?")}, sys.stdout)


if __name__ == "__main__":
    main()
