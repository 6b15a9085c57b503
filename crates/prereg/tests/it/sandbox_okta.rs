//! The Okta sandbox through the binary: `prereg sandbox` prints the Okta org, its SSWS
//! token and the mail catcher; with those alone a key is enrolled, shipped by the
//! fulfiller sandbox, activated, its PIN mailed, and the user signs in with
//! `prereg key sign-in --okta`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

use serde_json::{Value, json};

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).header("Authorization", auth);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let s = resp.status().as_u16();
    (
        s,
        serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_key_shipped_for_okta_signs_in_with_prereg_key_and_the_mailed_pin() {
    let (_running, ready) = start_sandbox();
    let okta = ready["okta"]["base_url"].as_str().unwrap().to_owned();
    let ssws = format!("SSWS {}", ready["okta"]["ssws_token"].as_str().unwrap());
    let ful = ready["fulfiller"]["base_url"].as_str().unwrap().to_owned();
    let ful_auth = format!(
        "Bearer {}",
        ready["fulfiller"]["tokens"][0].as_str().unwrap()
    );
    assert!(
        ready["mail"]["smtp"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(
        ready["okta"]["service_app"]["scopes"],
        "okta.users.read okta.users.manage"
    );
    let http = reqwest::Client::new();
    let user = "00usandboxerin00005";
    let login = "erin.eriksson@example.com";

    let (_, tk) = call(
        &http,
        reqwest::Method::GET,
        &format!("{ful}/.well-known/yubico-transport-keys.jwks"),
        "",
        None,
    )
    .await;
    let (s, e) = call(&http, reqwest::Method::POST, &format!("{okta}/webauthn-registration/api/v1/enroll"), &ssws, Some(json!({
        "enrollmentRpIds": ["prereg-sandbox.okta.com"], "fulfillmentProvider": "yubico", "userId": user,
        "yubicoTransportKeyJWK": tk["keys"][0]}))).await;
    assert_eq!(s, 200, "{e}");
    let customization = ready["fulfiller"]["customizations"][0].clone();
    let (s, ship) = call(&http, reqwest::Method::POST, &format!("{ful}/v1/fpr/shipments"), &ful_auth, Some(json!({
        "delivery_type": 1,
        "recipient": {"recipient_company": "Example", "recipient_email": login, "recipient_firstname": "Erin",
            "recipient_lastname": "Eriksson", "recipient_telephone": "+46 8 555 0105"},
        "mailing_address": {"street_line1": "Drottninggatan 1", "street_line2": "", "city": "Stockholm",
            "region": "AB", "postal_code": "11151", "country_code_2": "SE"},
        "shipment_items": [{"product_id": 1, "inventory_product_id": 1, "product_quantity": 1, "customization_id": customization,
            "product_customizations": [{"fido_pin_request": e["pinRequestJwe"],
                "fido_credential_requests": [e["credRequests"][0]["credRequestJwe"]]}]}]}))).await;
    assert_eq!(s, 201, "{ship}");
    let id = ship["shipment_id"].as_str().unwrap().to_owned();
    let mut pd = Value::Null;
    for _ in 0..10 {
        call(
            &http,
            reqwest::Method::POST,
            &format!("{ful}/sandbox/v1/advance"),
            &ful_auth,
            Some(json!({})),
        )
        .await;
        let (_, v) = call(
            &http,
            reqwest::Method::GET,
            &format!("{ful}/v1/fpr/shipments/{id}"),
            &ful_auth,
            None,
        )
        .await;
        pd = v["shipment_items"][0]["product_data"][0].clone();
        if pd.is_object() {
            break;
        }
    }
    let (_, sig) = call(
        &http,
        reqwest::Method::GET,
        &format!("{ful}/.well-known/yubico-sign.jwks"),
        "",
        None,
    )
    .await;
    let fid = e["credRequests"][0]["authenticatorEnrollmentId"].clone();
    let (s, v) = call(&http, reqwest::Method::POST, &format!("{okta}/webauthn-registration/api/v1/activate"), &ssws, Some(json!({
        "credResponses": [{"authenticatorEnrollmentId": fid, "credResponseJwe": pd["fido_credential_responses"][0]}],
        "fulfillmentProvider": "yubico", "pinResponseJwe": pd["fido_pin_response"],
        "serial": pd["serial_number"], "version": pd["firmware_version"], "userId": user,
        "yubicoSigningJwks": sig["keys"]}))).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(
        &http,
        reqwest::Method::POST,
        &format!("{okta}/webauthn-registration/api/v1/send-pin"),
        &ssws,
        Some(json!({
        "authenticatorEnrollmentId": fid, "fulfillmentProvider": "yubico", "userId": user})),
    )
    .await;
    assert_eq!(s, 204);
    let (_, mail) = call(
        &http,
        reqwest::Method::GET,
        &format!("{okta}/sandbox/v1/mail"),
        "",
        None,
    )
    .await;
    let body = mail[0]["body"].as_str().unwrap();
    let at = body.find("PIN is: ").unwrap() + 8;
    let pin = body[at..at + 6].to_owned();

    let (_, parcel) = call(
        &http,
        reqwest::Method::GET,
        &format!("{ful}/sandbox/v1/shipments/{id}/key"),
        &ful_auth,
        None,
    )
    .await;
    let dir = std::env::temp_dir().join(format!("prereg-okta-signin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.json");
    std::fs::write(&key, parcel.to_string()).unwrap();
    let key = key.to_str().unwrap();
    let out = prereg(&["key", "change-pin", key, "--old", &pin, "--new", "86429753"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = prereg(&[
        "key", "sign-in", key, "--pin", "86429753", "--okta", &okta, "--user", login,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let who: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(who["signedIn"], true);
    assert_eq!(who["user"]["id"], user);
    // send-pin is closed now; the error reaches the admin in Okta's words.
    let (s, v) = call(
        &http,
        reqwest::Method::POST,
        &format!("{okta}/webauthn-registration/api/v1/send-pin"),
        &ssws,
        Some(json!({
        "authenticatorEnrollmentId": fid, "fulfillmentProvider": "yubico", "userId": user})),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    // --entra and --okta are alternatives.
    let out = prereg(&["key", "sign-in", key, "--pin", "86429753", "--user", login]);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
