//! Plain (flat) shipments: `GET/POST /v1/shipments_exact`,
//! `GET/PUT/DELETE /v1/shipments_exact/{id}` (yubienterprise.md §2a, §2b).
//! FIDO Pre-reg shipments also appear here, flat, with `shipment_type`
//! "AUTO FIDO PRE-REG".

use crate::ShipmentType;
use crate::fpr::{MailingAddress, Recipient};
use crate::ids::Base58Id;
use crate::num::{opt_u8_lenient, u32_lenient};
use crate::state::ShipmentState;
use serde::{Deserialize, Serialize};

/// One item of the flat create body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactItemRequest {
    /// The model.
    #[serde(deserialize_with = "u32_lenient")]
    pub product_id: u32,
    /// The bucket.
    #[serde(deserialize_with = "u32_lenient")]
    pub inventory_product_id: u32,
    /// How many keys (at least 1).
    #[serde(deserialize_with = "u32_lenient")]
    pub shipment_product_quantity: u32,
}

/// `POST /v1/shipments_exact` and `PUT /v1/shipments_exact/{id}` body (the PUT takes the
/// same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateShipmentExact {
    /// Yubico's own is 1; the docs example sends 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channelpartner_id: Option<u64>,
    /// 1 standard (default), 2 expedited.
    #[serde(
        default,
        deserialize_with = "opt_u8_lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub delivery_type: Option<u8>,
    /// Country (required).
    #[serde(default)]
    pub country_code_2: String,
    /// Company (required).
    #[serde(default)]
    pub recipient: String,
    /// Optional.
    #[serde(default)]
    pub recipient_email: String,
    /// Optional.
    #[serde(default)]
    pub recipient_firstname: String,
    /// Optional.
    #[serde(default)]
    pub recipient_lastname: String,
    /// Required.
    #[serde(default)]
    pub recipient_telephone: String,
    /// Required.
    #[serde(default)]
    pub street_line1: String,
    /// Optional.
    #[serde(default)]
    pub street_line2: String,
    /// Optional.
    #[serde(default)]
    pub street_line3: String,
    /// Required.
    #[serde(default)]
    pub city: String,
    /// 2-letter for US/CA.
    #[serde(default)]
    pub region: String,
    /// Required.
    #[serde(default)]
    pub postal_code: String,
    /// Skip address validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_validation_bypass: Option<bool>,
    /// This project's extension: MANUAL or AUTOMATED (the default for API orders).
    /// "AUTO FIDO PRE-REG" is refused here: use `POST /v1/fpr/shipments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_type: Option<ShipmentType>,
    /// The items.
    #[serde(default)]
    pub shipment_items: Vec<ExactItemRequest>,
}

impl CreateShipmentExact {
    /// The recipient part in the nested shape (validation is written once, over that).
    pub fn nested_recipient(&self) -> Recipient {
        Recipient {
            recipient_company: self.recipient.clone(),
            recipient_email: self.recipient_email.clone(),
            recipient_firstname: self.recipient_firstname.clone(),
            recipient_lastname: self.recipient_lastname.clone(),
            recipient_telephone: self.recipient_telephone.clone(),
        }
    }

    /// The address part in the nested shape.
    pub fn nested_address(&self) -> MailingAddress {
        MailingAddress {
            street_line1: self.street_line1.clone(),
            street_line2: self.street_line2.clone(),
            street_line3: self.street_line3.clone(),
            city: self.city.clone(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone(),
            country_code_2: self.country_code_2.clone(),
        }
    }
}

/// One item of the flat read shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactItem {
    /// The bucket.
    pub inventory_product_id: u32,
    /// The item's own id.
    pub shipment_product_id: Base58Id,
    /// The shipment it belongs to.
    pub shipment_id: Base58Id,
    /// The model.
    pub product_id: u32,
    /// The model's name.
    #[serde(default)]
    pub product_name: String,
    /// The SKU, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_sku: Option<String>,
    /// The tier, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_tier: Option<u32>,
    /// How many.
    pub shipment_product_quantity: u32,
}

/// `GET /v1/shipments_exact/{id}`: the flat read shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentExact {
    /// The id.
    pub shipment_id: Base58Id,
    /// MANUAL, AUTOMATED or AUTO FIDO PRE-REG. The Console shows it; the API member's
    /// name is not public, so it is optional when reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_type: Option<ShipmentType>,
    /// Flat state id.
    pub shipment_state_id: ShipmentState,
    /// Its text.
    #[serde(default)]
    pub shipment_state_message: String,
    /// The items.
    pub shipment_items: Vec<ExactItem>,
    /// The organisation.
    pub organization_id: Base58Id,
    /// The API user who ordered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Base58Id>,
    /// Country.
    pub country_code_2: String,
    /// 104.
    pub is_delivered: bool,
    /// 101 or later.
    pub is_sent_to_fulfillment: bool,
    /// 103 or later.
    pub is_shipped: bool,
    /// Company.
    pub recipient: String,
    /// Email.
    #[serde(default)]
    pub recipient_email: String,
    /// First name.
    #[serde(default)]
    pub recipient_firstname: String,
    /// Last name.
    #[serde(default)]
    pub recipient_lastname: String,
    /// Telephone.
    #[serde(default)]
    pub recipient_telephone: String,
    /// Street.
    pub street_line1: String,
    /// Street 2.
    #[serde(default)]
    pub street_line2: String,
    /// Street 3.
    #[serde(default)]
    pub street_line3: String,
    /// City.
    pub city: String,
    /// Region.
    #[serde(default)]
    pub region: String,
    /// Postal code.
    pub postal_code: String,
    /// 1 or 2.
    pub delivery_type: u8,
    /// RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_request_date: Option<String>,
    /// Once shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_link: Option<String>,
    /// Once delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_date: Option<String>,
    /// The customer reference (our name for the Console's field), when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_reference: Option<String>,
}

/// `GET /v1/shipments_exact`: one page. `total_count` is the number of matches before
/// paging (the docs say to page with `limit`/`offset` until `total_count`). The name of
/// the array member is not public; this project uses `shipments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentPage {
    /// Matches before paging.
    pub total_count: u64,
    /// The page size used (at most 100).
    pub limit: u32,
    /// The offset used.
    pub offset: u64,
    /// This page.
    pub shipments: Vec<ShipmentExact>,
}

/// `GET /v1/shipments_exact/search-description`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchDescription {
    /// Fields accepted by `search_field`.
    pub searchable_fields: Vec<String>,
    /// Fields the list can be filtered on directly (`?shipment_type=...`).
    pub filterable_fields: Vec<String>,
}
