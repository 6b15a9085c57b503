//! The wire types against the JSON examples of `shared/spec/yubienterprise.md` (copied
//! into `fixtures/`), so a client and its sandbox cannot drift together.
#![allow(clippy::unwrap_used)]

use yubienterprise::exact::{CreateShipmentExact, ShipmentExact};
use yubienterprise::fpr::{CreateFprShipment, FprShipment};
use yubienterprise::org::Inventory;
use yubienterprise::{ApiError, ErrorCode, ShipmentState, ShipmentType};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn documented_flat_create_body_parses() {
    let b: CreateShipmentExact =
        serde_json::from_str(&fixture("shipments_exact_create.json")).unwrap();
    assert_eq!(b.country_code_2, "US");
    assert_eq!(b.recipient, "Example Inc.");
    assert_eq!(b.shipment_items[0].inventory_product_id, 15);
    assert_eq!(b.shipment_items[0].shipment_product_quantity, 16);
    assert_eq!(b.address_validation_bypass, Some(true));
    yubienterprise::validate::shipment_exact(&b).unwrap();
}

#[test]
fn documented_flat_read_shape_parses_with_state_and_type() {
    let s: ShipmentExact = serde_json::from_str(&fixture("shipments_exact_read.json")).unwrap();
    assert_eq!(s.shipment_id.as_str(), "U89bvfKKCtQfhnqaFBrAZW");
    assert_eq!(s.shipment_items[0].product_name, "YubiKey 5C");
    assert_eq!(s.shipment_state_id, ShipmentState::Received);
    assert_eq!(s.shipment_type, Some(ShipmentType::Automated));
    let back = serde_json::to_value(&s).unwrap();
    assert_eq!(back["shipment_state_id"], 2);
    assert_eq!(back["shipment_type"], "AUTOMATED");
}

#[test]
fn documented_fpr_create_body_parses_nested() {
    let b: CreateFprShipment = serde_json::from_str(&fixture("fpr_create.json")).unwrap();
    assert_eq!(b.delivery_type, Some(1));
    assert_eq!(b.mailing_address.country_code_2, "US");
    let item = &b.shipment_items[0];
    assert_eq!(item.product_quantity, 1);
    assert_eq!(item.customization_id, "<CID>");
    assert_eq!(
        item.product_customizations[0]
            .fido_credential_requests
            .len(),
        1
    );
}

#[test]
fn fpr_read_shape_exposes_product_data_the_way_the_spoke_script_reads_it() {
    let s: FprShipment = serde_json::from_str(&fixture("fpr_read_shipped.json")).unwrap();
    assert_eq!(s.shipment_state.shipment_state_id, ShipmentState::Shipped);
    let pd = s.product_data().unwrap();
    assert_eq!(pd.serial_number, "31636842");
    assert_eq!(pd.firmware_version, "5.7.1");
    assert_eq!(pd.fido_credential_responses.len(), 1);
}

#[test]
fn inventory_shape_parses() {
    let i: Inventory = serde_json::from_str(&fixture("inventory.json")).unwrap();
    assert_eq!(
        i.organization_product_inventory[0].organization_product_quantity,
        16
    );
}

#[test]
fn ids_sent_as_strings_are_accepted() {
    let b: CreateFprShipment =
        serde_json::from_str(&fixture("okta_style_numbers_as_strings.json")).unwrap();
    assert_eq!(b.shipment_items[0].product_id, 1);
    assert_eq!(b.delivery_type, None);
    yubienterprise::validate::fpr_shipment(&b).unwrap();
}

#[test]
fn shipment_type_strings_match_the_console() {
    for (t, s) in [
        (ShipmentType::Manual, "\"MANUAL\""),
        (ShipmentType::Automated, "\"AUTOMATED\""),
        (ShipmentType::AutoFidoPreReg, "\"AUTO FIDO PRE-REG\""),
    ] {
        assert_eq!(serde_json::to_string(&t).unwrap(), s);
    }
    assert_eq!(
        ShipmentType::parse("Auto FIDO Pre-reg"),
        Some(ShipmentType::AutoFidoPreReg)
    );
}

#[test]
fn error_body_has_stable_code_and_unknown_codes_survive() {
    let e: ApiError = serde_json::from_str(
        r#"{"code":"validation_error","message":"Input for Last Name exceeded limit of 20 characters","field":"recipient_lastname"}"#,
    )
    .unwrap();
    assert_eq!(e.code, ErrorCode::ValidationError);
    assert_eq!(e.status(), 400);
    let e: ApiError = serde_json::from_str(r#"{"code":"brand_new","message":"x"}"#).unwrap();
    assert_eq!(e.code, ErrorCode::Other);
}

#[test]
fn a_minimal_fpr_read_shape_parses() {
    // Public code reads only shipment_state and shipment_items[0].product_data[0]; the
    // rest of Yubico's response is not documented, so absent members default.
    let s: FprShipment = serde_json::from_str(
        r#"{"shipment_id":"U89bvfKKCtQfhnqaFBrAZW","shipment_state":{"shipment_state_id":101},
            "shipment_items":[{}],"something_new":true}"#,
    )
    .unwrap();
    assert_eq!(
        s.shipment_state.shipment_state_id,
        ShipmentState::SentToFulfilment
    );
    assert_eq!(s.delivery_type, 1);
    assert!(s.product_data().is_none());
}
