//! Every documented field rule, with its message.
#![allow(clippy::unwrap_used)]

use yubienterprise::fpr::{
    CreateFprShipment, MailingAddress, ProductCustomization, Recipient, ShipmentItemRequest,
};
use yubienterprise::validate::{self, Field};

type Edit = Box<dyn Fn(&mut CreateFprShipment)>;

fn good() -> CreateFprShipment {
    CreateFprShipment {
        delivery_type: Some(1),
        recipient: Recipient {
            recipient_company: "Example Inc.".into(),
            recipient_email: "jan.lindberg@example.com".into(),
            recipient_firstname: "Jan".into(),
            recipient_lastname: "Lindberg".into(),
            recipient_telephone: "+1 (555) 555-5555".into(),
        },
        mailing_address: MailingAddress {
            street_line1: "7788 Foxrun Street".into(),
            street_line2: "Apt 4".into(),
            street_line3: String::new(),
            city: "Dedham".into(),
            region: "MA".into(),
            postal_code: "02026".into(),
            country_code_2: "US".into(),
        },
        shipment_items: vec![ShipmentItemRequest {
            product_id: 1,
            inventory_product_id: 1,
            product_quantity: 1,
            customization_id: "C19881".into(),
            product_customizations: vec![ProductCustomization {
                fido_pin_request: "a.b.c.d.e".into(),
                fido_credential_requests: vec!["a.b.c.d.e".into()],
            }],
        }],
        reseller_organization_id: None,
        address_validation_bypass: None,
        customer_reference: None,
    }
}

fn refused(f: impl FnOnce(&mut CreateFprShipment)) -> (Field, String) {
    let mut b = good();
    f(&mut b);
    let e = validate::fpr_shipment(&b).unwrap_err();
    (e.field, e.to_string())
}

#[test]
fn a_good_request_passes() {
    validate::fpr_shipment(&good()).unwrap();
}

#[test]
fn length_limits_have_the_documented_messages() {
    let cases: Vec<(Edit, Field, &str)> = vec![
        (
            Box::new(|b| b.recipient.recipient_firstname = "x".repeat(16)),
            Field::FirstName,
            "Input for First Name exceeded limit of 15 characters",
        ),
        (
            Box::new(|b| b.recipient.recipient_lastname = "x".repeat(21)),
            Field::LastName,
            "Input for Last Name exceeded limit of 20 characters",
        ),
        (
            Box::new(|b| b.recipient.recipient_company = "x".repeat(21)),
            Field::Company,
            "Input for Company exceeded limit of 20 characters",
        ),
        (
            Box::new(|b| b.mailing_address.street_line1 = "x".repeat(61)),
            Field::StreetLine1,
            "Input for Address exceeded limit of 60 characters",
        ),
        (
            Box::new(|b| b.mailing_address.street_line2 = "x".repeat(61)),
            Field::StreetLine2,
            "Input for Apt or Unit Number exceeded limit of 60 characters",
        ),
        (
            Box::new(|b| b.mailing_address.city = "x".repeat(61)),
            Field::City,
            "Input for City exceeded limit of 60 characters",
        ),
        (
            Box::new(|b| {
                b.mailing_address.country_code_2 = "DE".into();
                b.mailing_address.region = "x".repeat(51)
            }),
            Field::Region,
            "Input for Region exceeded limit of 50 characters",
        ),
        (
            Box::new(|b| b.recipient.recipient_email = format!("{}@example.com", "x".repeat(70))),
            Field::Email,
            "Input for Email exceeded limit of 80 characters",
        ),
        (
            Box::new(|b| b.recipient.recipient_telephone = "5".repeat(41)),
            Field::Telephone,
            "Input for Phone Number exceeded limit of 40 characters",
        ),
    ];
    for (edit, field, message) in cases {
        let (f, m) = refused(edit);
        assert_eq!((f, m.as_str()), (field, message));
    }
}

#[test]
fn limits_are_inclusive() {
    let mut b = good();
    b.recipient.recipient_firstname = "x".repeat(15);
    b.recipient.recipient_lastname = "x".repeat(20);
    b.recipient.recipient_company = "x".repeat(20);
    b.mailing_address.street_line1 = "x".repeat(60);
    b.mailing_address.street_line2 = "x".repeat(60);
    b.mailing_address.city = "x".repeat(60);
    b.recipient.recipient_telephone = "5".repeat(40);
    validate::fpr_shipment(&b).unwrap();
}

#[test]
fn street_lines_together_are_capped_at_120() {
    let (f, m) = refused(|b| {
        b.mailing_address.street_line1 = "x".repeat(60);
        b.mailing_address.street_line2 = "x".repeat(60);
        b.mailing_address.street_line3 = "x".into();
    });
    assert_eq!(f, Field::StreetAddress);
    assert!(m.contains("combined limit of 120"), "{m}");
}

#[test]
fn multibyte_characters_count_as_bytes() {
    // 8 × "é" is 16 bytes: over the first-name limit of 15.
    let (f, _) = refused(|b| b.recipient.recipient_firstname = "é".repeat(8));
    assert_eq!(f, Field::FirstName);
}

#[test]
fn region_must_be_two_letters_for_us_and_ca_only() {
    assert_eq!(
        refused(|b| b.mailing_address.region = "Mass".into()).0,
        Field::Region
    );
    assert_eq!(
        refused(|b| b.mailing_address.region = String::new()).1,
        "Input for Region is required"
    );
    let (f, m) = refused(|b| {
        b.mailing_address.country_code_2 = "CA".into();
        b.mailing_address.region = "O1".into();
    });
    assert_eq!(f, Field::Region);
    assert!(m.contains("2-letter"), "{m}");
    let mut b = good();
    b.mailing_address.country_code_2 = "DE".into();
    b.mailing_address.region = "Bayern".into();
    validate::fpr_shipment(&b).unwrap();
    b.mailing_address.region = String::new();
    validate::fpr_shipment(&b).unwrap();
}

#[test]
fn telephone_characters_and_the_india_exception() {
    let (f, m) = refused(|b| b.recipient.recipient_telephone = "555-CALL".into());
    assert_eq!(f, Field::Telephone);
    assert!(m.contains("0-9+-( )"), "{m}");
    let mut b = good();
    b.mailing_address.country_code_2 = "IN".into();
    b.mailing_address.region = "MH".into();
    b.recipient.recipient_telephone = "9".repeat(255);
    validate::fpr_shipment(&b).unwrap();
    b.recipient.recipient_telephone = "9".repeat(256);
    assert_eq!(
        validate::fpr_shipment(&b).unwrap_err().to_string(),
        "Input for Phone Number exceeded limit of 255 characters"
    );
}

#[test]
fn required_fields() {
    for (edit, field) in [
        (
            Box::new(|b: &mut CreateFprShipment| b.recipient.recipient_company = " ".into())
                as Edit,
            Field::Company,
        ),
        (
            Box::new(|b| b.recipient.recipient_telephone = String::new()),
            Field::Telephone,
        ),
        (
            Box::new(|b| b.mailing_address.street_line1 = String::new()),
            Field::StreetLine1,
        ),
        (
            Box::new(|b| b.mailing_address.city = String::new()),
            Field::City,
        ),
        (
            Box::new(|b| b.mailing_address.postal_code = String::new()),
            Field::PostalCode,
        ),
        (
            Box::new(|b| b.mailing_address.country_code_2 = String::new()),
            Field::CountryCode,
        ),
        (
            Box::new(|b| b.shipment_items[0].customization_id = String::new()),
            Field::CustomizationId,
        ),
        (
            Box::new(|b| {
                b.shipment_items[0].product_customizations[0].fido_pin_request = String::new()
            }),
            Field::PinRequest,
        ),
        (
            Box::new(|b| {
                b.shipment_items[0].product_customizations[0]
                    .fido_credential_requests
                    .clear()
            }),
            Field::CredentialRequests,
        ),
    ] {
        let (f, m) = refused(edit);
        assert_eq!(f, field);
        assert!(m.ends_with("is required"), "{m}");
    }
}

#[test]
fn country_code_is_two_letters() {
    assert_eq!(
        refused(|b| b.mailing_address.country_code_2 = "USA".into()).0,
        Field::CountryCode
    );
    assert_eq!(
        refused(|b| b.mailing_address.country_code_2 = "U1".into()).0,
        Field::CountryCode
    );
}

#[test]
fn email_must_look_like_one() {
    assert_eq!(
        refused(|b| b.recipient.recipient_email = "not-an-email".into()).0,
        Field::Email
    );
    let mut b = good();
    b.recipient.recipient_email = String::new();
    validate::fpr_shipment(&b).unwrap();
}

#[test]
fn one_key_per_fido_prereg_shipment() {
    let (f, m) = refused(|b| b.shipment_items[0].product_quantity = 2);
    assert_eq!(f, Field::Quantity);
    assert_eq!(
        m,
        "Input for Quantity must be 1: one YubiKey per FIDO Pre-reg shipment"
    );
    assert_eq!(
        refused(|b| {
            let i = b.shipment_items[0].clone();
            b.shipment_items.push(i)
        })
        .0,
        Field::ShipmentItems
    );
    assert_eq!(
        refused(|b| b.shipment_items.clear()).0,
        Field::ShipmentItems
    );
    assert_eq!(
        refused(|b| {
            let c = b.shipment_items[0].product_customizations[0].clone();
            b.shipment_items[0].product_customizations.push(c)
        })
        .0,
        Field::ProductCustomizations
    );
}

#[test]
fn delivery_type_is_1_or_2() {
    assert_eq!(
        refused(|b| b.delivery_type = Some(3)).0,
        Field::DeliveryType
    );
    let mut b = good();
    b.delivery_type = Some(2);
    validate::fpr_shipment(&b).unwrap();
}

#[test]
fn validation_error_becomes_the_documented_error_body() {
    let mut b = good();
    b.recipient.recipient_lastname = "x".repeat(21);
    let api: yubienterprise::ApiError = validate::fpr_shipment(&b).unwrap_err().into();
    let json = serde_json::to_value(&api).unwrap();
    assert_eq!(json["code"], "validation_error");
    assert_eq!(
        json["message"],
        "Input for Last Name exceeded limit of 20 characters"
    );
    assert_eq!(json["field"], "recipient_lastname");
}

#[test]
fn reseller_organization_id_must_be_a_base58_organization_id() {
    let mut b = good();
    b.reseller_organization_id = Some("E1ap3BG24ytkAwmQG8NWnP".into());
    assert!(validate::fpr_shipment(&b).is_ok());
    b.reseller_organization_id = Some("not-an-org".into());
    let e = validate::fpr_shipment(&b).unwrap_err();
    assert_eq!(e.field, Field::ResellerOrganizationId);
    assert_eq!(e.field.wire_name(), "reseller_organization_id");
}

#[test]
fn optional_member_types_name_the_field_that_has_the_wrong_type() {
    use serde_json::json;
    let ok = json!({"reseller_organization_id": "E1ap3BG24ytkAwmQG8NWnP",
                    "address_validation_bypass": true});
    assert!(validate::fpr_optional_member_types(&ok).is_ok());
    assert!(validate::fpr_optional_member_types(&json!({})).is_ok());
    let nulls = json!({"reseller_organization_id": null, "address_validation_bypass": null});
    assert!(validate::fpr_optional_member_types(&nulls).is_ok());
    let e = validate::fpr_optional_member_types(&json!({"address_validation_bypass": "true"}))
        .unwrap_err();
    assert_eq!(e.field, Field::AddressValidationBypass);
    assert!(e.to_string().contains("boolean"), "{e}");
    let e =
        validate::fpr_optional_member_types(&json!({"reseller_organization_id": 7})).unwrap_err();
    assert_eq!(e.field, Field::ResellerOrganizationId);
}

#[test]
fn several_keys_per_shipment_only_where_the_fulfiller_allows_them_one_customization_each() {
    let mut two = good();
    let item = &mut two.shipment_items[0];
    item.product_quantity = 2;
    item.product_customizations
        .push(item.product_customizations[0].clone());
    // Yubico's published API: one key per shipment.
    let e = validate::fpr_shipment(&two).unwrap_err();
    assert_eq!(e.field, Field::Quantity);
    assert!(e.to_string().contains("must be 1"), "{e}");
    // A fulfiller that ships two together takes it...
    validate::fpr_shipment_of(&two, 2).unwrap();
    validate::fpr_shipment_of(&good(), 2).unwrap();
    // ...but not three, nor a customization short of the quantity.
    let mut three = two.clone();
    three.shipment_items[0].product_quantity = 3;
    let e = validate::fpr_shipment_of(&three, 2).unwrap_err();
    assert_eq!(e.field, Field::Quantity);
    let mut short = two.clone();
    short.shipment_items[0].product_customizations.pop();
    let e = validate::fpr_shipment_of(&short, 2).unwrap_err();
    assert_eq!(e.field, Field::ProductCustomizations);
    assert!(e.to_string().contains("one entry per key"), "{e}");
    // Every key's customization carries its PIN request.
    let mut blank = two.clone();
    blank.shipment_items[0].product_customizations[1].fido_pin_request = String::new();
    let e = validate::fpr_shipment_of(&blank, 2).unwrap_err();
    assert_eq!(e.field, Field::PinRequest);
}
