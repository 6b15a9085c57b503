//! The virtual key's output verifies with the project's own relying-party code (crate
//! `webauthn`): packed attestation chaining to the sandbox root, and assertions with
//! rising counters. And it does not verify when it should not.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::{SystemTime, UNIX_EPOCH};

use authenticator::{KeyProgrammer, Pin, VirtualYubiKey, client, sandbox_attestation_root_pem};
use serde_json::Value;
use uuid::Uuid;
use webauthn::{
    AssertionExpectations, AttestationPolicy, AttestationType, RegisteredCredential,
    RegistrationExpectations, TrustRoots, verify_assertion, verify_registration,
};

const OPTIONS: &str = include_str!("../fixtures/entra_creation_options.json");
const RP_ID: &str = "login.microsoft.com";
const ORIGIN: &str = "https://login.microsoft.com";
const PIN: &str = "27182818";

fn challenge() -> String {
    let v: Value = serde_json::from_str(OPTIONS).unwrap();
    v["publicKey"]["challenge"].as_str().unwrap().to_owned()
}

fn expectations(policy: AttestationPolicy) -> RegistrationExpectations {
    let mut exp = RegistrationExpectations::new(RP_ID, challenge(), policy);
    exp.require_uv = true;
    exp.now = Some(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    exp
}

fn sandbox_roots() -> TrustRoots {
    TrustRoots::from_pem(sandbox_attestation_root_pem()).unwrap()
}

fn registered(
    model: &str,
    firmware: &str,
) -> (
    VirtualYubiKey,
    RegisteredCredential,
    webauthn::options::RegistrationResponse,
) {
    let mut k =
        VirtualYubiKey::new(model.parse().unwrap(), firmware.parse().unwrap(), None).unwrap();
    let pin = Pin::new(PIN);
    k.set_pin(&pin).unwrap();
    let reg = client::make_credential(&mut k, OPTIONS, ORIGIN, Some(&pin)).unwrap();
    let cred = verify_registration(
        &expectations(AttestationPolicy::Required(sandbox_roots())),
        &reg.response.client_data_json,
        &reg.response.attestation_object,
    )
    .unwrap();
    (k, cred, reg)
}

#[test]
fn registration_is_attested_by_the_sandbox_root_with_the_model_aaguid() {
    let (k, cred, reg) = registered("YubiKey 5 NFC", "5.7.1");
    assert!(cred.attested);
    assert_eq!(cred.attestation_type, AttestationType::Trusted);
    assert_eq!(cred.fmt, "packed");
    assert_eq!(
        cred.aaguid,
        Uuid::parse_str("a25342c0-3cdc-4414-8e46-f4807fca511c").unwrap()
    );
    assert_eq!(cred.credential_id, reg.id);
    assert_eq!(cred.attestation_chain, k.attestation_chain());
    assert!(cred.uv);
    assert_eq!(cred.sign_count, 0);
    let ext = cred.extensions.unwrap();
    assert_eq!(ext.cred_protect, Some(1));
    assert_eq!(ext.hmac_secret, Some(true));

    let (_, cred, _) = registered("Security Key NFC", "5.4.3");
    assert_eq!(
        cred.aaguid,
        Uuid::parse_str("149a2021-8ef6-4133-96b8-81f8d5b7f1f5").unwrap()
    );
}

#[test]
fn assertions_verify_with_the_stored_key_and_rising_counters() {
    let (mut k, cred, _) = registered("YubiKey 5 NFC", "5.7.1");
    let pin = Pin::new(PIN);
    let mut stored = cred.sign_count;
    for (i, challenge) in ["Zmlyc3Q", "c2Vjb25k", "dGhpcmQ"].iter().enumerate() {
        let a = client::get_assertion(&mut k, RP_ID, challenge, ORIGIN, &[], Some(&pin)).unwrap();
        assert_eq!(a.id, cred.credential_id);
        let out = verify_assertion(
            &AssertionExpectations {
                rp_id: RP_ID.into(),
                origins: vec![ORIGIN.into()],
                challenge: (*challenge).into(),
                require_uv: true,
                public_key_cose: cred.public_key_cose.clone(),
                sign_count: stored,
            },
            &a.response.client_data_json,
            &a.response.authenticator_data,
            &a.response.signature,
        )
        .unwrap();
        assert!(out.uv);
        assert_eq!(out.sign_count as usize, i + 1);
        stored = out.sign_count;
    }
}

#[test]
fn another_root_does_not_attest_the_virtual_key() {
    // A root that is not the sandbox root: the intermediate itself is not a trust anchor
    // the chain ends at, so use a freshly generated CA instead.
    let other = authenticator::generate_sandbox_ca().unwrap();
    let roots = TrustRoots::from_pem(&other.root_pem).unwrap();
    let mut k = VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        "5.7.1".parse().unwrap(),
        None,
    )
    .unwrap();
    let pin = Pin::new(PIN);
    k.set_pin(&pin).unwrap();
    let reg = client::make_credential(&mut k, OPTIONS, ORIGIN, Some(&pin)).unwrap();
    let cd = &reg.response.client_data_json;
    let ao = &reg.response.attestation_object;
    assert!(
        verify_registration(&expectations(AttestationPolicy::Required(roots)), cd, ao).is_err()
    );
    // Optional: the statement still verifies, but is not attested.
    let roots = TrustRoots::from_pem(&other.root_pem).unwrap();
    let cred =
        verify_registration(&expectations(AttestationPolicy::Optional(roots)), cd, ao).unwrap();
    assert!(!cred.attested);
}

#[test]
fn a_replayed_assertion_or_wrong_challenge_is_refused() {
    let (mut k, cred, _) = registered("YubiKey 5 NFC", "5.7.1");
    let a =
        client::get_assertion(&mut k, RP_ID, "b25jZQ", ORIGIN, &[], Some(&Pin::new(PIN))).unwrap();
    let exp = |challenge: &str, sign_count: u32| AssertionExpectations {
        rp_id: RP_ID.into(),
        origins: vec![ORIGIN.into()],
        challenge: challenge.into(),
        require_uv: true,
        public_key_cose: cred.public_key_cose.clone(),
        sign_count,
    };
    let r = &a.response;
    let check = |e: &AssertionExpectations| {
        verify_assertion(e, &r.client_data_json, &r.authenticator_data, &r.signature)
    };
    check(&exp("b25jZQ", 0)).unwrap();
    assert!(check(&exp("b25jZQ", 1)).is_err(), "counter did not rise");
    assert!(check(&exp("b3RoZXI", 0)).is_err(), "other challenge");
    let mut sig = r.signature.clone();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    assert!(
        verify_assertion(
            &exp("b25jZQ", 0),
            &r.client_data_json,
            &r.authenticator_data,
            &sig
        )
        .is_err()
    );
}
