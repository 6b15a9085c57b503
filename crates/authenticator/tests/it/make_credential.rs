//! makeCredential and getAssertion rules through the client layer, with Entra-shaped
//! options: excludeCredentials in every id form, algorithms, resident-key capacity,
//! credProtect, origins.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use authenticator::{CtapError, Error, KeyProgrammer, Pin, VirtualYubiKey, b64, client};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde_json::{Value, json};

const OPTIONS: &str = include_str!("../fixtures/entra_creation_options.json");
const ORIGIN: &str = "https://login.microsoft.com";
const RP_ID: &str = "login.microsoft.com";
const PIN: &str = "31415926";

fn key(firmware: &str) -> VirtualYubiKey {
    let mut k = VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        firmware.parse().unwrap(),
        None,
    )
    .unwrap();
    k.set_pin(&Pin::new(PIN)).unwrap();
    k
}

fn options() -> Value {
    serde_json::from_str(OPTIONS).unwrap()
}

fn register(k: &mut VirtualYubiKey, opts: &Value) -> authenticator::Result<Vec<u8>> {
    client::make_credential(k, &opts.to_string(), ORIGIN, Some(&Pin::new(PIN))).map(|r| r.id)
}

fn ctap<T: std::fmt::Debug>(r: authenticator::Result<T>) -> CtapError {
    match r {
        Err(Error::Ctap(e)) => e,
        other => panic!("expected a CTAP error, got {other:?}"),
    }
}

#[test]
fn exclude_credentials_match_in_every_form_entra_sends() {
    let mut k = key("5.7.1");
    let id = register(&mut k, &options()).unwrap();
    let unpadded = b64::encode(&id);
    let padded = URL_SAFE.encode(&id);
    let url_token = format!("{unpadded}{}", padded.len() - unpadded.len());
    for form in [unpadded.clone(), padded, STANDARD.encode(&id), url_token] {
        let mut opts = options();
        opts["publicKey"]["excludeCredentials"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "public-key", "id": form, "transports": ["usb"]}));
        assert_eq!(
            ctap(register(&mut k, &opts)),
            CtapError::CredentialExcluded,
            "{form}"
        );
    }
    // Another RP's credential with the same id is not excluded here.
    assert_eq!(k.summary().credential_count(), 1);
}

#[test]
fn only_es256_is_supported() {
    let mut k = key("5.7.1");
    let mut opts = options();
    opts["publicKey"]["pubKeyCredParams"] = json!([{"type": "public-key", "alg": -257}]);
    assert_eq!(
        ctap(register(&mut k, &opts)),
        CtapError::UnsupportedAlgorithm
    );
}

#[test]
fn a_second_registration_for_the_same_user_replaces_the_resident_credential() {
    let mut k = key("5.7.1");
    let first = register(&mut k, &options()).unwrap();
    let second = register(&mut k, &options()).unwrap();
    assert_ne!(first, second);
    let s = k.summary();
    assert_eq!(s.credential_count(), 1);
    assert_eq!(s.credentials[RP_ID][0].credential_id, b64::encode(&second));
}

#[test]
fn resident_key_store_fills_up_at_25_before_firmware_5_7() {
    let mut k = key("5.4.3");
    assert_eq!(k.get_info().unwrap().remaining_discoverable_credentials, 25);
    for i in 0..25u8 {
        let mut opts = options();
        opts["publicKey"]["user"]["id"] = json!(b64::encode([i; 16]));
        register(&mut k, &opts).unwrap();
    }
    let mut opts = options();
    opts["publicKey"]["user"]["id"] = json!(b64::encode([99; 16]));
    assert_eq!(ctap(register(&mut k, &opts)), CtapError::KeyStoreFull);
    assert_eq!(k.get_info().unwrap().remaining_discoverable_credentials, 0);
}

#[test]
fn cred_protect_3_needs_user_verification_to_be_found() {
    let mut k = key("5.7.1");
    let mut opts = options();
    opts["publicKey"]["extensions"]["credentialProtectionPolicy"] =
        json!("userVerificationRequired");
    let reg =
        client::make_credential(&mut k, &opts.to_string(), ORIGIN, Some(&Pin::new(PIN))).unwrap();
    assert_eq!(
        reg.client_extension_results["credentialProtectionPolicy"],
        "userVerificationRequired"
    );
    assert_eq!(
        ctap(client::get_assertion(
            &mut k,
            RP_ID,
            "YWJj",
            ORIGIN,
            &[],
            None
        )),
        CtapError::NoCredentials
    );
    client::get_assertion(&mut k, RP_ID, "YWJj", ORIGIN, &[], Some(&Pin::new(PIN))).unwrap();
}

#[test]
fn cred_protect_1_credentials_sign_without_user_verification_and_say_so() {
    let mut k = key("5.7.1");
    register(&mut k, &options()).unwrap();
    let a = client::get_assertion(&mut k, RP_ID, "YWJj", ORIGIN, &[], None).unwrap();
    let flags = a.response.authenticator_data[32];
    assert_eq!(flags & 0x01, 0x01, "user present");
    assert_eq!(flags & 0x04, 0, "not verified");
}

#[test]
fn non_discoverable_credentials_need_the_allow_list() {
    let mut k = key("5.7.1");
    let mut opts = options();
    opts["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    let id = register(&mut k, &opts).unwrap();
    let pin = Pin::new(PIN);
    assert_eq!(
        ctap(client::get_assertion(
            &mut k,
            RP_ID,
            "YWJj",
            ORIGIN,
            &[],
            Some(&pin)
        )),
        CtapError::NoCredentials
    );
    let a = client::get_assertion(
        &mut k,
        RP_ID,
        "YWJj",
        ORIGIN,
        std::slice::from_ref(&id),
        Some(&pin),
    )
    .unwrap();
    assert_eq!(a.id, id);
    assert_eq!(a.response.user_handle, None);
}

#[test]
fn the_origin_must_belong_to_the_rp() {
    let mut k = key("5.7.1");
    let err = client::make_credential(
        &mut k,
        OPTIONS,
        "https://login.microsoft.com.evil.example",
        Some(&Pin::new(PIN)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Request(_)), "{err}");
    // Nothing was attempted: no PIN attempt was spent.
    assert_eq!(k.summary().pin_retries, 8);
}

#[test]
fn bare_and_wrapped_options_both_work_and_challenge_is_kept_verbatim() {
    let mut k = key("5.7.1");
    let opts = options();
    let bare = opts["publicKey"].to_string();
    let reg = client::make_credential(&mut k, &bare, ORIGIN, Some(&Pin::new(PIN))).unwrap();
    let cd: Value = serde_json::from_slice(&reg.response.client_data_json).unwrap();
    assert_eq!(cd["challenge"], opts["publicKey"]["challenge"]);
    assert_eq!(cd["type"], "webauthn.create");
    assert_eq!(cd["origin"], ORIGIN);
    assert_eq!(cd["crossOrigin"], false);
}

#[test]
fn attestation_none_gets_what_a_browser_sends() {
    let mut k = key("5.7.1");
    let mut opts = options();
    opts["publicKey"]["attestation"] = json!("none");
    let reg =
        client::make_credential(&mut k, &opts.to_string(), ORIGIN, Some(&Pin::new(PIN))).unwrap();
    let obj: ciborium::Value =
        ciborium::from_reader(reg.response.attestation_object.as_slice()).unwrap();
    let map = obj.as_map().unwrap();
    assert_eq!(map[0].1, ciborium::Value::from("none"));
    assert_eq!(map[1].1, ciborium::Value::Map(vec![]));
    let auth_data = map[2].1.as_bytes().unwrap();
    assert_eq!(auth_data[37..53], [0u8; 16], "AAGUID zeroed");
    let mut exp = webauthn::RegistrationExpectations::new(
        RP_ID,
        opts["publicKey"]["challenge"].as_str().unwrap(),
        webauthn::AttestationPolicy::None,
    );
    exp.require_uv = true;
    let cred = webauthn::verify_registration(
        &exp,
        &reg.response.client_data_json,
        &reg.response.attestation_object,
    )
    .unwrap();
    assert_eq!(cred.fmt, "none");
    assert!(!cred.attested);
}
