//! Auth, key sets, catalogue, create and validation over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use yubienterprise::{ErrorCode, ShipmentState, ShipmentType};

type Edit = fn(&mut yubienterprise::fpr::CreateFprShipment);

#[tokio::test]
async fn api_calls_without_or_with_a_wrong_token_get_401() {
    let sb = start().await;
    let r = sb
        .http
        .get(format!("{}/v1/products", sb.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
    for path in [
        "/v1/fpr/shipments/U89bvfKKCtQfhnqaFBrAZW",
        "/v1/shipments_exact",
        "/v1/inventory",
        "/sandbox/v1/state",
    ] {
        let r = sb
            .http
            .get(format!("{}{path}", sb.url))
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = sb
        .http
        .post(format!("{}/v1/fpr/shipments", sb.url))
        .json(&fpr_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        sb.client
            .inventory()
            .await
            .unwrap()
            .organization_product_inventory[0]
            .organization_product_quantity,
        100
    );
}

#[tokio::test]
async fn key_sets_are_public_p384_with_the_right_use_and_rotate() {
    let sb = start().await;
    for (name, want_use) in [
        ("yubico-transport-keys.jwks", "enc"),
        ("yubico-sign.jwks", "sig"),
    ] {
        let v: serde_json::Value = sb
            .http
            .get(format!("{}/.well-known/{name}", sb.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys = v["keys"].as_array().unwrap();
        assert!(keys.len() >= 2, "several keys: {v}");
        for k in keys {
            assert_eq!(k["kty"], "EC");
            assert_eq!(k["crv"], "P-384");
            assert_eq!(k["use"], want_use);
            assert!(k.get("d").is_none(), "no private part");
        }
    }
    let before = sb.client.transport_keys().await.unwrap();
    let (s, rot) = sb
        .call(
            Method::POST,
            "/sandbox/v1/keys/rotate",
            Some(json!({"use": "enc"})),
        )
        .await;
    assert_eq!(s, 200, "{rot}");
    let after = sb.client.transport_keys().await.unwrap();
    let added = rot["added"].as_str().unwrap();
    let retired = rot["retired"].as_str().unwrap();
    assert!(after.get(added).is_some());
    assert!(after.get(retired).is_none());
    assert!(before.get(retired).is_some());
    assert_eq!(after.len(), before.len());
    let (s, _) = sb
        .call(
            Method::POST,
            "/sandbox/v1/keys/rotate",
            Some(json!({"use": "sig"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = sb
        .call(
            Method::POST,
            "/sandbox/v1/keys/rotate",
            Some(json!({"use": "rsa"})),
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_body")));
}

#[tokio::test]
async fn catalogue_lists_the_seeded_products_and_buckets() {
    let sb = start().await;
    let products = sb.client.products().await.unwrap();
    let names: Vec<_> = products
        .iter()
        .map(|p| (p.product_id, p.product_name.as_str()))
        .collect();
    assert!(names.contains(&(1, "YubiKey 5 NFC")));
    assert!(names.contains(&(3, "YubiKey 5C")));
    assert!(names.contains(&(11, "YubiKey C Nano FIPS")));
    let inv = sb.client.inventory().await.unwrap();
    let b15 = inv
        .organization_product_inventory
        .iter()
        .find(|b| b.inventory_product_id == 15)
        .unwrap();
    assert_eq!(
        (
            b15.product_id,
            b15.product_name.as_str(),
            b15.organization_product_quantity
        ),
        (3, "YubiKey 5C", 16)
    );
    let (s, p) = sb.call(Method::GET, "/v1/products/1", None).await;
    assert_eq!(
        (s, p["product_name"].as_str()),
        (200, Some("YubiKey 5 NFC"))
    );
    let (s, _) = sb.call(Method::GET, "/v1/products/999", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn fpr_create_returns_a_22_char_id_nested_state_2_and_reserves_inventory() {
    let sb = start().await;
    let s = sb.client.create_fpr_shipment(&fpr_body()).await.unwrap();
    assert_eq!(s.shipment_id.as_str().len(), 22);
    assert_eq!(s.shipment_state.shipment_state_id, ShipmentState::Received);
    assert_eq!(s.shipment_type, Some(ShipmentType::AutoFidoPreReg));
    assert!(s.product_data().is_none());
    let raw = sb
        .call(
            Method::GET,
            &format!("/v1/fpr/shipments/{}", s.shipment_id),
            None,
        )
        .await
        .1;
    assert_eq!(raw["shipment_state"]["shipment_state_id"], 2);
    assert!(
        raw["shipment_items"][0]
            .get("product_customizations")
            .is_none(),
        "requests are not echoed"
    );
    let flat = sb
        .client
        .get_shipment_exact(s.shipment_id.as_str())
        .await
        .unwrap();
    assert_eq!(flat.shipment_type, Some(ShipmentType::AutoFidoPreReg));
    assert_eq!(flat.recipient_lastname, "Lindberg");
    let inv = sb.client.inventory().await.unwrap();
    assert_eq!(
        inv.organization_product_inventory[0].organization_product_quantity,
        99
    );
}

#[tokio::test]
async fn every_validation_rule_is_enforced_over_http_with_the_documented_message() {
    let sb = start().await;
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            |b| b.recipient.recipient_firstname = "x".repeat(16),
            "recipient_firstname",
            "Input for First Name exceeded limit of 15 characters",
        ),
        (
            |b| b.recipient.recipient_lastname = "x".repeat(21),
            "recipient_lastname",
            "Input for Last Name exceeded limit of 20 characters",
        ),
        (
            |b| b.recipient.recipient_company = "x".repeat(21),
            "recipient_company",
            "Input for Company exceeded limit of 20 characters",
        ),
        (
            |b| b.recipient.recipient_company = String::new(),
            "recipient_company",
            "Input for Company is required",
        ),
        (
            |b| b.mailing_address.street_line1 = "x".repeat(61),
            "street_line1",
            "Input for Address exceeded limit of 60 characters",
        ),
        (
            |b| b.mailing_address.street_line2 = "x".repeat(61),
            "street_line2",
            "Input for Apt or Unit Number exceeded limit of 60 characters",
        ),
        (
            |b| {
                b.mailing_address.street_line1 = "x".repeat(60);
                b.mailing_address.street_line2 = "x".repeat(60);
                b.mailing_address.street_line3 = "x".into()
            },
            "street_line1",
            "Input for Street Address exceeded combined limit of 120 characters across all street lines",
        ),
        (
            |b| b.mailing_address.city = "x".repeat(61),
            "city",
            "Input for City exceeded limit of 60 characters",
        ),
        (
            |b| {
                b.mailing_address.country_code_2 = "FR".into();
                b.mailing_address.region = "x".repeat(51)
            },
            "region",
            "Input for Region exceeded limit of 50 characters",
        ),
        (
            |b| b.mailing_address.region = "Massachusetts".into(),
            "region",
            "Input for Region must be a 2-letter state or province code for US and CA",
        ),
        (
            |b| b.mailing_address.region = String::new(),
            "region",
            "Input for Region is required",
        ),
        (
            |b| b.recipient.recipient_email = format!("{}@example.com", "x".repeat(69)),
            "recipient_email",
            "Input for Email exceeded limit of 80 characters",
        ),
        (
            |b| b.recipient.recipient_telephone = "1".repeat(41),
            "recipient_telephone",
            "Input for Phone Number exceeded limit of 40 characters",
        ),
        (
            |b| b.recipient.recipient_telephone = "555 CALL NOW".into(),
            "recipient_telephone",
            "Input for Phone Number may only contain the characters 0-9+-( )",
        ),
        (
            |b| b.mailing_address.country_code_2 = "USA".into(),
            "country_code_2",
            "Input for Country Code must be a 2-letter ISO country code",
        ),
        (
            |b| b.mailing_address.postal_code = String::new(),
            "postal_code",
            "Input for Postal Code is required",
        ),
        (
            |b| b.delivery_type = Some(3),
            "delivery_type",
            "Input for Delivery Type must be 1 (standard) or 2 (expedited)",
        ),
        (
            |b| b.shipment_items[0].product_quantity = 2,
            "product_quantity",
            "Input for Quantity must be 1: one YubiKey per FIDO Pre-reg shipment",
        ),
        (
            |b| {
                b.shipment_items[0].product_customizations[0]
                    .fido_credential_requests
                    .clear()
            },
            "fido_credential_requests",
            "Input for Credential Requests is required",
        ),
    ];
    for (edit, field, message) in cases {
        let mut b = fpr_body();
        edit(&mut b);
        let e = sb.client.create_fpr_shipment(&b).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{message}");
        let yubienterprise::ClientError::Api { body, .. } = e else {
            unreachable!()
        };
        assert_eq!(body.code, ErrorCode::ValidationError);
        assert_eq!(body.message, message);
        assert_eq!(body.field.as_deref(), Some(field));
    }
    // India: 255 characters allowed.
    let mut b = fpr_body();
    b.mailing_address.country_code_2 = "IN".into();
    b.recipient.recipient_telephone = "9".repeat(255);
    sb.client.create_fpr_shipment(&b).await.unwrap();
    // Nothing refused was stored.
    let page = sb
        .client
        .list_shipments_exact(&Default::default())
        .await
        .unwrap();
    assert_eq!(page.total_count, 1);
}

#[tokio::test]
async fn organisation_references_are_checked() {
    let sb = start().await;
    let cases: Vec<(Edit, ErrorCode)> = vec![
        (
            |b| b.shipment_items[0].customization_id = "C00000".into(),
            ErrorCode::UnknownCustomization,
        ),
        (
            |b| b.shipment_items[0].product_id = 99,
            ErrorCode::UnknownProduct,
        ),
        (
            |b| b.shipment_items[0].inventory_product_id = 15,
            ErrorCode::UnknownProduct,
        ),
        (
            |b| {
                b.shipment_items[0].product_id = 3;
                b.shipment_items[0].inventory_product_id = 15
            },
            ErrorCode::UnknownProduct,
        ),
        (
            |b| {
                b.shipment_items[0].product_id = 2;
                b.shipment_items[0].inventory_product_id = 2
            },
            ErrorCode::UnknownProduct,
        ),
    ];
    for (edit, code) in cases {
        let mut b = fpr_body();
        edit(&mut b);
        let e = sb.client.create_fpr_shipment(&b).await.unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(400), Some(code)), "{e}");
    }
    // Inventory: bucket 2 (YubiKey 5 Nano) is empty.
    let mut b = exact_body("Empty");
    b.shipment_items[0].product_id = 2;
    b.shipment_items[0].inventory_product_id = 2;
    let e = sb.client.create_shipment_exact(&b).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InventoryUnavailable));
    assert!(e.to_string().contains("has 0 left; 1 requested"), "{e}");
    // Bucket 15 holds 16: 17 is too many, 16 is fine.
    let mut b = exact_body("Many");
    b.shipment_items[0].shipment_product_quantity = 17;
    assert_eq!(
        sb.client
            .create_shipment_exact(&b)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::InventoryUnavailable)
    );
    b.shipment_items[0].shipment_product_quantity = 16;
    sb.client.create_shipment_exact(&b).await.unwrap();
}

#[tokio::test]
async fn bad_bodies_and_ids_get_documented_errors() {
    let sb = start().await;
    let r = sb
        .http
        .post(format!("{}/v1/fpr/shipments", sb.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], "invalid_body");
    let (s, v) = sb
        .call(Method::GET, "/v1/fpr/shipments/not-an-id", None)
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("invalid_shipment_id")));
    let (s, v) = sb
        .call(
            Method::GET,
            "/v1/fpr/shipments/U89bvfKKCtQfhnqaFBrAZW",
            None,
        )
        .await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
    // A plain shipment is not a FIDO Pre-reg shipment.
    let plain = sb
        .client
        .create_shipment_exact(&exact_body("Plain"))
        .await
        .unwrap();
    let (s, _) = sb
        .call(
            Method::GET,
            &format!("/v1/fpr/shipments/{}", plain.shipment_id),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = sb.call(Method::GET, "/v1/nothing-here", None).await;
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
    // AUTO FIDO PRE-REG cannot be created through shipments_exact.
    let mut b = exact_body("Sneaky");
    b.shipment_type = Some(ShipmentType::AutoFidoPreReg);
    assert_eq!(
        sb.client
            .create_shipment_exact(&b)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::ValidationError)
    );
}

#[tokio::test]
async fn validate_address_checks_rules_and_the_undeliverable_list() {
    let sb = start().await;
    let mut a = fpr_body().mailing_address;
    sb.client.validate_address(&a).await.unwrap();
    a.postal_code = "00000".into();
    let e = sb.client.validate_address(&a).await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(400), Some(ErrorCode::AddressUndeliverable))
    );
    a.postal_code = "02026".into();
    a.region = "Massachusetts".into();
    let e = sb.client.validate_address(&a).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ValidationError));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_orders_never_take_more_keys_than_the_bucket_holds() {
    let sb = std::sync::Arc::new(start().await);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let sb = sb.clone();
        tasks.push(tokio::spawn(async move {
            sb.client
                .create_shipment_exact(&exact_body(&format!("Race{i}")))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::InventoryUnavailable)),
        }
    }
    assert_eq!(ok, 16);
    let inv = sb.client.inventory().await.unwrap();
    let b15 = inv
        .organization_product_inventory
        .iter()
        .find(|b| b.inventory_product_id == 15)
        .unwrap();
    assert_eq!(b15.organization_product_quantity, 0);
}
