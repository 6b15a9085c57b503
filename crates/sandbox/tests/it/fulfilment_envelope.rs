//! Fulfilment through the envelope, with a requester built from independent tools
//! (`interop/sandbox_e2e.py`: urllib + joserfc) and, for now, a stand-in key factory:
//! the `VirtualYubiKey` adapter replaces it when crate `authenticator` lands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use envelope::{KeyUse, PinChoice, PinRequest, PrivateJwk, Request};
use reqwest::Method;
use sandbox::fulfiller::{EnvelopeProgrammer, KeyFactory, KeySpec, MadeKey, ProgramError};
use serde_json::json;
use std::sync::Arc;

/// Records what it was asked to make, as a key state file. Not a key.
struct StandInKeys;

impl KeyFactory for StandInKeys {
    fn make_key(&self, spec: &KeySpec<'_>) -> Result<MadeKey, ProgramError> {
        let credentials = spec
            .credentials
            .iter()
            .map(|c| {
                json!({
                    "id": "c3RhbmQtaW4", "rawId": "c3RhbmQtaW4", "type": "public-key",
                    "response": {"clientDataJSON": "", "attestationObject": ""},
                    "stand_in_rp": c.public_key["rp"]["id"], "stand_in_origin": c.origin,
                })
            })
            .collect();
        let key_state = json!({
            "model": spec.product.product_name,
            "serial": spec.serial,
            "firmware": spec.firmware_version,
            "pin": spec.pin.map(|p| p.expose().to_owned()),
            "min_pin_length": spec.min_pin_length,
            "force_pin_change": spec.force_pin_change,
            "credentials": spec.credentials.len(),
        });
        Ok(MadeKey {
            aaguid: "a25342c0-3cdc-4414-8e46-f4807fca511c".to_owned(),
            credentials,
            key_state: key_state.to_string(),
        })
    }
}

async fn start_fulfilling() -> Sandbox {
    let mut cfg = sandbox::Config::for_tests();
    cfg.programmer = Arc::new(EnvelopeProgrammer::new(StandInKeys));
    start_with(cfg).await
}

#[tokio::test(flavor = "multi_thread")]
async fn joserfc_requests_are_opened_and_signed_responses_open_with_joserfc() {
    let sb = start_fulfilling().await;
    let input = e2e_input(
        &sb,
        "login.example",
        json!({"type": "generate", "length": 8}),
        false,
    );
    let out = tokio::task::spawn_blocking(move || testkit::run_python("sandbox_e2e.py", &input))
        .await
        .unwrap();
    let id = out["shipment_id"].as_str().unwrap();
    assert_eq!(out["state"], 103);
    assert_eq!(out["serial"], "31636842");
    assert_eq!(out["force_pin_change"], true);
    let pin = out["pin"].as_str().unwrap().to_owned();
    assert_eq!(pin.len(), 8);
    assert!(pin.bytes().all(|b| b.is_ascii_digit()));
    assert!(!sandbox::fulfiller::fulfil::is_trivial_pin(&pin));
    assert_eq!(
        out["credential"]["stand_in_origin"],
        "https://login.example"
    );
    assert_eq!(out["credential"]["stand_in_rp"], "login.example");

    // The shipped key got the PIN the response carries, and the policy.
    let (s, key) = sb
        .call(
            Method::GET,
            &format!("/sandbox/v1/shipments/{id}/key"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(key["pin"].as_str().unwrap(), pin);
    assert_eq!(key["min_pin_length"], 6);
    assert_eq!(key["force_pin_change"], true);
    assert_eq!(key["model"], "YubiKey 5 NFC");

    // Purge: the sandbox keeps neither the requests nor the PIN.
    let dump = sb.call(Method::GET, "/sandbox/v1/state", None).await.1;
    assert!(dump["shipments"][0]["requests"].is_null(), "{dump}");
    assert!(
        !dump.to_string().contains(&pin),
        "the PIN is not in the sandbox state"
    );
    // One key left the bucket.
    let inv = sb.client.inventory().await.unwrap();
    assert_eq!(
        inv.organization_product_inventory[0].organization_product_quantity,
        99
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_static_pin_is_set_as_requested() {
    let sb = start_fulfilling().await;
    let input = e2e_input(
        &sb,
        "login.example",
        json!({"type": "static", "value": "48291734"}),
        false,
    );
    let out = tokio::task::spawn_blocking(move || testkit::run_python("sandbox_e2e.py", &input))
        .await
        .unwrap();
    assert_eq!(out["pin"], "48291734");
}

fn pin_request_jwe(transport: &envelope::PublicJwk, choice: PinChoice, min: u8) -> String {
    let rk = PrivateJwk::generate("rk-1", KeyUse::Enc).unwrap();
    envelope::seal_request(
        &Request::Pin(PinRequest {
            response_key: rk.public().clone(),
            pin: choice,
            min_pin_length: min,
            force_pin_change: false,
        }),
        transport,
    )
    .unwrap()
}

fn credential_request_jwe(transport: &envelope::PublicJwk) -> String {
    let rk = PrivateJwk::generate("rk-2", KeyUse::Enc).unwrap();
    envelope::seal_request(
        &Request::Credential(envelope::CredentialRequest {
            response_key: rk.public().clone(),
            origin: "https://login.example".to_owned(),
            public_key: json!({"rp": {"id": "login.example"}, "challenge": "abc"}),
        }),
        transport,
    )
    .unwrap()
}

async fn order_with(sb: &Sandbox, pin_jwe: String, cred_jwe: String) -> (String, u16, String) {
    let mut b = fpr_body();
    b.shipment_items[0].product_customizations[0].fido_pin_request = pin_jwe;
    b.shipment_items[0].product_customizations[0].fido_credential_requests = vec![cred_jwe];
    let s = sb.client.create_fpr_shipment(&b).await.unwrap();
    let id = s.shipment_id.to_string();
    sb.move_to(&id, 103).await;
    let got = sb.client.get_fpr_shipment(&id).await.unwrap();
    (
        id,
        got.shipment_state.shipment_state_id.id(),
        got.shipment_state.shipment_state_message,
    )
}

#[tokio::test]
async fn any_envelope_failure_refuses_the_order_with_state_8() {
    let sb = start_fulfilling().await;
    let transport = sb.client.transport_keys().await.unwrap().keys()[0].clone();
    let good_pin = pin_request_jwe(&transport, PinChoice::Generate { length: 6 }, 6);
    let stranger = PrivateJwk::generate("not-yubico", KeyUse::Enc).unwrap();
    let cases = [
        (
            "garbage",
            good_pin.clone(),
            "not.a.jwe.at.all".to_owned(),
            "credential request 0 could not be opened",
        ),
        (
            "unknown kid",
            pin_request_jwe(stranger.public(), PinChoice::Generate { length: 6 }, 6),
            credential_request_jwe(&transport),
            "the PIN request could not be opened",
        ),
        (
            "PIN request in the credential slot",
            good_pin.clone(),
            good_pin.clone(),
            "credential request 0 is a PIN request",
        ),
        (
            "generated PIN shorter than the minimum",
            pin_request_jwe(&transport, PinChoice::Generate { length: 4 }, 6),
            credential_request_jwe(&transport),
            "minimum PIN length of 6",
        ),
        (
            "static PIN shorter than the minimum",
            pin_request_jwe(
                &transport,
                PinChoice::Static {
                    value: envelope::Pin::new("4829"),
                },
                6,
            ),
            credential_request_jwe(&transport),
            "shorter than the minimum PIN length of 6",
        ),
    ];
    for (what, pin, cred, expect) in cases {
        let (id, state, message) = order_with(&sb, pin, cred).await;
        assert_eq!(state, 8, "{what}");
        assert!(message.contains(expect), "{what}: {message}");
        let (s, _) = sb
            .call(
                Method::GET,
                &format!("/sandbox/v1/shipments/{id}/key"),
                None,
            )
            .await;
        assert_eq!(s, 404, "{what}: no key shipped");
    }
    let dump = sb.call(Method::GET, "/sandbox/v1/state", None).await.1;
    for s in dump["shipments"].as_array().unwrap() {
        assert!(s["requests"].is_null(), "refused orders are purged too");
    }
}

#[tokio::test]
async fn a_request_sealed_before_a_transport_rotation_still_opens() {
    let sb = start_fulfilling().await;
    let old = sb.client.transport_keys().await.unwrap().keys()[0].clone();
    let pin = pin_request_jwe(&old, PinChoice::Generate { length: 6 }, 6);
    // Rotate until the old key is no longer published.
    for _ in 0..2 {
        sb.call(
            Method::POST,
            "/sandbox/v1/keys/rotate",
            Some(json!({"use": "enc"})),
        )
        .await;
    }
    assert!(
        sb.client
            .transport_keys()
            .await
            .unwrap()
            .get(old.kid())
            .is_none()
    );
    // The credential request is still the wrong kind, so the order stops at the
    // credential step: the PIN request (old key) was opened.
    let (_, state, message) = order_with(&sb, pin.clone(), pin).await;
    assert_eq!(state, 8);
    assert!(
        message.contains("credential request 0 is a PIN request"),
        "{message}"
    );
}
