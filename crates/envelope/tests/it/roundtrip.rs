//! Seal/open behaviour of the profile with our own keys: round trips, binding checks and
//! the closed header list.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envelope::{
    CredentialRequest, CredentialResponse, Error, Jwks, KeyUse, Pin, PinChoice, PinRequest,
    PinResponse, PrivateJwk, Request, Response,
};
use serde_json::{Value, json};

struct Parties {
    transport: PrivateJwk,
    signing: PrivateJwk,
    response: PrivateJwk,
    trusted: Jwks,
}

fn parties() -> Parties {
    let signing = PrivateJwk::generate("sign-1", KeyUse::Sig).unwrap();
    let mut trusted = Jwks::new();
    trusted.add(signing.public().clone()).unwrap();
    Parties {
        transport: PrivateJwk::generate("transport-1", KeyUse::Enc).unwrap(),
        response: PrivateJwk::generate("rk-1", KeyUse::Enc).unwrap(),
        signing,
        trusted,
    }
}

fn credential_request(p: &Parties) -> Request {
    Request::Credential(CredentialRequest {
        response_key: p.response.public().clone(),
        origin: "https://login.microsoft.com".into(),
        public_key: json!({"rp": {"id": "login.microsoft.com"}, "challenge": "abc"}),
    })
}

fn pin_request(p: &Parties) -> Request {
    Request::Pin(PinRequest {
        response_key: p.response.public().clone(),
        pin: PinChoice::Generate { length: 8 },
        min_pin_length: 6,
        force_pin_change: true,
    })
}

fn pin_response(serial: &str) -> Response {
    Response::Pin(PinResponse {
        request_hash: String::new(),
        serial: serial.into(),
        pin: Pin::new("12345678"),
        force_pin_change: true,
        iat: 1_764_300_000,
    })
}

fn credential_response(serial: &str) -> Response {
    Response::Credential(CredentialResponse {
        request_hash: String::new(),
        serial: serial.into(),
        firmware_version: "5.7.1".into(),
        aaguid: "a25342c0-3cdc-4414-8e46-f4807fca511c".into(),
        credential: json!({"id": "abc", "type": "public-key"}),
        iat: 1_764_300_000,
    })
}

/// Replaces the protected header of a compact token with `header` (its other parts stay).
fn with_header(token: &str, header: &Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(header.to_string());
    parts.join(".")
}

fn header_of(token: &str) -> Value {
    let first = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).unwrap()).unwrap()
}

#[test]
fn sealed_request_opens_with_the_transport_key() {
    let p = parties();
    for request in [credential_request(&p), pin_request(&p)] {
        let jwe = envelope::seal_request(&request, p.transport.public()).unwrap();
        let opened = envelope::open_request(&jwe, std::slice::from_ref(&p.transport)).unwrap();
        assert_eq!(opened, request);
        assert_eq!(opened.response_key(), p.response.public());
    }
}

#[test]
fn sealed_request_header_is_exactly_the_profile() {
    let p = parties();
    let jwe = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let h = header_of(&jwe);
    let mut names: Vec<_> = h.as_object().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["alg", "cty", "enc", "epk", "kid"]);
    assert_eq!(h["alg"], "ECDH-ES+A256KW");
    assert_eq!(h["enc"], "A256GCM");
    assert_eq!(h["cty"], "fido-prereg+json");
    assert_eq!(h["kid"], "transport-1");
    assert_eq!(h["epk"]["crv"], "P-384");
}

#[test]
fn request_opens_with_any_key_of_a_rotated_keyring() {
    let p = parties();
    let old = PrivateJwk::generate("transport-0", KeyUse::Enc).unwrap();
    let jwe = envelope::seal_request(&pin_request(&p), old.public()).unwrap();
    let ring = [p.transport.clone(), old];
    assert!(envelope::open_request(&jwe, &ring).is_ok());
    assert!(matches!(
        envelope::open_request(&jwe, &ring[..1]),
        Err(Error::UnknownKid { .. })
    ));
}

#[test]
fn sealed_response_opens_and_is_bound_to_its_request() {
    let p = parties();
    let request = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let jwe = envelope::seal_response(
        &pin_response("31636842"),
        &request,
        &p.signing,
        p.response.public(),
    )
    .unwrap();
    assert_eq!(header_of(&jwe)["cty"], "JWS");
    let opened = envelope::open_pin_response(
        &jwe,
        std::slice::from_ref(&p.response),
        &p.trusted,
        &request,
    )
    .unwrap();
    assert_eq!(opened.pin.expose(), "12345678");
    assert_eq!(opened.request_hash, envelope::request_hash(&request));
}

#[test]
fn response_replayed_onto_another_request_is_refused() {
    let p = parties();
    let request = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let other = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let jwe = envelope::seal_response(
        &pin_response("1"),
        &request,
        &p.signing,
        p.response.public(),
    )
    .unwrap();
    let got = envelope::open_response(&jwe, std::slice::from_ref(&p.response), &p.trusted, &other);
    assert!(matches!(got, Err(Error::RequestHashMismatch)));
}

#[test]
fn sealing_a_response_with_another_requests_hash_is_refused() {
    let p = parties();
    let request = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let mut response = pin_response("1");
    if let Response::Pin(r) = &mut response {
        r.request_hash = envelope::request_hash("something else");
    }
    let got = envelope::seal_response(&response, &request, &p.signing, p.response.public());
    assert!(matches!(got, Err(Error::RequestHashMismatch)));
}

#[test]
fn response_signed_by_untrusted_key_is_refused() {
    let p = parties();
    let rogue = PrivateJwk::generate("rogue", KeyUse::Sig).unwrap();
    let request = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let jwe =
        envelope::seal_response(&pin_response("1"), &request, &rogue, p.response.public()).unwrap();
    let got = envelope::open_response(
        &jwe,
        std::slice::from_ref(&p.response),
        &p.trusted,
        &request,
    );
    assert!(matches!(got, Err(Error::UntrustedSigner { kid }) if kid == "rogue"));
}

#[test]
fn response_signed_by_a_different_key_under_a_trusted_kid_is_refused() {
    let p = parties();
    let impostor = PrivateJwk::generate("sign-1", KeyUse::Sig).unwrap();
    let request = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let jwe = envelope::seal_response(&pin_response("1"), &request, &impostor, p.response.public())
        .unwrap();
    let got = envelope::open_response(
        &jwe,
        std::slice::from_ref(&p.response),
        &p.trusted,
        &request,
    );
    assert!(matches!(got, Err(Error::Signature)));
}

#[test]
fn credential_response_opened_as_pin_response_is_a_wrong_message_type() {
    let p = parties();
    let request = envelope::seal_request(&credential_request(&p), p.transport.public()).unwrap();
    let jwe = envelope::seal_response(
        &credential_response("1"),
        &request,
        &p.signing,
        p.response.public(),
    )
    .unwrap();
    let keys = std::slice::from_ref(&p.response);
    assert!(envelope::open_credential_response(&jwe, keys, &p.trusted, &request).is_ok());
    let got = envelope::open_pin_response(&jwe, keys, &p.trusted, &request);
    assert!(matches!(got, Err(Error::WrongMessageType { .. })));
}

#[test]
fn a_request_is_not_accepted_as_a_response_nor_the_reverse() {
    let p = parties();
    let request = envelope::seal_request(&pin_request(&p), p.response.public()).unwrap();
    let got = envelope::open_response(&request, std::slice::from_ref(&p.response), &p.trusted, "");
    assert!(matches!(got, Err(Error::Header(_))));

    let req = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let resp = envelope::seal_response(&pin_response("1"), &req, &p.signing, p.transport.public())
        .unwrap();
    let got = envelope::open_request(&resp, std::slice::from_ref(&p.transport));
    assert!(matches!(got, Err(Error::Header(_))));
}

#[test]
fn responses_for_one_key_must_name_the_same_serial() {
    let Response::Credential(c) = credential_response("31636842") else {
        unreachable!()
    };
    let Response::Pin(same) = pin_response("31636842") else {
        unreachable!()
    };
    let Response::Pin(other) = pin_response("99999999") else {
        unreachable!()
    };
    assert!(envelope::check_same_serial(&c, &same).is_ok());
    assert!(matches!(
        envelope::check_same_serial(&c, &other),
        Err(Error::SerialMismatch)
    ));
}

#[test]
fn pin_choices_outside_4_to_63_are_refused() {
    let p = parties();
    let make = |pin: PinChoice| {
        Request::Pin(PinRequest {
            response_key: p.response.public().clone(),
            pin,
            min_pin_length: 4,
            force_pin_change: false,
        })
    };
    for bad in [
        PinChoice::Generate { length: 3 },
        PinChoice::Generate { length: 64 },
        PinChoice::Static {
            value: Pin::new("123"),
        },
        PinChoice::Static {
            value: Pin::new("x".repeat(64)),
        },
    ] {
        let got = envelope::seal_request(&make(bad), p.transport.public());
        assert!(matches!(got, Err(Error::Payload(_))));
    }
    for good in [
        PinChoice::Generate { length: 4 },
        PinChoice::Generate { length: 63 },
        PinChoice::Static {
            value: Pin::new("ünï€"),
        },
        PinChoice::None,
    ] {
        let jwe = envelope::seal_request(&make(good.clone()), p.transport.public()).unwrap();
        let Request::Pin(r) =
            envelope::open_request(&jwe, std::slice::from_ref(&p.transport)).unwrap()
        else {
            panic!("not a PIN request")
        };
        assert_eq!(r.pin, good);
    }
}

#[test]
fn static_pin_never_shows_in_debug_output() {
    let choice = PinChoice::Static {
        value: Pin::new("s3cr3t-pin"),
    };
    assert!(!format!("{choice:?}").contains("s3cr3t"));
    let Response::Pin(r) = pin_response("1") else {
        unreachable!()
    };
    assert!(!format!("{r:?}").contains("12345678"));
}

#[test]
fn request_with_unknown_member_is_refused() {
    let p = parties();
    let mut body = pin_request(&p).to_value().unwrap();
    body["extra"] = json!(1);
    let jwe = envelope::seal_jwe(
        body.to_string().as_bytes(),
        p.transport.public(),
        "fido-prereg+json",
    )
    .unwrap();
    let got = envelope::open_request(&jwe, std::slice::from_ref(&p.transport));
    assert!(matches!(got, Err(Error::Payload(m)) if m.contains("extra")));
}

#[test]
fn payload_errors_never_quote_the_plaintext() {
    let p = parties();
    let mut body = pin_request(&p).to_value().unwrap();
    body["force_pin_change"] = json!("SECRET-VALUE-1234");
    let jwe = envelope::seal_jwe(
        body.to_string().as_bytes(),
        p.transport.public(),
        "fido-prereg+json",
    )
    .unwrap();
    let err = envelope::open_request(&jwe, std::slice::from_ref(&p.transport)).unwrap_err();
    assert!(matches!(err, Error::Payload(_)));
    assert!(!err.to_string().contains("SECRET"), "{err}");
}

#[test]
fn jwe_headers_outside_the_profile_are_refused_before_decryption() {
    let p = parties();
    let jwe = envelope::seal_request(&pin_request(&p), p.transport.public()).unwrap();
    let good = header_of(&jwe);
    let keys = std::slice::from_ref(&p.transport);
    let check = |edit: &dyn Fn(&mut Value), want: &dyn Fn(&Error) -> bool| {
        let mut h = good.clone();
        edit(&mut h);
        let err = envelope::open_request(&with_header(&jwe, &h), keys).unwrap_err();
        assert!(want(&err), "{h} gave {err:?}");
    };
    let unsupported = |which: &'static str| move |e: &Error| matches!(e, Error::UnsupportedAlgorithm { which: w, .. } if *w == which);
    let header_err = |e: &Error| matches!(e, Error::Header(_));
    for alg in [
        "none",
        "dir",
        "ECDH-ES",
        "RSA-OAEP-256",
        "HS256",
        "ECDH-ES+A192KW",
        "A256KW",
    ] {
        check(&|h| h["alg"] = json!(alg), &unsupported("alg"));
    }
    for enc in ["A128GCM", "A192GCM", "A256CBC-HS512"] {
        check(&|h| h["enc"] = json!(enc), &unsupported("enc"));
    }
    check(&|h| h["zip"] = json!("DEF"), &unsupported("zip"));
    check(&|h| h["crit"] = json!(["exp"]), &unsupported("crit"));
    check(&|h| h["apu"] = json!("QWxpY2U"), &unsupported("apu"));
    check(&|h| h["apv"] = json!("Qm9i"), &unsupported("apv"));
    check(
        &|h| h["jku"] = json!("https://evil.example/jwks"),
        &header_err,
    );
    check(
        &|h| h["x5u"] = json!("https://evil.example/x5"),
        &header_err,
    );
    check(&|h| h["jwk"] = good["epk"].clone(), &header_err);
    check(&|h| h["typ"] = json!("JOSE"), &header_err);
    check(&|h| h["x-unknown"] = json!(true), &header_err);
    check(&|h| h["cty"] = json!("JWS"), &header_err);
    check(
        &|h| {
            h.as_object_mut().unwrap().remove("cty");
        },
        &header_err,
    );
    check(
        &|h| {
            h.as_object_mut().unwrap().remove("epk");
        },
        &header_err,
    );
    check(
        &|h| h["epk"]["crv"] = json!("P-256"),
        &unsupported("epk.crv"),
    );
    check(&|h| h["epk"]["kty"] = json!("OKP"), &unsupported("epk.kty"));
    check(&|h| h["epk"]["kid"] = json!("x"), &header_err);
    check(&|h| h["epk"]["y"] = good["epk"]["x"].clone(), &|e| {
        matches!(e, Error::KeyAgreement)
    });
    check(&|h| h["kid"] = json!("nobody"), &|e| {
        matches!(e, Error::UnknownKid { .. })
    });
    // Empty apu/apv are what some libraries emit; the profile accepts them, but the header
    // still takes part in the AAD, so an edited header never decrypts.
    check(&|h| h["apu"] = json!(""), &|e| matches!(e, Error::Decrypt));
}

#[test]
fn jws_headers_outside_the_profile_are_refused() {
    let p = parties();
    let jws = envelope::sign_jws(b"{}", &p.signing).unwrap();
    assert_eq!(
        envelope::verify_jws(&jws, &p.trusted).unwrap().kid,
        "sign-1"
    );
    let good = header_of(&jws);
    assert_eq!(
        good,
        json!({"alg":"ES384","kid":"sign-1","typ":"fido-prereg+jws"})
    );
    let check = |edit: &dyn Fn(&mut Value), want: &dyn Fn(&Error) -> bool| {
        let mut h = good.clone();
        edit(&mut h);
        let err = envelope::verify_jws(&with_header(&jws, &h), &p.trusted).unwrap_err();
        assert!(want(&err), "{h} gave {err:?}");
    };
    for alg in ["none", "HS384", "RS256", "PS384", "ES256", "ES512", "EdDSA"] {
        check(&|h| h["alg"] = json!(alg), &|e| {
            matches!(e, Error::UnsupportedAlgorithm { which: "alg", .. })
        });
    }
    check(&|h| h["crit"] = json!(["b64"]), &|e| {
        matches!(e, Error::UnsupportedAlgorithm { which: "crit", .. })
    });
    check(&|h| h["b64"] = json!(false), &|e| {
        matches!(e, Error::Header(_))
    });
    check(&|h| h["jku"] = json!("https://evil.example"), &|e| {
        matches!(e, Error::Header(_))
    });
    check(&|h| h["typ"] = json!("JWT"), &|e| {
        matches!(e, Error::Header(_))
    });
    check(&|h| h["kid"] = json!("nobody"), &|e| {
        matches!(e, Error::UntrustedSigner { .. })
    });
    // Header changes break the signature even when the header itself is acceptable.
    let mut parts: Vec<&str> = jws.split('.').collect();
    let reordered =
        URL_SAFE_NO_PAD.encode(r#"{"typ":"fido-prereg+jws","kid":"sign-1","alg":"ES384"}"#);
    parts[0] = &reordered;
    assert!(matches!(
        envelope::verify_jws(&parts.join("."), &p.trusted),
        Err(Error::Signature)
    ));
}

#[test]
fn encryption_key_in_the_signing_jwks_does_not_verify_signatures() {
    let p = parties();
    let enc_as_sig = PrivateJwk::generate("dual", KeyUse::Enc).unwrap();
    assert!(matches!(
        envelope::sign_jws(b"{}", &enc_as_sig),
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        envelope::seal_jwe(b"{}", p.signing.public(), "JWS"),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let p = parties();
    let big = "a".repeat(envelope::MAX_INPUT + 1);
    assert!(matches!(
        envelope::open_request(&big, std::slice::from_ref(&p.transport)),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        envelope::verify_jws(&big, &p.trusted),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        envelope::inspect(&big),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn inspect_shows_a_jws_header() {
    let p = parties();
    let jws = envelope::sign_jws(b"{}", &p.signing).unwrap();
    assert_eq!(envelope::inspect(&jws).unwrap()["jws"]["alg"], "ES384");
    assert!(matches!(
        envelope::inspect("a.b"),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn credential_response_with_a_malformed_aaguid_is_refused() {
    let p = parties();
    let request = envelope::seal_request(&credential_request(&p), p.transport.public()).unwrap();
    let mut response = credential_response("1");
    if let Response::Credential(r) = &mut response {
        r.aaguid = "not-a-uuid".into();
    }
    let got = envelope::seal_response(&response, &request, &p.signing, p.response.public());
    assert!(matches!(got, Err(Error::Payload(m)) if m.contains("aaguid")));
}

#[test]
fn pin_choice_with_an_unknown_member_or_type_is_refused() {
    let p = parties();
    for pin in [
        json!({"type": "generate", "length": 6, "digits_only": false}),
        json!({"type": "none", "value": "1234"}),
        json!({"type": "random", "length": 6}),
        json!({"length": 6}),
    ] {
        let mut body = pin_request(&p).to_value().unwrap();
        body["pin"] = pin.clone();
        let jwe = envelope::seal_jwe(
            body.to_string().as_bytes(),
            p.transport.public(),
            "fido-prereg+json",
        )
        .unwrap();
        let got = envelope::open_request(&jwe, std::slice::from_ref(&p.transport));
        assert!(matches!(got, Err(Error::Payload(_))), "{pin} gave {got:?}");
    }
}
