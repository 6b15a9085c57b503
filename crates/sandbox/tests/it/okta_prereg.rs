//! The WebAuthn Preregistration API of the Okta sandbox: each endpoint's success and
//! error answers, in Okta's error shape.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common::*;
use authenticator::{KeyProgrammer, Pin};
use reqwest::Method;
use serde_json::{Value, json};

fn cause(v: &Value) -> String {
    v["errorCauses"][0]["errorSummary"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn enroll_makes_one_factor_per_rp_with_its_own_response_key() {
    let sb = start().await;
    let e = sb.enroll(BOB, &[RP, "login.example.com"]).await;
    let reqs = e["credRequests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2);
    assert_ne!(reqs[0]["keyId"], reqs[1]["keyId"]);
    assert_ne!(
        reqs[0]["authenticatorEnrollmentId"],
        reqs[1]["authenticatorEnrollmentId"]
    );
    assert_eq!(e["userId"], BOB);
    assert_eq!(e["fulfillmentProvider"], "yubico");
    // Compact JWEs, headed for the fulfiller's transport key.
    let h = envelope::inspect(e["pinRequestJwe"].as_str().unwrap()).unwrap();
    assert_eq!(h["jwe"]["cty"], "fido-prereg+json");
    let tk = sb.transport_key().await;
    assert_eq!(h["jwe"]["kid"], tk["kid"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn enroll_refuses_bad_input_with_okta_errors() {
    let sb = start().await;
    let tk = sb.transport_key().await;
    let body = |user: &str, rps: Value, key: Value| json!({"enrollmentRpIds": rps, "fulfillmentProvider": "yubico", "userId": user, "yubicoTransportKeyJWK": key});
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/enroll"),
            Some(body("00unobody", json!([RP]), tk.clone())),
        )
        .await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (404, "E0000007"));
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/enroll"),
            Some(body(ALICE, json!(["https://x.example.com/"]), tk.clone())),
        )
        .await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (400, "E0000001"));
    assert!(cause(&v).contains("not a host name"), "{v}");
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/enroll"),
            Some(body(ALICE, json!([RP]), json!({"keys": [tk.clone()]}))),
        )
        .await;
    assert_eq!(s, 400);
    assert!(cause(&v).contains("must be one JWK"), "{v}");
    let mut sig = tk.clone();
    sig["use"] = json!("sig");
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/enroll"),
            Some(body(ALICE, json!([RP]), sig)),
        )
        .await;
    assert_eq!(s, 400);
    assert!(cause(&v).contains("\"use\": \"enc\""), "{v}");
    for k in [
        "errorCode",
        "errorSummary",
        "errorLink",
        "errorId",
        "errorCauses",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_without_a_valid_token_get_e0000011() {
    let sb = start().await;
    let (s, v) = sb
        .okta_auth(
            Method::GET,
            &format!("{PREREG}/users/{ALICE}/enrollments"),
            None,
            "SSWS wrong",
        )
        .await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (401, "E0000011"));
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_accepts_the_older_cred_response_spelling() {
    let sb = start().await;
    let e = sb.enroll(ALICE, &[RP]).await;
    let f = sb.fulfil(&e).await;
    let mut body = sb.activate_body(ALICE, &e, &f).await;
    let r = body["credResponses"][0].as_object_mut().unwrap();
    let jwe = r.remove("credResponseJwe").unwrap();
    r.insert("credResponseJWE".into(), jwe);
    let (s, v) = sb.activate(body).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_refuses_a_jwks_object_for_the_signing_keys() {
    let sb = start().await;
    let e = sb.enroll(ALICE, &[RP]).await;
    let f = sb.fulfil(&e).await;
    let mut body = sb.activate_body(ALICE, &e, &f).await;
    body["yubicoSigningJwks"] = json!({"keys": body["yubicoSigningJwks"].clone()});
    let (s, v) = sb.activate(body).await;
    assert_eq!(s, 400);
    assert!(cause(&v).contains("bare array of JWKs"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_refuses_a_tampered_response() {
    let sb = start().await;
    let e = sb.enroll(ALICE, &[RP]).await;
    let f = sb.fulfil(&e).await;
    let mut body = sb.activate_body(ALICE, &e, &f).await;
    let jwe = body["credResponses"][0]["credResponseJwe"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    let ct = &mut parts[3];
    let flipped = if ct.starts_with('A') { "B" } else { "A" };
    ct.replace_range(0..1, flipped);
    body["credResponses"][0]["credResponseJwe"] = json!(parts.join("."));
    let (s, v) = sb.activate(body.clone()).await;
    assert_eq!(
        (s, v["errorSummary"].as_str().unwrap()),
        (
            400,
            "Api validation failed: pinResponseJwe|webAuthnCredResponse"
        )
    );
    assert!(cause(&v).contains("credResponseJwe"), "{v}");
    let (_, list) = sb
        .okta(
            Method::GET,
            &format!("{PREREG}/users/{ALICE}/enrollments"),
            None,
        )
        .await;
    assert_eq!(list[0]["status"], "PENDING_ACTIVATION", "nothing activated");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_refuses_signing_keys_the_org_does_not_trust() {
    let sb = start().await;
    let e = sb.enroll(ALICE, &[RP]).await;
    let f = sb.fulfil(&e).await;
    let body = sb.activate_body(ALICE, &e, &f).await;
    // A key the org does not trust, offered as the signer.
    let rogue = envelope::PrivateJwk::generate("rogue-signer", envelope::KeyUse::Sig).unwrap();
    let mut b = body.clone();
    b["yubicoSigningJwks"] = json!([rogue.public().to_value()]);
    let (s, v) = sb.activate(b).await;
    assert_eq!(s, 400);
    assert!(
        cause(&v).contains("not a signing key this org trusts"),
        "{v}"
    );
    // The org stops trusting the fulfiller's key: the genuine response is refused too.
    sb.okta
        .set_trusted_signing(envelope::Jwks::from_keys([rogue.public()]).unwrap());
    let (s, v) = sb.activate(body).await;
    assert_eq!(s, 400);
    assert!(
        cause(&v).contains("not a signing key this org trusts"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_refuses_a_response_replayed_for_another_enrollment() {
    let sb = start().await;
    let e1 = sb.enroll(ALICE, &[RP]).await;
    let f1 = sb.fulfil(&e1).await;
    let e2 = sb.enroll(ALICE, &[RP]).await;
    let f2 = sb.fulfil(&e2).await;
    // Enrollment 2's ids with enrollment 1's responses.
    let mut body = sb.activate_body(ALICE, &e2, &f2).await;
    body["credResponses"][0]["credResponseJwe"] = json!(f1.cred_responses[0]);
    let (s, v) = sb.activate(body).await;
    assert_eq!(s, 400);
    assert!(
        cause(&v).contains(
            e2["credRequests"][0]["authenticatorEnrollmentId"]
                .as_str()
                .unwrap()
        ),
        "{v}"
    );
    // And the PIN response of another key.
    let mut body = sb.activate_body(ALICE, &e2, &f2).await;
    body["pinResponseJwe"] = json!(f1.pin_response);
    let (s, v) = sb.activate(body).await;
    assert_eq!(s, 400);
    assert!(cause(&v).contains("pinResponseJwe"), "{v}");
    // The genuine pair still activates.
    let (s, v) = sb.activate(sb.activate_body(ALICE, &e2, &f2).await).await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_refuses_a_serial_or_version_that_does_not_match_the_responses() {
    let sb = start().await;
    let e = sb.enroll(ALICE, &[RP]).await;
    let f = sb.fulfil(&e).await;
    let mut body = sb.activate_body(ALICE, &e, &f).await;
    body["serial"] = json!("1");
    let (s, v) = sb.activate(body).await;
    assert_eq!(s, 400);
    assert!(cause(&v).contains("serial"), "{v}");
    let mut body = sb.activate_body(ALICE, &e, &f).await;
    body["version"] = json!("1.0.0");
    let (s, v) = sb.activate(body).await;
    assert_eq!(s, 400);
    assert!(cause(&v).contains("firmware"), "{v}");
    // Activating twice: the second is refused.
    let (s, _) = sb.activate(sb.activate_body(ALICE, &e, &f).await).await;
    assert_eq!(s, 200);
    let (s, v) = sb.activate(sb.activate_body(ALICE, &e, &f).await).await;
    assert_eq!(s, 400);
    assert!(cause(&v).contains("not PENDING_ACTIVATION"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_pin_takes_an_array_id_and_mails_staged_users_at_both_addresses() {
    let sb = start().await;
    let (e, _) = sb.active_key(CAROL).await;
    let fid = e["credRequests"][0]["authenticatorEnrollmentId"].clone();
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/send-pin"),
            Some(json!({
        "authenticatorEnrollmentId": [fid], "fulfillmentProvider": "yubico", "userId": CAROL})),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let mail = sb.mail().await;
    assert_eq!(
        mail[0]["to"],
        json!(["carol.chen@example.com", "carol.home@example.net"])
    );
    // Resend: allowed until the first sign-in, same PIN.
    let (s, _) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/send-pin"),
            Some(json!({
        "authenticatorEnrollmentId": fid, "fulfillmentProvider": "yubico", "userId": CAROL})),
        )
        .await;
    assert_eq!(s, 204);
    let mail = sb.mail().await;
    assert_eq!(mail.len(), 2);
    assert_eq!(
        pin_in(mail[0]["body"].as_str().unwrap()),
        pin_in(mail[1]["body"].as_str().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn send_pin_is_refused_before_activation_and_for_unknown_enrollments() {
    let sb = start().await;
    let e = sb.enroll(ALICE, &[RP]).await;
    let fid = e["credRequests"][0]["authenticatorEnrollmentId"].clone();
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/send-pin"),
            Some(json!({
        "authenticatorEnrollmentId": fid, "fulfillmentProvider": "yubico", "userId": ALICE})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(cause(&v).contains("activate it before"), "{v}");
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/send-pin"),
            Some(json!({
        "authenticatorEnrollmentId": "fwfnope", "fulfillmentProvider": "yubico", "userId": ALICE})),
        )
        .await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (404, "E0000007"));
    assert!(sb.mail().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn send_pin_after_the_first_sign_in_is_refused() {
    let sb = start().await;
    let (e, f) = sb.active_key(ALICE).await;
    let fid = e["credRequests"][0]["authenticatorEnrollmentId"].clone();
    let send =
        json!({"authenticatorEnrollmentId": fid, "fulfillmentProvider": "yubico", "userId": ALICE});
    let (s, _) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/send-pin"),
            Some(send.clone()),
        )
        .await;
    assert_eq!(s, 204);
    let pin = pin_in(sb.mail().await[0]["body"].as_str().unwrap());
    let mut key = sb.shipped_key(&f.shipment_id).await;
    key.change_pin(&Pin::new(pin.as_str()), &Pin::new("55501234"))
        .unwrap();
    let (s, v) = sb.sign_in(&mut key, ALICE, "55501234").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = sb
        .okta(Method::POST, &format!("{PREREG}/send-pin"), Some(send))
        .await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (403, "E0000006"));
    assert!(cause(&v).contains("has signed in with this key"), "{v}");
    assert_eq!(sb.mail().await.len(), 1, "no second mail");
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_refuses_a_replayed_challenge_and_a_key_without_the_credential() {
    let sb = start().await;
    let (e, f) = sb.active_key(ALICE).await;
    let fid = e["credRequests"][0]["authenticatorEnrollmentId"].clone();
    sb.okta(Method::POST, &format!("{PREREG}/send-pin"), Some(json!({"authenticatorEnrollmentId": fid, "fulfillmentProvider": "yubico", "userId": ALICE}))).await;
    let pin = pin_in(sb.mail().await[0]["body"].as_str().unwrap());
    let mut key = sb.shipped_key(&f.shipment_id).await;
    key.change_pin(&Pin::new(pin.as_str()), &Pin::new("24682468"))
        .unwrap();
    let (_, begin) = sb
        .okta(
            Method::POST,
            "/sandbox/v1/signin/begin",
            Some(json!({"upn": ALICE})),
        )
        .await;
    let pk = &begin["publicKey"];
    assert_eq!(pk["rpId"], RP);
    assert_eq!(pk["userVerification"], "required");
    let a = authenticator::client::get_assertion(
        &mut key,
        RP,
        pk["challenge"].as_str().unwrap(),
        &format!("https://{RP}"),
        &[],
        Some(&Pin::new("24682468")),
    )
    .unwrap();
    let (s, _) = sb
        .okta(
            Method::POST,
            "/sandbox/v1/signin/finish",
            Some(json!({"credential": a.clone()})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = sb
        .okta(
            Method::POST,
            "/sandbox/v1/signin/finish",
            Some(json!({"credential": a})),
        )
        .await;
    assert_eq!(s, 401, "{v}");
    // Bob has no active key.
    let (s, _) = sb
        .okta(
            Method::POST,
            "/sandbox/v1/signin/begin",
            Some(json!({"upn": BOB})),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn enrollments_list_delete_and_mark_error() {
    let sb = start().await;
    let e = sb.enroll(BOB, &[RP]).await;
    let fid = e["credRequests"][0]["authenticatorEnrollmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/users/{BOB}/enrollments/{fid}/mark-error"),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (_, list) = sb
        .okta(
            Method::GET,
            &format!("{PREREG}/users/{BOB}/enrollments"),
            None,
        )
        .await;
    assert_eq!(list[0]["status"], "FULFILLMENT_ERRORED");
    assert_eq!(list[0]["factorType"], "webauthn");
    assert!(
        list[0]["_links"]["self"]["href"]
            .as_str()
            .unwrap()
            .ends_with(&fid)
    );
    let (s, _) = sb
        .okta(
            Method::DELETE,
            &format!("{PREREG}/users/{BOB}/enrollments/{fid}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, list) = sb
        .okta(
            Method::GET,
            &format!("{PREREG}/users/{BOB}/enrollments"),
            None,
        )
        .await;
    assert_eq!(list, json!([]));
    let (s, v) = sb
        .okta(
            Method::DELETE,
            &format!("{PREREG}/users/{BOB}/enrollments/{fid}"),
            None,
        )
        .await;
    assert_eq!((s, v["errorCode"].as_str().unwrap()), (404, "E0000007"));
    let (s, _) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/users/{BOB}/enrollments/{fid}/mark-error"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = sb
        .okta(
            Method::GET,
            &format!("{PREREG}/users/00unobody/enrollments"),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_rate_limits_answer_429_in_oktas_shape() {
    let sb = start().await;
    sb.okta.faults().set(sandbox::faults::FaultConfig {
        rate_limit_rate: 1.0,
        retry_after_secs: Some(2),
        ..Default::default()
    });
    let resp = sb
        .http
        .get(format!("{}/api/v1/users/{ALICE}", sb.okta_url))
        .header("Authorization", format!("SSWS {SSWS}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["errorCode"], "E0000047");
    // The sandbox routes are never faulted.
    assert!(sb.mail().await.is_empty());
}
