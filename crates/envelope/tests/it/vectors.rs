//! The committed vectors (made with Python joserfc 1.8.0): every `valid` one opens to
//! exactly its `expect`, every `invalid` one is refused for the reason its `why` names.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use envelope::{Error, Jwks, PrivateJwk, Request, Response};
use serde_json::Value;

struct Fixture {
    v: Value,
    transport: PrivateJwk,
    response: PrivateJwk,
    trusted: Jwks,
}

fn fixture() -> Fixture {
    let v = testkit::vectors("envelope-v1.json");
    Fixture {
        transport: PrivateJwk::from_value(&v["keys"]["transport"]).unwrap(),
        response: PrivateJwk::from_value(&v["keys"]["response"]).unwrap(),
        trusted: Jwks::from_value(&v["trusted_signing_jwks"]).unwrap(),
        v,
    }
}

fn open(f: &Fixture, case: &Value) -> Result<Value, Error> {
    let jwe = case["jwe"].as_str().unwrap();
    match case["kind"].as_str().unwrap() {
        "request" => {
            assert_eq!(case["open_with"], "transport");
            envelope::open_request(jwe, std::slice::from_ref(&f.transport))
                .map(|r: Request| r.to_value().unwrap())
        }
        "response" => {
            assert_eq!(case["open_with"], "response");
            let request = case["request_jwe"].as_str().unwrap();
            envelope::open_response(jwe, std::slice::from_ref(&f.response), &f.trusted, request)
                .map(|r: Response| r.to_value().unwrap())
        }
        other => panic!("unknown vector kind {other}"),
    }
}

#[test]
fn every_valid_vector_opens_to_exactly_its_expected_payload() {
    let f = fixture();
    let cases = f.v["valid"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        let got = open(&f, case).unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
        assert_eq!(got, case["expect"], "{}", case["name"]);
    }
}

#[test]
fn every_invalid_vector_is_refused_for_its_reason() {
    let f = fixture();
    let cases = f.v["invalid"].as_array().unwrap();
    assert!(cases.len() >= 11);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let err = open(&f, case).expect_err(name);
        let ok = match name {
            "tampered-ciphertext" => matches!(err, Error::Decrypt),
            "direct-ecdh-es" | "a128kw" => {
                matches!(err, Error::UnsupportedAlgorithm { which: "alg", .. })
            }
            "a128gcm" => matches!(err, Error::UnsupportedAlgorithm { which: "enc", .. }),
            "unknown-recipient-kid" | "wrong-response-key" => {
                matches!(err, Error::UnknownKid { .. })
            }
            "four-parts" => matches!(err, Error::Malformed { what: "JWE", .. }),
            "unknown-signer" => matches!(err, Error::UntrustedSigner { .. }),
            "jws-alg-none" | "jws-es256-kid-reuse" => {
                matches!(err, Error::UnsupportedAlgorithm { which: "alg", .. })
            }
            "request-hash-mismatch" => matches!(err, Error::RequestHashMismatch),
            other => panic!(
                "new invalid vector {other} ({}): map it to an error kind",
                case["why"]
            ),
        };
        assert!(
            ok,
            "{name} ({}) failed with the wrong error: {err:?}",
            case["why"]
        );
    }
}

#[test]
fn vector_request_hashes_are_sha256_of_the_request_jwe() {
    let f = fixture();
    for case in f.v["valid"].as_array().unwrap() {
        if let Some(req) = case["request_jwe"].as_str() {
            assert_eq!(envelope::request_hash(req), case["expect"]["request_hash"]);
        }
    }
}

#[test]
fn inspect_shows_the_jwe_header_without_decrypting() {
    let f = fixture();
    let jwe = f.v["valid"][0]["jwe"].as_str().unwrap();
    let h = envelope::inspect(jwe).unwrap();
    assert_eq!(h["jwe"]["alg"], "ECDH-ES+A256KW");
    assert_eq!(h["jwe"]["enc"], "A256GCM");
    assert_eq!(h["jwe"]["cty"], "fido-prereg+json");
    assert_eq!(h["jwe"]["kid"], "sandbox-transport-public-1");
    assert_eq!(h["jwe"]["epk"]["crv"], "P-384");
}

#[test]
fn findings_vectors_invalid_curve_epk_and_der_es384_are_refused_for_their_reason() {
    // testdata/vectors/findings-v1.json (make_findings.py: joserfc + cryptography), on the
    // keys of envelope-v1.json.
    let f = fixture();
    let findings = testkit::vectors("findings-v1.json");
    let cases = findings["envelope"]["invalid"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let err = open(&f, case).expect_err(name);
        let ok = match name {
            "invalid-curve-epk" | "epk-zero-point" => matches!(err, Error::KeyAgreement),
            "der-es384-signature" => matches!(err, Error::Signature),
            other => panic!("new findings vector {other}: map it to an error kind"),
        };
        assert!(ok, "{name} ({}) failed with {err:?}", case["why"]);
    }
}
