//! FIDO Pre-reg shipments: `POST /v1/fpr/shipments` (nested body), `GET`, `PUT`,
//! `DELETE /v1/fpr/shipments/{id}` (yubienterprise.md §5).
//!
//! Text fields default to empty when absent so that a missing field reaches
//! [`crate::validate`] and gets the documented message instead of a parse error.

use crate::ShipmentType;
use crate::ids::Base58Id;
use crate::num::{opt_u8_lenient, u32_lenient};
use crate::state::ShipmentState;
use serde::{Deserialize, Serialize};

/// `recipient{}` of the nested body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Company name (required, at most 20).
    #[serde(default)]
    pub recipient_company: String,
    /// Receives the tracking number (optional, at most 80).
    #[serde(default)]
    pub recipient_email: String,
    /// Optional, at most 15.
    #[serde(default)]
    pub recipient_firstname: String,
    /// Optional, at most 20.
    #[serde(default)]
    pub recipient_lastname: String,
    /// Required, at most 40 of `0-9+-( )` (255 when the country is IN).
    #[serde(default)]
    pub recipient_telephone: String,
}

/// `mailing_address{}` of the nested body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailingAddress {
    /// Required, at most 60.
    #[serde(default)]
    pub street_line1: String,
    /// Optional (apartment or unit), at most 60; lines 1 and 2 together at most 120.
    #[serde(default)]
    pub street_line2: String,
    /// Optional, at most 60.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub street_line3: String,
    /// Required, at most 60.
    #[serde(default)]
    pub city: String,
    /// At most 50; a 2-letter code, required, for US and CA.
    #[serde(default)]
    pub region: String,
    /// Required.
    #[serde(default)]
    pub postal_code: String,
    /// Required, 2-letter ISO code.
    #[serde(default)]
    pub country_code_2: String,
}

/// `product_customizations[]`: the sealed requests for one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCustomization {
    /// The PIN request JWE (compact).
    #[serde(default)]
    pub fido_pin_request: String,
    /// One credential request JWE (compact) per relying party.
    #[serde(default)]
    pub fido_credential_requests: Vec<String>,
}

/// One item of the create body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentItemRequest {
    /// The YubiKey model (`GET /v1/products`).
    #[serde(deserialize_with = "u32_lenient")]
    pub product_id: u32,
    /// The inventory bucket the key is taken from (`GET /v1/inventory`).
    #[serde(deserialize_with = "u32_lenient")]
    pub inventory_product_id: u32,
    /// Keys in the shipment: 1 in Yubico's published API (more only where the fulfiller
    /// ships several together, [`crate::validate::fpr_shipment_of`]).
    #[serde(deserialize_with = "u32_lenient")]
    pub product_quantity: u32,
    /// The organisation's customization id (CID).
    #[serde(default)]
    pub customization_id: String,
    /// Exactly one entry: the sealed requests for the one key.
    #[serde(default)]
    pub product_customizations: Vec<ProductCustomization>,
}

/// `POST /v1/fpr/shipments` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateFprShipment {
    /// 1 standard (default), 2 expedited.
    #[serde(
        default,
        deserialize_with = "opt_u8_lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub delivery_type: Option<u8>,
    /// Who receives the key.
    #[serde(default)]
    pub recipient: Recipient,
    /// Where it goes.
    #[serde(default)]
    pub mailing_address: MailingAddress,
    /// Exactly one item.
    #[serde(default)]
    pub shipment_items: Vec<ShipmentItemRequest>,
    /// Entra connector extension: a reseller's organisation (base58), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller_organization_id: Option<String>,
    /// Entra connector extension: skip address validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_validation_bypass: Option<bool>,
    /// The Console's "Customer reference" (at most 50 characters), free text the buyer
    /// attaches to the shipment. The JSON name is not published: `customer_reference`
    /// is this project's choice (docs/fulfiller-sandbox.md). The connector puts its
    /// request id here and finds the shipment by it after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_reference: Option<String>,
}

/// `PUT /v1/fpr/shipments/{id}` body: what may change while the shipment is editable.
/// Absent parts stay as they are; a present part replaces the old one whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateFprShipment {
    /// New delivery type.
    #[serde(
        default,
        deserialize_with = "opt_u8_lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub delivery_type: Option<u8>,
    /// New recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<Recipient>,
    /// New address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailing_address: Option<MailingAddress>,
}

/// `product_data[]` of a shipped item (state 103/104).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductData {
    /// The key's serial number.
    pub serial_number: String,
    /// Its firmware version, e.g. "5.7.1".
    pub firmware_version: String,
    /// The sealed PIN response JWE.
    pub fido_pin_response: String,
    /// One sealed credential response JWE per credential request, in request order.
    pub fido_credential_responses: Vec<String>,
}

/// One item of the read shape. Only `product_data` is known to be read by public code,
/// so everything else defaults when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentItem {
    /// The model.
    #[serde(default)]
    pub product_id: u32,
    /// The bucket.
    #[serde(default)]
    pub inventory_product_id: u32,
    /// Always 1.
    #[serde(default)]
    pub product_quantity: u32,
    /// The CID.
    #[serde(default)]
    pub customization_id: String,
    /// The model's name, e.g. "YubiKey 5 NFC".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    /// Present once the state is 103 or 104.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_data: Option<Vec<ProductData>>,
}

/// `GET /v1/fpr/shipments/{id}` (and the create response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FprShipment {
    /// The id.
    pub shipment_id: Base58Id,
    /// Nested state (the FPR endpoints nest it; `shipments_exact` is flat).
    pub shipment_state: ShipmentStateInfo,
    /// Always "AUTO FIDO PRE-REG" for these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_type: Option<ShipmentType>,
    /// 1 or 2.
    #[serde(default = "standard")]
    pub delivery_type: u8,
    /// Who.
    #[serde(default)]
    pub recipient: Recipient,
    /// Where.
    #[serde(default)]
    pub mailing_address: MailingAddress,
    /// The one item.
    #[serde(default)]
    pub shipment_items: Vec<ShipmentItem>,
    /// The organisation that ordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    /// RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_request_date: Option<String>,
    /// Carrier link once shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_link: Option<String>,
    /// RFC 3339 UTC once delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_date: Option<String>,
    /// The customer reference given at creation (our name for the Console's field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_reference: Option<String>,
}

/// `shipment_state{}`: `{"shipment_state_id": 103, "shipment_state_message": "Shipped"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentStateInfo {
    /// The state.
    pub shipment_state_id: ShipmentState,
    /// Its text.
    #[serde(default)]
    pub shipment_state_message: String,
}

impl ShipmentStateInfo {
    /// The info for a state, with its standard message.
    pub fn of(state: ShipmentState) -> Self {
        Self {
            shipment_state_id: state,
            shipment_state_message: state.message().to_owned(),
        }
    }
}

impl FprShipment {
    /// The first item's first `product_data`, as the \[SPOKE\] extraction reads it.
    pub fn product_data(&self) -> Option<&ProductData> {
        self.shipment_items.first()?.product_data.as_ref()?.first()
    }
}

fn standard() -> u8 {
    crate::DELIVERY_STANDARD
}
