//! Sign-in, the end user's proof: a credential registered through Graph signs in
//! (signature, UV, counter checked against the stored credential), with credentials
//! made by the virtual key and by python-fido2's own client-side data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::entra_common::*;
use authenticator::{Pin, VirtualYubiKey, client};
use reqwest::Method;
use sandbox::entra::signin::{BeginResponse, SignedIn};
use serde_json::{Value, json};
use webauthn::options::AssertionResponse;

async fn begin(sb: &Sandbox, upn: &str) -> (u16, Value) {
    sb.call(
        Method::POST,
        "/sandbox/v1/signin/begin",
        None,
        Some(&json!({"upn": upn})),
    )
    .await
}

async fn finish(sb: &Sandbox, a: &AssertionResponse) -> (u16, Value) {
    sb.call(
        Method::POST,
        "/sandbox/v1/signin/finish",
        None,
        Some(&json!({"credential": a})),
    )
    .await
}

fn assert_with(
    key: &mut VirtualYubiKey,
    b: &BeginResponse,
    pin: Option<&str>,
) -> AssertionResponse {
    let allow: Vec<Vec<u8>> = b
        .public_key
        .allow_credentials
        .iter()
        .flat_map(|d| d.id_candidates())
        .collect();
    client::get_assertion(
        key,
        b.public_key.rp_id.as_deref().unwrap(),
        &b.public_key.challenge,
        graph::ENTRA_ORIGIN,
        &allow,
        pin.map(Pin::new).as_ref(),
    )
    .unwrap()
}

async fn registered_key(sb: &Sandbox, upn: &str) -> VirtualYubiKey {
    let opts = sb.options(upn, Some(60)).await;
    let mut key = new_key();
    let reg = register_json(&mut key, &opts);
    let (s, v) = sb.post_method(upn, &body_for(&reg)).await;
    assert_eq!(s, 201, "{v}");
    key
}

async fn begun(sb: &Sandbox, upn: &str) -> BeginResponse {
    let (s, v) = begin(sb, upn).await;
    assert_eq!(s, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn a_virtual_key_registered_through_graph_signs_in_and_counters_rise() {
    let sb = start().await;
    let mut key = registered_key(&sb, ADELE).await;
    let b = begun(&sb, ADELE).await;
    assert_eq!(b.public_key.rp_id.as_deref(), Some("login.microsoft.com"));
    assert_eq!(b.public_key.user_verification.as_deref(), Some("required"));
    assert_eq!(b.public_key.allow_credentials.len(), 1);
    let a = assert_with(&mut key, &b, Some(PIN));
    let (s, v) = finish(&sb, &a).await;
    assert_eq!(s, 200, "{v}");
    let who: SignedIn = serde_json::from_value(v).unwrap();
    assert!(who.signed_in && who.user_verified);
    assert_eq!(who.user.user_principal_name, ADELE);
    assert_eq!(who.user.display_name.as_deref(), Some("Adele Vance"));
    assert_eq!(who.aa_guid, "a25342c0-3cdc-4414-8e46-f4807fca511c");
    let first = who.sign_count;
    // Again: the counter rises; the stored counter follows.
    let b = begun(&sb, ADELE).await;
    let (s, v) = finish(&sb, &assert_with(&mut key, &b, Some(PIN))).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["signCount"].as_u64().unwrap() > u64::from(first));
    // The same assertion twice: the challenge is spent.
    let (s, v) = finish(
        &sb,
        &assert_with(&mut key, &begun(&sb, ADELE).await, Some(PIN)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let b = begun(&sb, ADELE).await;
    let a = assert_with(&mut key, &b, Some(PIN));
    assert_eq!(finish(&sb, &a).await.0, 200);
    let (s, v) = finish(&sb, &a).await;
    assert_eq!((s, reason(&v)), (401, "challengeAlreadyUsed"), "{v}");
}

#[tokio::test]
async fn sign_in_refuses_missing_uv_bad_signatures_and_stale_challenges() {
    let sb = start().await;
    let mut key = registered_key(&sb, ADELE).await;
    // Without the PIN the key signs without UV.
    let b = begun(&sb, ADELE).await;
    let (s, v) = finish(&sb, &assert_with(&mut key, &b, None)).await;
    assert_eq!((s, reason(&v)), (401, "userVerificationRequired"), "{v}");
    // A changed signature.
    let b = begun(&sb, ADELE).await;
    let mut a = assert_with(&mut key, &b, Some(PIN));
    let last = a.response.signature.len() - 1;
    a.response.signature[last] ^= 1;
    let (s, v) = finish(&sb, &a).await;
    assert_eq!((s, reason(&v)), (401, "invalidSignature"), "{v}");
    // An expired challenge (five minutes).
    let b = begun(&sb, ADELE).await;
    let a = assert_with(&mut key, &b, Some(PIN));
    sb.advance_minutes(6).await;
    let (s, v) = finish(&sb, &a).await;
    assert_eq!((s, reason(&v)), (401, "challengeExpired"), "{v}");
    // A registration challenge is not a sign-in challenge.
    let opts = sb.options(ADELE, Some(60)).await;
    let a = client::get_assertion(
        &mut key,
        "login.microsoft.com",
        &opts.public_key.challenge,
        graph::ENTRA_ORIGIN,
        &[],
        Some(&Pin::new(PIN)),
    )
    .unwrap();
    let (s, v) = finish(&sb, &a).await;
    assert_eq!((s, reason(&v)), (401, "challengeNotIssued"), "{v}");
}

#[tokio::test]
async fn a_credential_signs_in_only_its_own_user() {
    let sb = start().await;
    let mut adele_key = registered_key(&sb, ADELE).await;
    let _alex_key = registered_key(&sb, ALEX).await;
    // Alex begins; Adele's key answers (its own credential, Alex's challenge).
    let b = begun(&sb, ALEX).await;
    let a = client::get_assertion(
        &mut adele_key,
        "login.microsoft.com",
        &b.public_key.challenge,
        graph::ENTRA_ORIGIN,
        &[],
        Some(&Pin::new(PIN)),
    )
    .unwrap();
    let (s, v) = finish(&sb, &a).await;
    assert_eq!((s, reason(&v)), (401, "credentialNotRegistered"), "{v}");
    // Nobody without a passkey can begin.
    let (s, v) = begin(&sb, MEGAN).await;
    assert_eq!((s, reason(&v)), (400, "noPasskeyRegistered"), "{v}");
    let (s, _) = begin(&sb, "nobody@contoso.onmicrosoft.com").await;
    assert_eq!(s, 404);
}

/// python-fido2 builds the registration from Graph's options (its own client data),
/// Graph registers it, and python-fido2 signs in with the same key.
async fn python_round_trip(sb: &Sandbox, upn: &str, attestation: &str) -> (Value, Value) {
    let opts = sb.options(upn, Some(60)).await;
    let made = testkit::run_python(
        "entra_fido2.py",
        &json!({"mode": "register", "options": opts, "origin": graph::ENTRA_ORIGIN, "attestation": attestation}),
    );
    if let Some(root) = made["root_pem"].as_str() {
        let aaguid = made["aaguid"].clone();
        sb.edit_policy(|p| {
            p["attestationRootsPem"] = json!([authenticator::sandbox_attestation_root_pem(), root]);
            p["keyRestrictions"]["aaGuids"]
                .as_array_mut()
                .unwrap()
                .push(aaguid);
        })
        .await;
    }
    let body = json!({"displayName": "python-fido2", "publicKeyCredential": made["registration"]});
    let (s, created) = sb.post_method(upn, &body).await;
    assert_eq!(s, 201, "{attestation}: {created}");
    for count in [1, 7] {
        let b = begun(sb, upn).await;
        let out = testkit::run_python(
            "entra_fido2.py",
            &json!({
                "mode": "assert", "options": b.public_key, "origin": graph::ENTRA_ORIGIN,
                "key_pem": made["key_pem"], "credential_id": made["credential_id"],
                "user_handle": made["user_handle"], "sign_count": count,
            }),
        );
        let (s, v) = sb
            .call(
                Method::POST,
                "/sandbox/v1/signin/finish",
                None,
                Some(&json!({"credential": out["assertion"]})),
            )
            .await;
        assert_eq!(s, 200, "{attestation}: {v}");
        assert_eq!(v["user"]["userPrincipalName"], upn);
        assert_eq!(v["signCount"], count);
    }
    // A counter that does not rise is refused (a cloned key).
    let b = begun(sb, upn).await;
    let out = testkit::run_python(
        "entra_fido2.py",
        &json!({
            "mode": "assert", "options": b.public_key, "origin": graph::ENTRA_ORIGIN,
            "key_pem": made["key_pem"], "credential_id": made["credential_id"],
            "user_handle": made["user_handle"], "sign_count": 7,
        }),
    );
    let (s, v) = sb
        .call(
            Method::POST,
            "/sandbox/v1/signin/finish",
            None,
            Some(&json!({"credential": out["assertion"]})),
        )
        .await;
    assert_eq!((s, reason(&v)), (401, "signCountNotIncreased"), "{v}");
    (made, created)
}

#[tokio::test]
async fn python_fido2_packed_with_a_trusted_chain_registers_attested_and_signs_in() {
    let sb = start().await;
    let (_, created) = python_round_trip(&sb, ADELE, "packed-x5c").await;
    assert_eq!(created["attestationLevel"], "attested");
    assert_eq!(
        created["attestationCertificates"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn python_fido2_self_attestation_registers_when_attestation_is_not_enforced() {
    let sb = start().await;
    // Enforced: self attestation is refused.
    let opts = sb.options(ALEX, Some(60)).await;
    let made = testkit::run_python(
        "entra_fido2.py",
        &json!({"mode": "register", "options": opts, "origin": graph::ENTRA_ORIGIN, "attestation": "packed-self"}),
    );
    let (s, v) = sb
        .post_method(ALEX, &json!({"publicKeyCredential": made["registration"]}))
        .await;
    assert_eq!((s, reason(&v)), (400, "attestationNotTrusted"), "{v}");
    sb.edit_policy(|p| {
        p["isAttestationEnforced"] = json!(false);
        p["keyRestrictions"]["isEnforced"] = json!(false);
    })
    .await;
    let (_, created) = python_round_trip(&sb, ALEX, "packed-self").await;
    assert_eq!(created["attestationLevel"], "notAttested");
    let (_, created) = python_round_trip(&sb, ADELE, "none").await;
    assert_eq!(created["attestationLevel"], "notAttested");
}
