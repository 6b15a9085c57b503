//! The whole chain with the real programmer (envelope + `VirtualYubiKey`) and a requester
//! built only from HTTP and independent tools (`interop/sandbox_e2e.py`: urllib, joserfc,
//! python-fido2): sealed requests in, a programmed key, signed responses out, attestation
//! verified by python-fido2, the PIN opens the shipped key, nothing secret left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use authenticator::{KeyProgrammer, VirtualYubiKey};
use common::*;
use reqwest::Method;
use serde_json::json;

fn input(sb: &Sandbox, pin: serde_json::Value) -> serde_json::Value {
    json!({
        "base_url": sb.url, "token": TOKEN,
        "origin": "https://login.microsoft.com", "rp_id": "login.microsoft.com",
        "pin": pin, "min_pin_length": 6, "force_pin_change": true,
        "product_id": 1, "inventory_product_id": 1, "customization_id": CID,
        "verify_attestation": true,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_requests_become_a_programmed_key_whose_responses_verify_independently() {
    let sb = start().await;
    let inp = input(&sb, json!({"type": "generate", "length": 8}));
    let out = tokio::task::spawn_blocking(move || testkit::run_python("sandbox_e2e.py", &inp))
        .await
        .unwrap();
    let id = out["shipment_id"].as_str().unwrap();
    assert_eq!(out["state"], 103);
    assert_eq!(
        out["attestation_verified"], "packed",
        "python-fido2 verified the attestation"
    );
    assert_eq!(
        out["aaguid"], "a25342c0-3cdc-4414-8e46-f4807fca511c",
        "YubiKey 5 NFC 5.7"
    );
    assert_eq!(out["firmware_version"], "5.7.1");
    let pin = out["pin"].as_str().unwrap().to_owned();
    assert_eq!(pin.len(), 8);
    assert!(!sandbox::fulfiller::fulfil::is_trivial_pin(&pin));

    // The parcel: the shipped key, as the recipient holds it.
    let (s, parcel) = sb
        .call(
            Method::GET,
            &format!("/sandbox/v1/shipments/{id}/key"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let mut key = VirtualYubiKey::from_json(&parcel.to_string()).unwrap();
    assert_eq!(
        key.identity().serial.to_string(),
        out["serial"].as_str().unwrap()
    );
    let summary = key.summary();
    assert_eq!(summary.credential_count(), 1);
    assert!(summary.credentials.contains_key("login.microsoft.com"));
    assert!(summary.pin_set);
    assert!(
        summary.force_pin_change,
        "forced change pending, as requested"
    );
    assert_eq!(summary.min_pin_length, 6);
    assert_eq!(summary.pin_failures_since_insertion, 0);
    let info = key.get_info().unwrap();
    assert!(info.force_pin_change);
    // The PIN from the response opens it (and the forced change can be made with it);
    // a wrong one does not.
    let wrong = authenticator::Pin::new("00000001");
    assert!(
        key.change_pin(&wrong, &authenticator::Pin::new("27182818"))
            .is_err()
    );
    key.change_pin(
        &authenticator::Pin::new(pin.as_str()),
        &authenticator::Pin::new("27182818"),
    )
    .unwrap();

    // Purge: nothing of the requests or the PIN in what the sandbox keeps.
    let dump = sb.call(Method::GET, "/sandbox/v1/state", None).await.1;
    let text = dump.to_string();
    assert!(dump["shipments"][0]["requests"].is_null());
    assert!(!text.contains(&pin));
    assert!(
        !text.contains("login.microsoft.com"),
        "no request plaintext: {text}"
    );
    // 104 keeps the responses available.
    sb.move_to(id, 104).await;
    assert!(
        sb.client
            .get_fpr_shipment(id)
            .await
            .unwrap()
            .product_data()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_refusing_the_options_errors_the_shipment() {
    let sb = start().await;
    // The origin does not match the RP id: a platform (and the virtual key's client)
    // refuses, so the fulfiller must not ship.
    let mut inp = input(&sb, json!({"type": "generate", "length": 6}));
    inp["origin"] = json!("https://evil.example");
    inp["verify_attestation"] = json!(false);
    let base = sb.url.clone();
    let result = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| testkit::run_python("sandbox_e2e.py", &inp))
    })
    .await
    .unwrap();
    assert!(result.is_err(), "the script must fail: no product data");
    let page = sb
        .client
        .list_shipments_exact(&Default::default())
        .await
        .unwrap();
    let s = &page.shipments[0];
    assert_eq!(s.shipment_state_id.id(), 8, "{base}");
    assert!(
        s.shipment_state_message.contains("credential request 0"),
        "{}",
        s.shipment_state_message
    );
}
