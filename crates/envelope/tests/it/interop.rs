//! Interop both ways with an independent implementation (Python joserfc 1.8.0, pinned in
//! interop/requirements.txt): our sealed requests and responses open there (including
//! the inner JWS), and joserfc-sealed ones open here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use envelope::{
    CredentialRequest, CredentialResponse, Jwks, KeyUse, Pin, PinChoice, PinRequest, PinResponse,
    PrivateJwk, Request, Response,
};
use serde_json::{Value, json};

fn private_value(key: &PrivateJwk) -> Value {
    serde_json::from_str(&key.to_json()).unwrap()
}

#[test]
fn requests_and_responses_interoperate_with_joserfc_both_ways() {
    let transport = PrivateJwk::generate("transport-7", KeyUse::Enc).unwrap();
    let signing = PrivateJwk::generate("sign-7", KeyUse::Sig).unwrap();
    let response_key = PrivateJwk::generate("rk-7", KeyUse::Enc).unwrap();
    let mut trusted = Jwks::new();
    trusted.add(signing.public().clone()).unwrap();

    let cred_request = Request::Credential(CredentialRequest {
        response_key: response_key.public().clone(),
        origin: "https://login.microsoft.com".into(),
        public_key: json!({"rp": {"id": "login.microsoft.com", "name": "Microsoft"},
                           "challenge": "s09kF5Kwf_xermFg", "timeout": 60000}),
    });
    let pin_request = Request::Pin(PinRequest {
        response_key: response_key.public().clone(),
        pin: PinChoice::Static {
            value: Pin::new("2468-ünï"),
        },
        min_pin_length: 6,
        force_pin_change: true,
    });
    let pin_response = Response::Pin(PinResponse {
        request_hash: String::new(),
        serial: "31636842".into(),
        pin: Pin::new("2468-ünï"),
        force_pin_change: true,
        iat: 1_764_300_000,
    });

    // Ours, for joserfc to open.
    let our_cred_req = envelope::seal_request(&cred_request, transport.public()).unwrap();
    let our_pin_req = envelope::seal_request(&pin_request, transport.public()).unwrap();
    let our_pin_resp =
        envelope::seal_response(&pin_response, &our_pin_req, &signing, response_key.public())
            .unwrap();

    // Theirs, for us to open: a credential response to our credential request.
    let cred_response_payload = json!({
        "typ": "fido-prereg/credential-response+v1",
        "request_hash": envelope::request_hash(&our_cred_req),
        "serial": "31636842",
        "firmware_version": "5.7.1",
        "aaguid": "a25342c0-3cdc-4414-8e46-f4807fca511c",
        "credential": {"id": "abc", "rawId": "abc", "type": "public-key"},
        "iat": 1_764_300_001u64,
    });

    let out = testkit::run_python(
        "jose_interop.py",
        &json!({"ops": [
            {"op": "open_request", "jwe": our_cred_req, "key": private_value(&transport)},
            {"op": "open_request", "jwe": our_pin_req, "key": private_value(&transport)},
            {"op": "open_response", "jwe": our_pin_resp, "key": private_value(&response_key),
             "signing_jwks": trusted.to_value()},
            {"op": "seal_request", "payload": pin_request.to_value().unwrap(),
             "transport": transport.public().to_value()},
            {"op": "seal_response", "payload": cred_response_payload,
             "signing": private_value(&signing), "response_key": response_key.public().to_value()},
        ]}),
    );
    let r = out["results"].as_array().unwrap();

    // joserfc opened ours to exactly what we sealed, with the profile's headers.
    assert_eq!(r[0]["payload"], cred_request.to_value().unwrap());
    assert_eq!(r[0]["header"]["cty"], "fido-prereg+json");
    assert_eq!(r[1]["payload"], pin_request.to_value().unwrap());
    let mut expected_resp = pin_response.to_value().unwrap();
    expected_resp["request_hash"] = json!(envelope::request_hash(&our_pin_req));
    assert_eq!(r[2]["payload"], expected_resp);
    assert_eq!(r[2]["header"]["cty"], "JWS");
    assert_eq!(
        r[2]["jws_header"],
        json!({"alg": "ES384", "kid": "sign-7", "typ": "fido-prereg+jws"})
    );

    // We open theirs.
    let their_req = r[3]["jwe"].as_str().unwrap();
    let opened = envelope::open_request(their_req, std::slice::from_ref(&transport)).unwrap();
    assert_eq!(opened, pin_request);

    let their_resp = r[4]["jwe"].as_str().unwrap();
    let opened: CredentialResponse = envelope::open_credential_response(
        their_resp,
        std::slice::from_ref(&response_key),
        &trusted,
        &our_cred_req,
    )
    .unwrap();
    assert_eq!(opened.serial, "31636842");
    assert_eq!(opened.iat, 1_764_300_001);
}
