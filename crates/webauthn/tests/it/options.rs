//! WebAuthn options/response JSON against the shapes in the spec files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use webauthn::options::{PublicKeyCredentialCreationOptions, RegistrationResponse};
use webauthn::{ClientData, b64};

#[test]
fn entra_creation_options_parse_with_microsoft_extensions() {
    let bytes = include_bytes!("../fixtures/entra_creation_options.json");
    let o = PublicKeyCredentialCreationOptions::from_json(bytes).unwrap();
    assert_eq!(o.rp_id(), Some("login.microsoft.com"));
    assert_eq!(&o.user.id[..3], b"OF:");
    assert_eq!(o.user.id.len(), 51);
    assert!(o.challenge.starts_with("ZXlKaGJHY2lPaUpTVTBF"));
    let algs: Vec<i64> = o.pub_key_cred_params.iter().map(|p| p.alg).collect();
    assert_eq!(algs, vec![-7, -257]);
    assert_eq!(o.timeout, Some(60000));
    assert!(o.requires_uv());
    assert_eq!(o.attestation.as_deref(), Some("direct"));
    let sel = o.authenticator_selection.as_ref().unwrap();
    assert_eq!(sel.require_resident_key, Some(true));
    assert_eq!(
        sel.authenticator_attachment.as_deref(),
        Some("cross-platform")
    );
    let ext = o.extensions.as_ref().unwrap();
    assert_eq!(ext.hmac_create_secret, Some(true));
    assert_eq!(ext.enforce_credential_protection_policy, Some(true));
    assert_eq!(ext.cred_protect_level(), Some(1));
    // excludeCredentials ids come as standard base64 with padding.
    assert_eq!(o.exclude_credentials.len(), 2);
    assert_eq!(o.exclude_credentials[0].id_candidates()[0].len(), 32);
    assert_eq!(o.exclude_credentials[1].id_candidates()[0].len(), 16);
    assert_eq!(o.exclude_credentials[1].transports, vec!["usb", "nfc"]);

    // Bare options (no Graph wrapper) parse too, and round-trip.
    let bare = serde_json::to_vec(&o).unwrap();
    assert_eq!(
        PublicKeyCredentialCreationOptions::from_json(&bare).unwrap(),
        o
    );
}

#[test]
fn registration_response_matches_the_envelope_vector_credential() {
    let v = testkit::vectors("envelope-v1.json");
    let cred = v["valid"][2]["expect"]["credential"].clone();
    let r: RegistrationResponse = serde_json::from_value(cred.clone()).unwrap();
    assert_eq!(r.raw_id.as_deref(), Some(&r.id[..]));
    assert_eq!(r.typ.as_deref(), Some("public-key"));
    assert_eq!(r.response.transports, vec!["usb", "nfc"]);
    let cd = ClientData::parse(&r.response.client_data_json).unwrap();
    assert_eq!(cd.origin, "https://login.microsoft.com");
    assert_eq!(serde_json::to_value(&r).unwrap(), cred);
    assert_eq!(b64::encode(&r.id), cred["id"].as_str().unwrap());
}

#[test]
fn dsi_style_registration_without_type_or_raw_id_parses() {
    let json = r#"{"id":"AQID","response":{"clientDataJSON":"e30","attestationObject":"oA"},
                   "clientExtensionResults":{"hmacCreateSecret":true}}"#;
    let r: RegistrationResponse = serde_json::from_str(json).unwrap();
    assert_eq!(r.id, vec![1, 2, 3]);
    assert!(r.raw_id.is_none() && r.typ.is_none());
}

#[test]
fn expectations_follow_the_creation_options() {
    let bytes = include_bytes!("../fixtures/entra_creation_options.json");
    let o = PublicKeyCredentialCreationOptions::from_json(bytes).unwrap();
    let e = webauthn::RegistrationExpectations::from_options(&o, webauthn::AttestationPolicy::None)
        .unwrap();
    assert_eq!(e.rp_id, "login.microsoft.com");
    assert_eq!(e.origins, vec!["https://login.microsoft.com".to_owned()]);
    assert_eq!(e.challenge, o.challenge);
    assert!(e.require_uv);
    assert_eq!(e.allowed_algorithms, vec![-7, -257]);
}
