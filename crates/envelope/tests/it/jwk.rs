//! JWK and JWKS behaviour: parsing is validation, rotation keeps kids unique, private
//! keys never print.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use envelope::{Error, Jwks, KeyUse, PrivateJwk, PublicJwk};
use serde_json::json;

fn vector_key(name: &str) -> serde_json::Value {
    testkit::vectors("envelope-v1.json")["keys"][name].clone()
}

#[test]
fn generated_key_round_trips_through_its_private_jwk() {
    let key = PrivateJwk::generate("t-1", KeyUse::Enc).unwrap();
    let again = PrivateJwk::parse(&key.to_json()).unwrap();
    assert_eq!(again.public(), key.public());
    assert_eq!(again.kid(), "t-1");
    assert_eq!(again.key_use(), KeyUse::Enc);
}

#[test]
fn public_jwk_serializes_in_the_profile_shape() {
    let key = PrivateJwk::generate("s-1", KeyUse::Sig).unwrap();
    let v = key.public().to_value();
    let obj = v.as_object().unwrap();
    let mut names: Vec<_> = obj.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["crv", "kid", "kty", "use", "x", "y"]);
    assert_eq!(v["kty"], "EC");
    assert_eq!(v["crv"], "P-384");
    assert_eq!(v["use"], "sig");
    assert_eq!(PublicJwk::from_value(&v).unwrap(), *key.public());
}

#[test]
fn vector_keys_parse_and_match_their_private_halves() {
    for name in ["transport", "signing", "rogue_signing", "response"] {
        let v = vector_key(name);
        let private = PrivateJwk::from_value(&v).unwrap();
        let mut public_only = v.clone();
        public_only.as_object_mut().unwrap().remove("d");
        assert_eq!(
            *private.public(),
            PublicJwk::from_value(&public_only).unwrap()
        );
        assert_eq!(private.public().to_value(), public_only);
    }
}

#[test]
fn private_key_debug_is_redacted() {
    let v = vector_key("transport");
    let key = PrivateJwk::from_value(&v).unwrap();
    let shown = format!("{key:?}");
    assert!(shown.contains("[redacted]"));
    assert!(!shown.contains(v["d"].as_str().unwrap()));
}

#[test]
fn public_jwk_with_private_scalar_is_refused() {
    let v = vector_key("transport");
    assert!(matches!(
        PublicJwk::from_value(&v),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn private_jwk_whose_d_does_not_match_is_refused() {
    let mut v = vector_key("transport");
    v["d"] = vector_key("signing")["d"].clone();
    assert!(matches!(
        PrivateJwk::from_value(&v),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn point_off_the_curve_is_refused() {
    let mut v = vector_key("response");
    v.as_object_mut().unwrap().remove("d");
    v["y"] = vector_key("transport")["y"].clone();
    assert!(matches!(
        PublicJwk::from_value(&v),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn other_curves_and_key_types_are_refused() {
    let p256 = json!({"kty":"EC","crv":"P-256","kid":"a","use":"enc",
        "x":"gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
        "y":"SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"});
    assert!(matches!(
        PublicJwk::from_value(&p256),
        Err(Error::UnsupportedAlgorithm { which: "crv", .. })
    ));
    let rsa = json!({"kty":"RSA","kid":"a","use":"enc","n":"AQAB","e":"AQAB"});
    assert!(PublicJwk::from_value(&rsa).is_err());
}

#[test]
fn jwks_selects_by_kid_and_rotates() {
    let v = testkit::vectors("envelope-v1.json");
    let mut set = Jwks::from_value(&v["transport_jwks"]).unwrap();
    assert_eq!(set.len(), 1);
    assert!(set.get("sandbox-transport-public-1").is_some());
    assert!(set.get("nope").is_none());

    let next = PrivateJwk::generate("sandbox-transport-public-2", KeyUse::Enc).unwrap();
    set.add(next.public().clone()).unwrap();
    assert!(matches!(
        set.add(next.public().clone()),
        Err(Error::InvalidKey(_))
    ));
    assert_eq!(set.len(), 2);

    let old = set.retire("sandbox-transport-public-1").unwrap();
    assert_eq!(old.kid(), "sandbox-transport-public-1");
    assert!(set.retire("sandbox-transport-public-1").is_none());
    assert_eq!(set.keys()[0].kid(), "sandbox-transport-public-2");

    let text = set.to_json();
    assert_eq!(Jwks::parse(&text).unwrap(), set);
    assert!(text.starts_with("{\"keys\":["));
}

#[test]
fn jwks_with_duplicate_kids_or_private_keys_is_refused() {
    let v = testkit::vectors("envelope-v1.json");
    let k = v["transport_jwks"]["keys"][0].clone();
    assert!(Jwks::from_value(&json!({"keys":[k.clone(), k]})).is_err());
    assert!(Jwks::from_value(&json!({"keys":[vector_key("transport")]})).is_err());
}

#[test]
fn json_with_duplicate_members_is_refused() {
    let v = vector_key("response");
    let x = v["x"].as_str().unwrap();
    let text = format!(
        r#"{{"kty":"EC","crv":"P-384","kid":"a","kid":"b","use":"enc","x":"{x}","y":"{}"}}"#,
        v["y"].as_str().unwrap()
    );
    assert!(matches!(
        PublicJwk::parse(&text),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn jwks_is_built_from_the_public_halves_of_key_pairs() {
    let a = PrivateJwk::generate("sign-a", KeyUse::Sig).unwrap();
    let b = PrivateJwk::generate("sign-b", KeyUse::Sig).unwrap();
    let set = Jwks::from_keys([a.public(), b.public()]).unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.get("sign-b"), Some(b.public()));
    assert!(!set.to_json().contains("\"d\""));
    assert!(Jwks::from_keys([a.public(), a.public()]).is_err());
}

// RFC 7517 member handling: understood members are checked, the rest is ignored.

fn public_vector(name: &str) -> serde_json::Value {
    let mut v = vector_key(name);
    v.as_object_mut().unwrap().remove("d");
    v
}

/// A DER-looking certificate (a SEQUENCE) in standard base64, as `x5c` carries it.
const FAKE_CERT_B64: &str = "MIIBAg+/AQID";

#[test]
fn jwk_with_x509_members_is_accepted_and_the_members_are_ignored() {
    let mut v = public_vector("signing");
    let plain = PublicJwk::from_value(&v).unwrap();
    v["x5c"] = json!([FAKE_CERT_B64, FAKE_CERT_B64]);
    v["x5t"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAA"); // 20 bytes
    v["x5t#S256"] = json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); // 32 bytes
    let key = PublicJwk::from_value(&v).unwrap();
    assert_eq!(key, plain);
    // The profile shape is what is written back out.
    assert!(key.to_value().get("x5c").is_none());
}

#[test]
fn jwk_with_unknown_members_is_accepted() {
    let mut v = public_vector("transport");
    v["key_ops"] = json!(["wrapKey"]);
    v["x5u"] = json!("https://example.invalid/cert.pem");
    v["vendor-extension"] = json!({"anything": [1, 2, 3]});
    assert_eq!(
        PublicJwk::from_value(&v).unwrap(),
        PublicJwk::from_value(&public_vector("transport")).unwrap()
    );
}

#[test]
fn jwk_with_malformed_x509_members_is_refused() {
    for (name, bad) in [
        ("x5c", json!("MIIBAg==")),                         // not an array
        ("x5c", json!([])),                                 // empty
        ("x5c", json!(["MIIB_-AB"])),                       // base64url, not base64
        ("x5c", json!([42])),                               // not a string
        ("x5c", json!(["AQID"])),                           // not a DER SEQUENCE
        ("x5t", json!("AAAA")),                             // not 20 bytes
        ("x5t#S256", json!("AAAAAAAAAAAAAAAAAAAAAAAAAAA")), // 20 bytes, not 32
        ("x5t", json!(7)),
    ] {
        let mut v = public_vector("signing");
        v[name] = bad.clone();
        assert!(
            matches!(
                PublicJwk::from_value(&v),
                Err(Error::Malformed { what: "JWK", .. })
            ),
            "{name} = {bad} was accepted"
        );
    }
}

#[test]
fn jwk_alg_matching_its_use_is_accepted() {
    let mut sig = public_vector("signing");
    sig["alg"] = json!("ES384");
    assert_eq!(PublicJwk::from_value(&sig).unwrap().key_use(), KeyUse::Sig);
    let mut enc = public_vector("transport");
    enc["alg"] = json!("ECDH-ES+A256KW");
    assert_eq!(PublicJwk::from_value(&enc).unwrap().key_use(), KeyUse::Enc);
}

#[test]
fn jwk_alg_contradicting_its_use_is_refused_with_a_clear_error() {
    let mut sig = public_vector("signing");
    sig["alg"] = json!("ECDH-ES+A256KW");
    let err = PublicJwk::from_value(&sig).unwrap_err();
    assert!(matches!(err, Error::InvalidKey(_)));
    let text = err.to_string();
    assert!(
        text.contains("ECDH-ES+A256KW") && text.contains("\"sig\""),
        "{text}"
    );

    let mut enc = public_vector("transport");
    enc["alg"] = json!("ES384");
    let text = PublicJwk::from_value(&enc).unwrap_err().to_string();
    assert!(text.contains("ES384") && text.contains("\"enc\""), "{text}");
}

#[test]
fn jwk_alg_outside_the_profile_is_refused() {
    for alg in ["RS256", "ES256", "ECDH-ES", "none"] {
        let mut v = public_vector("signing");
        v["alg"] = json!(alg);
        assert!(
            matches!(
                PublicJwk::from_value(&v),
                Err(Error::UnsupportedAlgorithm { which: "alg", .. })
            ),
            "{alg}"
        );
    }
}

#[test]
fn jwk_use_is_still_required_and_checked() {
    let mut v = public_vector("signing");
    v.as_object_mut().unwrap().remove("use");
    assert!(matches!(
        PublicJwk::from_value(&v),
        Err(Error::InvalidKey(_))
    ));
    v["use"] = json!("wrap");
    assert!(matches!(
        PublicJwk::from_value(&v),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn jwks_ignores_top_level_members_other_than_keys() {
    let v = testkit::vectors("envelope-v1.json");
    let mut set = v["transport_jwks"].clone();
    set["issuer"] = json!("https://console.yubico.com");
    set["cache_max_age"] = json!(3600);
    let parsed = Jwks::from_value(&set).unwrap();
    assert_eq!(parsed, Jwks::from_value(&v["transport_jwks"]).unwrap());
    // Without "keys" it is still not a key set.
    assert!(Jwks::from_value(&json!({"issuer": "x"})).is_err());
}

#[test]
fn jwks_with_x5c_keys_is_accepted_but_one_with_d_is_still_refused() {
    let mut signing = public_vector("signing");
    signing["x5c"] = json!([FAKE_CERT_B64]);
    signing["alg"] = json!("ES384");
    let set = Jwks::from_value(&json!({"keys": [signing]})).unwrap();
    assert_eq!(set.len(), 1);

    let mut private = vector_key("signing");
    private["x5c"] = json!([FAKE_CERT_B64]);
    assert!(matches!(
        Jwks::from_value(&json!({"keys": [private]})),
        Err(Error::InvalidKey(_))
    ));
}

#[test]
fn jwk_that_is_still_not_p384_ec_is_refused_even_with_x5c() {
    let rsa = json!({"kty":"RSA","kid":"a","use":"sig","n":"AQAB","e":"AQAB",
        "x5c":[FAKE_CERT_B64]});
    assert!(matches!(
        PublicJwk::from_value(&rsa),
        Err(Error::InvalidKey(_))
    ));
}
