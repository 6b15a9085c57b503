//! The committed attestation vectors (python cryptography + fido2 2.2.1) and the
//! envelope vector's packed registration.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::Value;
use webauthn::{
    AttestationPolicy, AttestationType, Error, RegistrationExpectations, TrustRoots, b64,
    verify_registration,
};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("vector member {k}"))
}

fn expectations(v: &Value, policy: AttestationPolicy) -> RegistrationExpectations {
    let mut e = RegistrationExpectations::new(s(v, "rp_id"), s(v, "challenge"), policy);
    e.origins = vec![s(v, "origin").to_owned()];
    e.require_uv = true;
    e
}

fn run(v: &Value, policy: AttestationPolicy) -> Result<webauthn::RegisteredCredential, Error> {
    let cd = b64::decode("cd", s(v, "client_data_json")).unwrap();
    let ao = b64::decode("ao", s(v, "attestation_object")).unwrap();
    verify_registration(&expectations(v, policy), &cd, &ao)
}

fn roots(v: &Value) -> TrustRoots {
    TrustRoots::from_pem(s(v, "trust_root_pem")).unwrap()
}

#[test]
fn valid_vectors_are_accepted_with_expected_credential() {
    let all = testkit::vectors("attestation-v1.json");
    let valid = all["valid"].as_array().unwrap();
    assert!(!valid.is_empty());
    for v in valid {
        let cred = run(v, AttestationPolicy::Required(roots(v)))
            .unwrap_or_else(|e| panic!("{}: {e}", s(v, "name")));
        assert_eq!(cred.fmt, "packed");
        assert!(cred.attested);
        assert_eq!(cred.attestation_type, AttestationType::Trusted);
        assert_eq!(cred.aaguid.to_string(), s(v, "aaguid"));
        assert_eq!(b64::encode(&cred.credential_id), s(v, "credential_id"));
        assert_eq!(
            b64::encode(&cred.public_key_cose),
            s(v, "credential_public_key_cose")
        );
        assert!(cred.uv);
        assert!(!cred.attestation_chain.is_empty());
    }
}

#[test]
fn invalid_vectors_are_refused_with_the_named_check() {
    let all = testkit::vectors("attestation-v1.json");
    let invalid = all["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 5);
    for v in invalid {
        let name = s(v, "name");
        let err = run(v, AttestationPolicy::Required(roots(v)))
            .expect_err(&format!("{name} must be refused"));
        let ok = match name {
            "bad-signature" => err == Error::AttestationSignature,
            "rp-id-hash-mismatch" => err == Error::RpIdHashMismatch,
            "uv-flag-clear" => err == Error::UserVerificationRequired,
            "fmt-none-when-attestation-enforced" => {
                matches!(err, Error::AttestationRequired(ref f) if f == "none")
            }
            "untrusted-root" => err == Error::UntrustedChain,
            other => panic!("unknown invalid vector {other}"),
        };
        assert!(ok, "{name}: wrong error {err:?}");
    }
}

#[test]
fn optional_policy_accepts_none_and_untrusted_chain_as_not_attested() {
    let all = testkit::vectors("attestation-v1.json");
    for v in all["invalid"].as_array().unwrap() {
        let name = s(v, "name");
        let got = run(v, AttestationPolicy::Optional(roots(v)));
        match name {
            "fmt-none-when-attestation-enforced" => {
                let c = got.unwrap();
                assert!(!c.attested);
                assert_eq!(c.attestation_type, AttestationType::None);
            }
            "untrusted-root" => {
                let c = got.unwrap();
                assert!(!c.attested);
                assert_eq!(c.attestation_type, AttestationType::Untrusted);
            }
            // Signature, rpIdHash and UV failures are refused under any policy.
            _ => assert!(got.is_err(), "{name}"),
        }
    }
}

#[test]
fn wrong_challenge_origin_and_aaguid_list_are_refused() {
    let all = testkit::vectors("attestation-v1.json");
    let v = &all["valid"][0];
    let cd = b64::decode("cd", s(v, "client_data_json")).unwrap();
    let ao = b64::decode("ao", s(v, "attestation_object")).unwrap();

    let mut e = expectations(v, AttestationPolicy::Required(roots(v)));
    e.challenge.push('x');
    assert_eq!(
        verify_registration(&e, &cd, &ao),
        Err(Error::ChallengeMismatch)
    );

    let mut e = expectations(v, AttestationPolicy::Required(roots(v)));
    e.origins = vec!["https://evil.example".into()];
    assert!(matches!(
        verify_registration(&e, &cd, &ao),
        Err(Error::OriginMismatch { .. })
    ));

    let mut e = expectations(v, AttestationPolicy::Required(roots(v)));
    e.allowed_aaguids = Some(vec![uuid::Uuid::nil()]);
    assert!(matches!(
        verify_registration(&e, &cd, &ao),
        Err(Error::AaguidNotAllowed(_))
    ));

    let mut e = expectations(v, AttestationPolicy::Required(roots(v)));
    e.allowed_algorithms = vec![-35];
    assert_eq!(
        verify_registration(&e, &cd, &ao),
        Err(Error::UnsupportedAlgorithm(-7))
    );

    // Assertion client data is not a registration.
    let get = webauthn::ClientData::get(s(v, "challenge"), s(v, "origin")).to_json_bytes();
    let e = expectations(v, AttestationPolicy::Required(roots(v)));
    assert!(matches!(
        verify_registration(&e, &get, &ao),
        Err(Error::ClientDataType { .. })
    ));
}

#[test]
fn certificate_validity_is_checked_only_when_a_time_is_given() {
    let all = testkit::vectors("attestation-v1.json");
    let v = &all["valid"][0];
    let cd = b64::decode("cd", s(v, "client_data_json")).unwrap();
    let ao = b64::decode("ao", s(v, "attestation_object")).unwrap();
    let mut e = expectations(v, AttestationPolicy::Required(roots(v)));
    e.now = Some(0); // 1970: before any notBefore
    assert!(matches!(
        verify_registration(&e, &cd, &ao),
        Err(Error::CertificateExpired { .. })
    ));
}

/// The envelope vector's credential (origin https://login.microsoft.com). Its chain
/// ends at an intermediate issued by "Sandbox FIDO Root CA", which is not committed.
mod envelope_credential {
    use super::*;
    use webauthn::options::RegistrationResponse;

    fn credential() -> (RegistrationResponse, String) {
        let v = testkit::vectors("envelope-v1.json");
        let r: RegistrationResponse =
            serde_json::from_value(v["valid"][2]["expect"]["credential"].clone()).unwrap();
        let cd = webauthn::ClientData::parse(&r.response.client_data_json).unwrap();
        (r, cd.challenge)
    }

    fn verify(policy: AttestationPolicy) -> Result<webauthn::RegisteredCredential, Error> {
        let (r, challenge) = credential();
        let mut e = RegistrationExpectations::new("login.microsoft.com", challenge, policy);
        e.require_uv = true;
        assert_eq!(e.origins, vec!["https://login.microsoft.com".to_owned()]);
        verify_registration(
            &e,
            &r.response.client_data_json,
            &r.response.attestation_object,
        )
    }

    fn intermediate() -> TrustRoots {
        let (r, _) = credential();
        let obj = webauthn::AttestationObject::parse(&r.response.attestation_object).unwrap();
        let x5c = obj.x5c();
        assert_eq!(x5c.len(), 2);
        TrustRoots::from_der([x5c[1].as_slice()]).unwrap()
    }

    #[test]
    fn signature_verifies_but_chain_is_not_trusted_without_its_root() {
        let other_root = {
            let all = testkit::vectors("attestation-v1.json");
            roots(&all["valid"][0])
        };
        assert_eq!(
            verify(AttestationPolicy::Required(other_root.clone())),
            Err(Error::UntrustedChain)
        );
        let c = verify(AttestationPolicy::Optional(other_root)).unwrap();
        assert!(!c.attested);
        assert_eq!(c.attestation_type, AttestationType::Untrusted);
        assert_eq!(c.aaguid.to_string(), "a25342c0-3cdc-4414-8e46-f4807fca511c");
        let (r, _) = credential();
        assert_eq!(c.credential_id, r.id);
        let ext = c.extensions.unwrap();
        assert_eq!(ext.cred_protect, Some(1));
        assert_eq!(ext.hmac_secret, Some(true));
    }

    #[test]
    fn intermediate_configured_as_anchor_is_trusted() {
        let c = verify(AttestationPolicy::Required(intermediate())).unwrap();
        assert!(c.attested);
        assert_eq!(c.fmt, "packed");
    }

    #[test]
    fn a_pinned_leaf_is_no_anchor_because_an_anchor_must_be_a_ca() {
        // Issue 16 (RFC 5280 path checks): configuring the leaf itself as the trust root
        // used to be accepted; an anchor must be a CA, so it is refused now, naming why.
        let (r, _) = credential();
        let obj = webauthn::AttestationObject::parse(&r.response.attestation_object).unwrap();
        let leaf = TrustRoots::from_der([obj.x5c()[0].as_slice()]).unwrap();
        let err = verify(AttestationPolicy::Required(leaf)).unwrap_err();
        assert!(
            matches!(&err, Error::Certificate(m) if m.contains("not a CA")),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_origin_is_refused() {
        let (r, challenge) = credential();
        let mut e = RegistrationExpectations::new(
            "login.microsoft.com",
            challenge,
            AttestationPolicy::None,
        );
        e.origins = vec!["https://login.microsoftonline.com".into()];
        assert!(matches!(
            verify_registration(
                &e,
                &r.response.client_data_json,
                &r.response.attestation_object
            ),
            Err(Error::OriginMismatch { .. })
        ));
    }
}

#[test]
fn trust_root_bundles_may_carry_text_and_several_roots() {
    let all = testkit::vectors("attestation-v1.json");
    let good = s(&all["valid"][0], "trust_root_pem");
    let other = s(&all["invalid"][4], "trust_root_pem");
    let bundle = format!(
        "Yubico-style bundle\r\nOther root:\r\n{}\r\n\r\nThe right root:\n{good}\ntrailing notes\n",
        other.replace('\n', "\r\n")
    );
    let roots = TrustRoots::from_pem(&bundle).unwrap();
    assert_eq!(roots.len(), 2);
    let v = &all["valid"][0];
    let cd = b64::decode("cd", s(v, "client_data_json")).unwrap();
    let ao = b64::decode("ao", s(v, "attestation_object")).unwrap();
    let e = expectations(v, AttestationPolicy::Required(roots));
    assert!(verify_registration(&e, &cd, &ao).unwrap().attested);

    assert!(matches!(
        TrustRoots::from_pem("no certificates here"),
        Err(Error::TrustRoot(_))
    ));
    let truncated = &good[..good.len() / 2];
    assert!(matches!(
        TrustRoots::from_pem(truncated),
        Err(Error::TrustRoot(_))
    ));
}

#[test]
fn findings_vectors_enforce_rfc5280_path_rules_and_the_alg_curve_binding() {
    // testdata/vectors/findings-v1.json, made by make_findings.py with python
    // cryptography + fido2: one PKI shape, each invalid case breaking one rule.
    let all = testkit::vectors("findings-v1.json");
    let valid = all["attestation"]["valid"].as_array().unwrap();
    assert_eq!(valid.len(), 2);
    for v in valid {
        let cred = run(v, AttestationPolicy::Required(roots(v)))
            .unwrap_or_else(|e| panic!("{}: {e}", s(v, "name")));
        assert_eq!(cred.attestation_type, AttestationType::Trusted);
    }
    let invalid = all["attestation"]["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 7);
    for v in invalid {
        let name = s(v, "name");
        let err = run(v, AttestationPolicy::Required(roots(v)))
            .expect_err(&format!("{name} must be refused"));
        let message = err.to_string();
        let ok = match name {
            "duplicate-aaguid-extension" => {
                matches!(err, Error::Certificate(_)) && message.contains("more than once")
            }
            "alg-curve-mismatch" => {
                matches!(err, Error::AttestationStatement(_)) && message.contains("P-384")
            }
            "unknown-critical-extension" => {
                matches!(err, Error::Certificate(_)) && message.contains("critical extension")
            }
            "signature-algorithm-mismatch" => {
                matches!(err, Error::Certificate(_)) && message.contains("signatureAlgorithm")
            }
            "intermediate-without-keycertsign" => {
                matches!(err, Error::Certificate(_)) && message.contains("keyCertSign")
            }
            "root-pathlen-exceeded" => {
                matches!(err, Error::Certificate(_)) && message.contains("pathLenConstraint")
            }
            "anchor-not-a-ca" => {
                matches!(err, Error::Certificate(_)) && message.contains("not a CA")
            }
            other => panic!("unknown findings vector {other}"),
        };
        assert!(ok, "{name} ({}): wrong error {err:?}", s(v, "why"));
    }
}

#[test]
fn findings_expired_leaf_passes_without_a_time_and_is_refused_at_the_current_time() {
    let all = testkit::vectors("findings-v1.json");
    let v = &all["attestation"]["expired"][0];
    assert_eq!(s(v, "name"), "leaf-expired");
    run(v, AttestationPolicy::Required(roots(v))).unwrap();
    let cd = b64::decode("cd", s(v, "client_data_json")).unwrap();
    let ao = b64::decode("ao", s(v, "attestation_object")).unwrap();
    let mut e = expectations(v, AttestationPolicy::Required(roots(v)));
    e.now = Some(1_780_000_000); // 2026-05-28
    assert_eq!(
        verify_registration(&e, &cd, &ao),
        Err(Error::CertificateExpired { index: 0 })
    );
}
