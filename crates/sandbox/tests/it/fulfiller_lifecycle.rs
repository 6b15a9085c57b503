//! The sandbox clock, edit/delete windows, 404 after delete, error states and purge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use std::sync::Arc;
use yubienterprise::fpr::UpdateFprShipment;
use yubienterprise::{ErrorCode, ShipmentState};

#[tokio::test]
async fn a_plain_shipment_walks_the_happy_path_one_phase_per_round() {
    let sb = start().await;
    let s = sb
        .client
        .create_shipment_exact(&exact_body("Path"))
        .await
        .unwrap();
    let id = s.shipment_id.as_str();
    assert_eq!(sb.state_of(id).await, 2);
    let round = sb.advance().await;
    assert_eq!(round["moved"][0]["from"], 2);
    assert_eq!(round["moved"][0]["to"], 3);
    assert_eq!(sb.state_of(id).await, 3);
    let round = sb.advance().await;
    let tos: Vec<u64> = round["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["to"].as_u64().unwrap())
        .collect();
    assert_eq!(tos, vec![100, 101, 102, 103]);
    let flat = sb.client.get_shipment_exact(id).await.unwrap();
    assert!(flat.is_shipped && flat.is_sent_to_fulfillment && !flat.is_delivered);
    assert!(flat.tracking_link.is_some());
    sb.advance().await;
    let flat = sb.client.get_shipment_exact(id).await.unwrap();
    assert_eq!(flat.shipment_state_id, ShipmentState::Delivered);
    assert!(flat.is_delivered && flat.delivered_date.is_some());
    // Delivered is final: a further round does nothing to it.
    assert_eq!(sb.advance().await["moved"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn moving_one_shipment_to_a_state_runs_the_steps_between() {
    let sb = start().await;
    let a = sb
        .client
        .create_shipment_exact(&exact_body("A"))
        .await
        .unwrap();
    let b = sb
        .client
        .create_shipment_exact(&exact_body("B"))
        .await
        .unwrap();
    let (s, v) = sb.move_to(a.shipment_id.as_str(), 102).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["moved"].as_array().unwrap().len(), 4);
    assert_eq!(sb.state_of(a.shipment_id.as_str()).await, 102);
    assert_eq!(
        sb.state_of(b.shipment_id.as_str()).await,
        2,
        "others untouched"
    );
    // Backwards is refused.
    let (s, v) = sb.move_to(a.shipment_id.as_str(), 3).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("invalid_transition")));
    // Errors can be set directly, with their documented message.
    let (s, _) = sb.move_to(a.shipment_id.as_str(), 106).await;
    assert_eq!(s, 200);
    let flat = sb
        .client
        .get_shipment_exact(a.shipment_id.as_str())
        .await
        .unwrap();
    assert_eq!(flat.shipment_state_id, ShipmentState::DeliveryException);
    assert!(
        flat.shipment_state_message
            .starts_with("Delivery Exception")
    );
    // A final state cannot change.
    let (s, _) = sb.move_to(a.shipment_id.as_str(), 99).await;
    assert_eq!(s, 409);
    let (s, v) = sb.move_to(b.shipment_id.as_str(), 55).await;
    assert_eq!((s, v["code"].as_str()), (409, Some("invalid_transition")));
    let (s, v) = sb
        .call(
            Method::POST,
            "/sandbox/v1/advance",
            Some(serde_json::json!({"shipment_id": b.shipment_id})),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_body")));
}

#[tokio::test]
async fn edit_and_delete_work_until_the_lock_then_409() {
    let sb = start().await;
    let s = sb.client.create_fpr_shipment(&fpr_body()).await.unwrap();
    let id = s.shipment_id.as_str();
    let mut r = fpr_body().recipient;
    r.recipient_lastname = "Lindqvist".into();
    let upd = UpdateFprShipment {
        delivery_type: Some(2),
        recipient: Some(r),
        mailing_address: None,
    };
    let after = sb.client.update_fpr_shipment(id, &upd).await.unwrap();
    assert_eq!(after.recipient.recipient_lastname, "Lindqvist");
    assert_eq!(after.delivery_type, 2);
    assert_eq!(after.mailing_address.city, "Dedham", "absent parts stay");
    // An edit is validated like a create.
    let mut bad = fpr_body().mailing_address;
    bad.city = "x".repeat(61);
    let e = sb
        .client
        .update_fpr_shipment(
            id,
            &UpdateFprShipment {
                mailing_address: Some(bad),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ValidationError));
    // Still editable after address validation (3).
    sb.advance().await;
    assert_eq!(sb.state_of(id).await, 3);
    sb.client
        .update_fpr_shipment(
            id,
            &UpdateFprShipment {
                delivery_type: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Locked (100): no edit, no delete.
    sb.move_to(id, 100).await;
    let e = sb.client.update_fpr_shipment(id, &upd).await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(409), Some(ErrorCode::NotEditable))
    );
    let e = sb.client.delete_fpr_shipment(id).await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(409), Some(ErrorCode::NotEditable))
    );
    let e = sb.client.delete_shipment_exact(id).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    let e = sb
        .client
        .update_shipment_exact(id, &exact_body("Late"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409));
}

#[tokio::test]
async fn a_deleted_shipment_answers_404_and_gives_its_key_back() {
    let sb = start().await;
    let s = sb.client.create_fpr_shipment(&fpr_body()).await.unwrap();
    let id = s.shipment_id.as_str();
    assert_eq!(
        sb.client
            .inventory()
            .await
            .unwrap()
            .organization_product_inventory[0]
            .organization_product_quantity,
        99
    );
    sb.client.delete_fpr_shipment(id).await.unwrap();
    for e in [
        sb.client.get_fpr_shipment(id).await.unwrap_err(),
        sb.client.get_shipment_exact(id).await.unwrap_err(),
        sb.client.delete_fpr_shipment(id).await.unwrap_err(),
    ] {
        assert_eq!(
            (e.status(), e.code()),
            (Some(404), Some(ErrorCode::NotFound))
        );
    }
    assert_eq!(
        sb.client
            .inventory()
            .await
            .unwrap()
            .organization_product_inventory[0]
            .organization_product_quantity,
        100
    );
    // Plain shipments too, through shipments_exact.
    let p = sb
        .client
        .create_shipment_exact(&exact_body("Gone"))
        .await
        .unwrap();
    sb.client
        .delete_shipment_exact(p.shipment_id.as_str())
        .await
        .unwrap();
    assert_eq!(
        sb.client
            .get_shipment_exact(p.shipment_id.as_str())
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
}

#[tokio::test]
async fn an_undeliverable_address_goes_to_7_and_a_corrected_one_starts_over() {
    let sb = start().await;
    let mut b = fpr_body();
    b.mailing_address.postal_code = "00000".into();
    let s = sb.client.create_fpr_shipment(&b).await.unwrap();
    let id = s.shipment_id.as_str();
    sb.advance().await;
    let got = sb.client.get_fpr_shipment(id).await.unwrap();
    assert_eq!(
        got.shipment_state.shipment_state_id,
        ShipmentState::AddressUndeliverable
    );
    assert!(
        got.shipment_state
            .shipment_state_message
            .starts_with("Address is undeliverable or could not be understood")
    );
    // 7 is editable; the fix sends it back to validation.
    let mut a = b.mailing_address.clone();
    a.postal_code = "02026".into();
    let fixed = sb
        .client
        .update_fpr_shipment(
            id,
            &UpdateFprShipment {
                mailing_address: Some(a),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        fixed.shipment_state.shipment_state_id,
        ShipmentState::Received
    );
    sb.advance().await;
    assert_eq!(sb.state_of(id).await, 3);
    // A street the seed marks undeliverable, on a plain shipment; bypass skips the check.
    let mut p = exact_body("Street");
    p.street_line1 = "1 Undeliverable Road".into();
    let p1 = sb.client.create_shipment_exact(&p).await.unwrap();
    p.address_validation_bypass = Some(true);
    let p2 = sb.client.create_shipment_exact(&p).await.unwrap();
    sb.advance().await;
    assert_eq!(sb.state_of(p1.shipment_id.as_str()).await, 7);
    assert_eq!(sb.state_of(p2.shipment_id.as_str()).await, 3);
}

#[tokio::test]
async fn a_denied_party_stops_at_the_batch_with_9() {
    let sb = start().await;
    let mut b = exact_body("Smith");
    b.recipient = "Denied Party Inc".into();
    let s = sb.client.create_shipment_exact(&b).await.unwrap();
    sb.advance().await;
    sb.advance().await;
    let got = sb
        .client
        .get_shipment_exact(s.shipment_id.as_str())
        .await
        .unwrap();
    assert_eq!(got.shipment_state_id, ShipmentState::DplMatch);
    assert_eq!(
        got.shipment_state_message,
        "Error: DPL Match: the recipient matches the denied-party list"
    );
}

#[tokio::test]
async fn without_a_key_programmer_fpr_shipments_fail_visibly_at_programming_and_requests_are_purged()
 {
    let sb = start().await;
    let s = sb.client.create_fpr_shipment(&fpr_body()).await.unwrap();
    let id = s.shipment_id.as_str();
    let dump = sb.call(Method::GET, "/sandbox/v1/state", None).await.1;
    assert!(
        dump["shipments"][0]["requests"]["pin"].is_string(),
        "held until programming"
    );
    let (s, _) = sb.move_to(id, 103).await;
    assert_eq!(s, 200);
    let got = sb.client.get_fpr_shipment(id).await.unwrap();
    assert_eq!(
        got.shipment_state.shipment_state_id,
        ShipmentState::ProcessingError
    );
    assert!(
        got.shipment_state
            .shipment_state_message
            .contains("programming failed")
    );
    assert!(got.product_data().is_none());
    let dump = sb.call(Method::GET, "/sandbox/v1/state", None).await.1;
    assert!(dump["shipments"][0]["requests"].is_null(), "purged: {dump}");
    let (s, _) = sb
        .call(
            Method::GET,
            &format!("/sandbox/v1/shipments/{id}/key"),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

/// A stand-in programmer (no envelope, no key) to exercise the product_data plumbing.
struct FakeProgrammer;

impl sandbox::fulfiller::Programmer for FakeProgrammer {
    fn program(
        &self,
        order: &sandbox::fulfiller::Order<'_>,
    ) -> Result<sandbox::fulfiller::Programmed, sandbox::fulfiller::ProgramError> {
        Ok(sandbox::fulfiller::Programmed {
            product_data: yubienterprise::fpr::ProductData {
                serial_number: order.serial.to_string(),
                firmware_version: order.firmware_version.to_owned(),
                fido_pin_response: format!("pin-response-for-{}", order.pin_request.len()),
                fido_credential_responses: order
                    .credential_requests
                    .iter()
                    .map(|_| "cred-response".to_owned())
                    .collect(),
            },
            key_state: "{\"key\":\"state\"}".to_owned(),
        })
    }
}

#[tokio::test]
async fn product_data_appears_at_103_and_the_parcel_can_be_fetched() {
    let mut cfg = sandbox::Config::for_tests();
    cfg.programmer = Arc::new(FakeProgrammer);
    let sb = start_with(cfg).await;
    let s = sb.client.create_fpr_shipment(&fpr_body()).await.unwrap();
    let id = s.shipment_id.as_str();
    sb.move_to(id, 102).await;
    assert!(
        sb.client
            .get_fpr_shipment(id)
            .await
            .unwrap()
            .product_data()
            .is_none(),
        "not before 103"
    );
    let (s, _) = sb
        .call(
            Method::GET,
            &format!("/sandbox/v1/shipments/{id}/key"),
            None,
        )
        .await;
    assert_eq!(s, 404, "not shipped yet");
    sb.move_to(id, 103).await;
    let got = sb.client.get_fpr_shipment(id).await.unwrap();
    let pd = got.product_data().unwrap();
    assert_eq!(pd.serial_number, "31636842");
    assert_eq!(pd.firmware_version, "5.7.1");
    assert_eq!(pd.fido_credential_responses.len(), 1);
    let (s, key) = sb
        .call(
            Method::GET,
            &format!("/sandbox/v1/shipments/{id}/key"),
            None,
        )
        .await;
    assert_eq!((s, key["key"].as_str()), (200, Some("state")));
    sb.move_to(id, 104).await;
    assert!(
        sb.client
            .get_fpr_shipment(id)
            .await
            .unwrap()
            .product_data()
            .is_some(),
        "still at 104"
    );
    let dump = sb.call(Method::GET, "/sandbox/v1/state", None).await.1;
    assert!(dump["shipments"][0]["requests"].is_null());
    assert!(
        !dump.to_string().contains("\"key\":\"state\""),
        "the parcel is not in the dump"
    );
}

#[tokio::test]
async fn auto_fulfil_moves_shipments_without_being_asked() {
    let mut cfg = sandbox::Config::for_tests();
    cfg.auto_fulfil = Some(std::time::Duration::from_millis(50));
    let sb = start_with(cfg).await;
    let s = sb
        .client
        .create_shipment_exact(&exact_body("Auto"))
        .await
        .unwrap();
    let id = s.shipment_id.as_str();
    for _ in 0..100 {
        if sb.state_of(id).await == 104 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("auto-fulfil did not deliver the shipment");
}

#[tokio::test]
async fn editing_a_plain_shipment_re_reserves_its_items() {
    let sb = start().await;
    let left = |inv: yubienterprise::org::Inventory| {
        inv.organization_product_inventory
            .iter()
            .find(|b| b.inventory_product_id == 15)
            .unwrap()
            .organization_product_quantity
    };
    let s = sb
        .client
        .create_shipment_exact(&exact_body("Edit"))
        .await
        .unwrap();
    let id = s.shipment_id.as_str();
    assert_eq!(left(sb.client.inventory().await.unwrap()), 15);
    let mut b = exact_body("Edited");
    b.shipment_items[0].shipment_product_quantity = 17;
    let e = sb.client.update_shipment_exact(id, &b).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InventoryUnavailable));
    assert_eq!(
        left(sb.client.inventory().await.unwrap()),
        15,
        "unchanged after a refused edit"
    );
    assert_eq!(
        sb.client
            .get_shipment_exact(id)
            .await
            .unwrap()
            .recipient_lastname,
        "Edit"
    );
    b.shipment_items[0].shipment_product_quantity = 16;
    b.shipment_type = Some(yubienterprise::ShipmentType::Manual);
    let after = sb.client.update_shipment_exact(id, &b).await.unwrap();
    assert_eq!(after.recipient_lastname, "Edited");
    assert_eq!(
        after.shipment_type,
        Some(yubienterprise::ShipmentType::Manual)
    );
    assert_eq!(after.shipment_items[0].shipment_product_quantity, 16);
    assert_eq!(left(sb.client.inventory().await.unwrap()), 0);
}
