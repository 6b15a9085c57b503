//! Okta mode end to end, over plain HTTP: the Okta sandbox enrolls, the fulfiller sandbox
//! programs and ships the key, Okta activates with the fulfiller's responses and mails
//! the PIN through the SMTP catcher, and the user signs in with the shipped key and the
//! mailed PIN (changing it first, as the key demands).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common::*;
use authenticator::{KeyProgrammer, Pin};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_key_enrolled_in_okta_ships_activates_and_signs_in_with_the_mailed_pin() {
    let sb = start().await;
    let enrolled = sb.enroll(ALICE, &[RP]).await;
    assert_eq!(enrolled["credRequests"].as_array().unwrap().len(), 1);
    let fid = enrolled["credRequests"][0]["authenticatorEnrollmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fid.starts_with("fwf"));

    let (s, list) = sb
        .okta(
            Method::GET,
            &format!("{PREREG}/users/{ALICE}/enrollments"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["status"], "PENDING_ACTIVATION");

    let shipped = sb.fulfil(&enrolled).await;
    let (s, v) = sb
        .activate(sb.activate_body(ALICE, &enrolled, &shipped).await)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["authenticatorEnrollmentIds"], json!([fid]));
    let (_, list) = sb
        .okta(
            Method::GET,
            &format!("{PREREG}/users/{ALICE}/enrollments"),
            None,
        )
        .await;
    assert_eq!(list[0]["status"], "ACTIVE");
    assert_eq!(list[0]["profile"]["presetPinAvailable"], true);
    assert_eq!(list[0]["profile"]["serial"], shipped.serial.as_str());

    let (s, v) = sb
        .okta(
            Method::POST,
            &format!("{PREREG}/send-pin"),
            Some(json!({
            "authenticatorEnrollmentId": fid, "fulfillmentProvider": "yubico", "userId": ALICE})),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let mail = sb.mail().await;
    assert_eq!(mail.len(), 1);
    assert_eq!(
        mail[0]["to"],
        json!(["alice.anders@example.com", "alice.personal@example.net"]),
        "primary and secondary email, as the guide's FAQ says"
    );
    assert_eq!(mail[0]["subject"], "Your security key PIN");
    let pin = pin_in(mail[0]["body"].as_str().unwrap());
    assert!(pin.chars().all(|c| c.is_ascii_digit()));

    let mut key = sb.shipped_key(&shipped.shipment_id).await;
    assert_eq!(key.identity().serial.to_string(), shipped.serial);
    assert!(
        key.get_info().unwrap().force_pin_change,
        "the key demands a new PIN"
    );
    let new_pin = "73195208";
    key.change_pin(&Pin::new(pin.as_str()), &Pin::new(new_pin))
        .unwrap();
    let (s, v) = sb
        .sign_in(&mut key, "alice.anders@example.com", new_pin)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["signedIn"], true);
    assert_eq!(v["user"]["id"], ALICE);
    assert_eq!(v["methodId"], fid.as_str());
    assert_eq!(v["userVerified"], true);

    // The first sign-in closes send-pin.
    let (_, list) = sb
        .okta(
            Method::GET,
            &format!("{PREREG}/users/{ALICE}/enrollments"),
            None,
        )
        .await;
    assert_eq!(list[0]["profile"]["presetPinAvailable"], false);
}
