//! The guide's four Okta Workflows action cards of the Yubico connector, as pure,
//! documented operations ("Create Shipment Request", "Get Shipment Details", "Build
//! Shipment Item", "Get Public Transport Keys and Signing Certificate"), and their HTTP
//! routes (`/v1/yubico/...`, see [`routes()`]). The `prereg yubico ...` commands and the
//! Okta-mode flow call the same functions.
//!
//! Input and output field names are the guide's card fields in snake case ("Phone
//! Number" is `phone_number`, "Apt or Unit Number" is `apt_or_unit_number`). Inputs
//! are checked against the fulfiller's documented limits ([`yubienterprise::validate`])
//! before anything is sent, and every failure names the field. The sealed JWE strings
//! (PIN and credential requests and responses) are relayed byte for byte: never
//! trimmed, re-encoded or logged.
//!
//! Errors ([`CardError`]) have one documented shape, the guide's API error bodies:
//! - our validation: 400 `{"error_code":"api_error","error_message":"Input for Last
//!   Name exceeded limit of 20 characters","error_data":{"error_type":"validation",
//!   "field":"last_name"}}`;
//! - the fulfiller refused: `{"error_code":"ye_error","error_message":"Validation
//!   error when creating YED shipment","error_data":{"code":"...","message":"...",
//!   "field":"..."}}` with the fulfiller's `error_data` relayed unchanged, status 400,
//!   404, 409 or 429 as the fulfiller answered (any other status, e.g. a 401 for a bad
//!   fulfiller token or a 5xx, is answered 502: it is not the caller's fault);
//! - the fulfiller could not be reached: 502 `api_error` with `error_type`
//!   `fulfiller_unavailable`.

use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::openapi::ErrorBody;
use crate::app::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yubienterprise::fpr::{
    CreateFprShipment, MailingAddress, ProductCustomization, Recipient, ShipmentItemRequest,
};
use yubienterprise::validate::{self, Problem, ValidationError};
use yubienterprise::{Base58Id, ClientError};

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

/// Why a card failed. See the module documentation for the JSON shapes
/// ([`CardError::body`]) and statuses ([`CardError::status`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum CardError {
    /// The input breaks a documented rule; nothing was sent to the fulfiller.
    #[error("{message}")]
    Validation {
        /// The input field, as this card names it (`last_name`,
        /// `shipment_items[0].customization_id`).
        field: String,
        /// The guide's label of the field ("Last Name").
        label: &'static str,
        /// "Input for Last Name exceeded limit of 20 characters".
        message: String,
    },
    /// The fulfiller answered with an error; its error body is relayed unchanged.
    #[error("{context}: the fulfiller answered {status}: {}", .error.message)]
    Refused {
        /// What was being done ("creating YED shipment").
        context: &'static str,
        /// The fulfiller's HTTP status.
        status: u16,
        /// The fulfiller's error body (`code`, `message`, `field`).
        error: yubienterprise::ApiError,
        /// `Retry-After` seconds, when the fulfiller sent one.
        retry_after: Option<u64>,
    },
    /// No usable answer: connection refused, timeout, or a body of the wrong shape.
    #[error("{context}: {message}")]
    Unavailable {
        /// What was being done.
        context: &'static str,
        /// What happened (no secrets: URLs without query, transport errors).
        message: String,
    },
}

impl CardError {
    fn invalid(field: impl Into<String>, label: &'static str, why: &str) -> Self {
        Self::Validation {
            field: field.into(),
            label,
            message: format!("Input for {label} {why}"),
        }
    }

    fn from_client(context: &'static str, e: ClientError) -> Self {
        match e {
            ClientError::Api {
                status,
                body,
                retry_after,
            } => Self::Refused {
                context,
                status,
                error: body,
                retry_after,
            },
            other => Self::Unavailable {
                context,
                message: other.to_string(),
            },
        }
    }

    /// The input field the error is about, when it is a validation error.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Validation { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Worth trying again later with the same input: the fulfiller could not be
    /// reached, rate-limited, or failed on its side (5xx). Note that "Create Shipment
    /// Request" is not idempotent at the fulfiller: after a transport failure the
    /// shipment may exist.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Refused { status, .. } => *status == 429 || *status >= 500,
            Self::Validation { .. } => false,
        }
    }

    /// The HTTP status of the connector's answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation { .. } => StatusCode::BAD_REQUEST,
            Self::Refused { status, .. } => match status {
                400 | 404 | 409 | 429 => {
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
                }
                _ => StatusCode::BAD_GATEWAY,
            },
            Self::Unavailable { .. } => StatusCode::BAD_GATEWAY,
        }
    }

    /// The JSON error body (the guide's `api_error` / `ye_error` shapes).
    pub fn body(&self) -> Value {
        match self {
            Self::Validation { field, message, .. } => json!({
                "error_code": "api_error",
                "error_message": message,
                "error_data": {"error_type": "validation", "field": field},
            }),
            Self::Refused {
                context,
                status,
                error,
                ..
            } => {
                let kind = if *status == 400 {
                    "Validation error"
                } else {
                    "Error"
                };
                json!({
                    "error_code": "ye_error",
                    "error_message": format!("{kind} when {context}"),
                    "error_data": error,
                })
            }
            Self::Unavailable { message, .. } => json!({
                "error_code": "api_error",
                "error_message": message,
                "error_data": {"error_type": "fulfiller_unavailable"},
            }),
        }
    }
}

impl IntoResponse for CardError {
    fn into_response(self) -> Response {
        let mut r = (self.status(), axum::Json(self.body())).into_response();
        if let Self::Refused {
            retry_after: Some(s),
            ..
        } = &self
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

// ---------------------------------------------------------------------------------
// Build Shipment Item
// ---------------------------------------------------------------------------------

/// Input of "Build Shipment Item". The JWEs are Okta's `/enroll` output
/// (`pinRequestJwe`, `credRequests[].credRequestJwe`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildShipmentItem {
    /// "Customization ID": the organisation's Yubico customization (CID). Required.
    #[serde(default, alias = "customizationId")]
    pub customization_id: String,
    /// "Product ID": the YubiKey model. Required (a number, or a string of digits as
    /// Okta's fulfilment data carries it).
    #[serde(alias = "productId", deserialize_with = "u32_lenient")]
    #[schema(value_type = NumberOrDigits)]
    pub product_id: u32,
    /// "Inventory Product ID": the inventory bucket. Required.
    #[serde(alias = "inventoryProductId", deserialize_with = "u32_lenient")]
    #[schema(value_type = NumberOrDigits)]
    pub inventory_product_id: u32,
    /// "Quantity": must be 1 (one key per FIDO Pre-reg shipment). Default 1.
    #[serde(
        default = "one",
        alias = "product_quantity",
        deserialize_with = "u32_lenient"
    )]
    #[schema(value_type = Option<NumberOrDigits>)]
    pub quantity: u32,
    /// "PIN Request - Encrypted": a compact JWE, relayed unchanged.
    #[serde(default, alias = "fido_pin_request", alias = "pinRequestJwe")]
    pub pin_request: String,
    /// "Credential Requests - Encrypted": compact JWEs, relayed unchanged, in order.
    #[serde(default, alias = "fido_credential_requests", alias = "credRequestJwes")]
    pub credential_requests: Vec<String>,
}

/// Output of "Build Shipment Item": `{"shipment_item": {...}}`, the item exactly as
/// the fulfiller's `POST /v1/fpr/shipments` takes it in `shipment_items[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BuiltShipmentItem {
    /// "Shipment Item".
    #[schema(value_type = FulfillerShipmentItem)]
    pub shipment_item: ShipmentItemRequest,
}

/// A number, or a string of digits (Okta's fulfilment data carries ids as strings).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // A schema only: `u32_lenient` parses it.
pub enum NumberOrDigits {
    /// A number (at most 4294967295).
    Number(u64),
    /// Digits.
    Digits(String),
}

/// One item of the fulfiller's `POST /v1/fpr/shipments` body (`shipment_items[]`), as
/// "Build Shipment Item" makes it.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only: the item is `yubienterprise::fpr::ShipmentItemRequest`.
pub struct FulfillerShipmentItem {
    /// The YubiKey model.
    #[schema(value_type = NumberOrDigits)]
    product_id: u32,
    /// The inventory bucket.
    #[schema(value_type = NumberOrDigits)]
    inventory_product_id: u32,
    /// 1.
    #[schema(value_type = NumberOrDigits)]
    product_quantity: u32,
    /// The customization id (CID).
    #[schema(required = false)]
    customization_id: String,
    /// Exactly one entry: the sealed requests for the one key.
    #[schema(required = false)]
    product_customizations: Vec<FulfillerCustomization>,
}

/// `product_customizations[]`: the sealed requests for one key, relayed unchanged.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only.
pub struct FulfillerCustomization {
    /// The PIN request JWE (compact).
    #[schema(required = false)]
    fido_pin_request: String,
    /// One credential request JWE (compact) per relying party.
    #[schema(required = false)]
    fido_credential_requests: Vec<String>,
}

/// "Build Shipment Item": checks the input and builds the fulfiller's item
/// (`product_quantity`, `customization_id`, one `product_customizations` entry with
/// `fido_pin_request` and `fido_credential_requests`). The JWEs are copied byte for
/// byte. Errors name the input field (`customization_id`, `quantity`, `pin_request`,
/// `credential_requests[1]`, ...).
pub fn build_shipment_item(input: &BuildShipmentItem) -> Result<ShipmentItemRequest, CardError> {
    let item = ShipmentItemRequest {
        product_id: input.product_id,
        inventory_product_id: input.inventory_product_id,
        product_quantity: input.quantity,
        customization_id: input.customization_id.clone(),
        product_customizations: vec![ProductCustomization {
            fido_pin_request: input.pin_request.clone(),
            fido_credential_requests: input.credential_requests.clone(),
        }],
    };
    check_item(&item, |f| {
        match f {
            ItemField::ProductId => "product_id",
            ItemField::InventoryProductId => "inventory_product_id",
            ItemField::Quantity => "quantity",
            ItemField::CustomizationId => "customization_id",
            ItemField::Customizations => "pin_request",
            ItemField::PinRequest => "pin_request",
            ItemField::CredentialRequests => "credential_requests",
        }
        .to_owned()
    })?;
    Ok(item)
}

#[derive(Clone, Copy)]
enum ItemField {
    ProductId,
    InventoryProductId,
    Quantity,
    CustomizationId,
    Customizations,
    PinRequest,
    CredentialRequests,
}

/// The checks of one item; `name` turns a field into the caller's name for it.
fn check_item(
    item: &ShipmentItemRequest,
    name: impl Fn(ItemField) -> String,
) -> Result<(), CardError> {
    if item.customization_id.trim().is_empty() {
        return Err(CardError::invalid(
            name(ItemField::CustomizationId),
            "Customization ID",
            "is required",
        ));
    }
    if item.product_id == 0 {
        return Err(CardError::invalid(
            name(ItemField::ProductId),
            "Product ID",
            "is required (a product id from GET /v1/products)",
        ));
    }
    if item.inventory_product_id == 0 {
        return Err(CardError::invalid(
            name(ItemField::InventoryProductId),
            "Inventory Product ID",
            "is required (an inventory product id from GET /v1/inventory)",
        ));
    }
    if item.product_quantity != validate::limits::FPR_KEYS {
        return Err(CardError::invalid(
            name(ItemField::Quantity),
            "Quantity",
            "must be 1: one YubiKey per FIDO Pre-reg shipment",
        ));
    }
    let [custom] = item.product_customizations.as_slice() else {
        return Err(CardError::invalid(
            name(ItemField::Customizations),
            "Product Customizations",
            "must hold exactly one entry (one key)",
        ));
    };
    if custom.fido_pin_request.is_empty() {
        return Err(CardError::invalid(
            name(ItemField::PinRequest),
            "PIN Request - Encrypted",
            "is required",
        ));
    }
    if !is_compact_jwe(&custom.fido_pin_request) {
        return Err(CardError::invalid(
            name(ItemField::PinRequest),
            "PIN Request - Encrypted",
            NOT_JWE,
        ));
    }
    if custom.fido_credential_requests.is_empty() {
        return Err(CardError::invalid(
            name(ItemField::CredentialRequests),
            "Credential Requests - Encrypted",
            "is required (at least one credential request JWE)",
        ));
    }
    for (i, c) in custom.fido_credential_requests.iter().enumerate() {
        if !is_compact_jwe(c) {
            return Err(CardError::invalid(
                format!("{}[{i}]", name(ItemField::CredentialRequests)),
                "Credential Requests - Encrypted",
                NOT_JWE,
            ));
        }
    }
    Ok(())
}

const NOT_JWE: &str = "must be a compact JWE as Okta's enroll endpoint returns it (five base64url parts separated by dots)";

/// Five dot-separated parts of base64url characters, the first (header) non-empty.
fn is_compact_jwe(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 5
        && !parts[0].is_empty()
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

// ---------------------------------------------------------------------------------
// Create Shipment Request
// ---------------------------------------------------------------------------------

/// Input of "Create Shipment Request".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShipmentRequest {
    /// "Company": required, at most 20.
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 20)]
    pub company: String,
    /// "Email": optional, at most 80; receives the tracking number.
    #[serde(default)]
    #[schema(max_length = 80)]
    pub email: String,
    /// "First Name": optional, at most 15.
    #[serde(default)]
    #[schema(max_length = 15)]
    pub first_name: String,
    /// "Last Name": optional, at most 20.
    #[serde(default)]
    #[schema(max_length = 20)]
    pub last_name: String,
    /// "Phone Number": required, at most 40 of `0-9+-( )` (255 when the country is IN).
    #[serde(default, alias = "phone")]
    #[schema(required = true, min_length = 1, max_length = 255)]
    pub phone_number: String,
    /// "Address": required, at most 60 (may include the apartment or unit).
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 60)]
    pub address: String,
    /// "Apt or Unit Number": optional, at most 60 (with the address at most 120).
    #[serde(default, alias = "apartment")]
    #[schema(max_length = 60)]
    pub apt_or_unit_number: String,
    /// "City": required, at most 60.
    #[serde(default)]
    #[schema(required = true, min_length = 1, max_length = 60)]
    pub city: String,
    /// "Region": at most 50; a 2-letter code, required, for US and CA.
    #[serde(default)]
    #[schema(max_length = 50)]
    pub region: String,
    /// "Postal Code": required.
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    pub postal_code: String,
    /// "Country Code": required, 2-letter ISO code.
    #[serde(default)]
    #[schema(required = true, pattern = "^[A-Za-z]{2}$")]
    pub country_code: String,
    /// "List of Shipment Items": exactly one, as "Build Shipment Item" makes it.
    #[serde(default)]
    #[schema(value_type = Vec<FulfillerShipmentItem>, required = true, min_items = 1, max_items = 1)]
    pub shipment_items: Vec<ShipmentItemRequest>,
    /// "Delivery Type": 1 standard (the default), 2 expedited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2)]
    pub delivery_type: Option<u8>,
}

/// Output of "Create Shipment Request".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateShipmentResult {
    /// "Shipment ID": the fulfiller's id of the new shipment (22-character base58).
    pub shipment_id: String,
    /// "Shipment State ID": its state code (2 = received for a new shipment).
    pub shipment_state_id: u16,
}

impl CreateShipmentRequest {
    /// The fulfiller's `POST /v1/fpr/shipments` body for this input.
    pub fn to_fulfiller(&self) -> CreateFprShipment {
        // Invariant: every field of `CreateFprShipment` has a serde default (the crate
        // documents this so that a missing field reaches `validate`), so `{}` parses.
        #[allow(clippy::expect_used)]
        let mut body: CreateFprShipment =
            serde_json::from_str("{}").expect("every CreateFprShipment field has a default");
        body.delivery_type = self.delivery_type;
        body.recipient = Recipient {
            recipient_company: self.company.clone(),
            recipient_email: self.email.clone(),
            recipient_firstname: self.first_name.clone(),
            recipient_lastname: self.last_name.clone(),
            recipient_telephone: self.phone_number.clone(),
        };
        body.mailing_address = MailingAddress {
            street_line1: self.address.clone(),
            street_line2: self.apt_or_unit_number.clone(),
            street_line3: String::new(),
            city: self.city.clone(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone(),
            country_code_2: self.country_code.clone(),
        };
        body.shipment_items = self.shipment_items.clone();
        body
    }

    /// Every check "Create Shipment Request" makes before calling the fulfiller: the
    /// fulfiller's documented limits (the same functions the fulfiller sandbox
    /// enforces), then each item as "Build Shipment Item" checks it. The first broken
    /// rule is reported, naming this input's field.
    pub fn validate(&self) -> Result<(), CardError> {
        let body = self.to_fulfiller();
        validate::fpr_shipment(&body).map_err(from_validation)?;
        for (i, item) in body.shipment_items.iter().enumerate() {
            check_item(item, |f| {
                let leaf = match f {
                    ItemField::ProductId => "product_id",
                    ItemField::InventoryProductId => "inventory_product_id",
                    ItemField::Quantity => "product_quantity",
                    ItemField::CustomizationId => "customization_id",
                    ItemField::Customizations => "product_customizations",
                    ItemField::PinRequest => "product_customizations[0].fido_pin_request",
                    ItemField::CredentialRequests => {
                        "product_customizations[0].fido_credential_requests"
                    }
                };
                format!("shipment_items[{i}].{leaf}")
            })?;
        }
        Ok(())
    }
}

/// A fulfiller rule broken, named as this card's input names the field.
fn from_validation(e: ValidationError) -> CardError {
    let field = match e.field.wire_name() {
        "recipient_company" => "company",
        "recipient_firstname" => "first_name",
        "recipient_lastname" => "last_name",
        "recipient_email" => "email",
        "recipient_telephone" => "phone_number",
        "street_line1" if matches!(e.problem, Problem::CombinedTooLong(_)) => "apt_or_unit_number",
        "street_line1" | "street_line3" => "address",
        "street_line2" => "apt_or_unit_number",
        "city" => "city",
        "region" => "region",
        "postal_code" => "postal_code",
        "country_code_2" => "country_code",
        "delivery_type" => "delivery_type",
        "shipment_items" => "shipment_items",
        "product_quantity" => "shipment_items[0].product_quantity",
        "customization_id" => "shipment_items[0].customization_id",
        "product_customizations" => "shipment_items[0].product_customizations",
        "fido_pin_request" => "shipment_items[0].product_customizations[0].fido_pin_request",
        "fido_credential_requests" => {
            "shipment_items[0].product_customizations[0].fido_credential_requests"
        }
        other => other,
    };
    CardError::Validation {
        field: field.to_owned(),
        label: e.field.label(),
        message: e.to_string(),
    }
}

/// "Create Shipment Request": validates the input ([`CreateShipmentRequest::validate`])
/// and, only if it passes, sends `POST /v1/fpr/shipments` once (no retry: the create is
/// not idempotent at the fulfiller). Returns the new shipment's id and state id, or the
/// fulfiller's refusal relayed ([`CardError::Refused`]).
pub async fn create_shipment_request(
    fulfiller: &yubienterprise::Client,
    req: &CreateShipmentRequest,
) -> Result<CreateShipmentResult, CardError> {
    req.validate()?;
    let created = fulfiller
        .create_fpr_shipment(&req.to_fulfiller())
        .await
        .map_err(|e| CardError::from_client("creating YED shipment", e))?;
    Ok(CreateShipmentResult {
        shipment_id: created.shipment_id.as_str().to_owned(),
        shipment_state_id: created.shipment_state.shipment_state_id.id(),
    })
}

// ---------------------------------------------------------------------------------
// Get Shipment Details
// ---------------------------------------------------------------------------------

/// One `product_data` entry of "Get Shipment Details" (present from state 103 on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ItemProductData {
    /// "serial": the key's serial number.
    pub serial: String,
    /// "version": its firmware version.
    pub version: String,
    /// "fido_pin_response": the sealed PIN response JWE, for Okta's `/activate`
    /// (`pinResponseJwe`), unchanged.
    pub fido_pin_response: String,
    /// "fido_credential_response": the sealed credential response JWEs, for Okta's
    /// `/activate` (`credResponses[].credResponseJwe`), in request order, unchanged.
    pub fido_credential_response: Vec<String>,
}

/// One shipment item of "Get Shipment Details".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DetailsItem {
    /// "product_data": empty until the key is programmed (state 103 or 104).
    pub product_data: Vec<ItemProductData>,
    /// "product_id".
    pub product_id: u32,
    /// "inventory_product_id".
    pub inventory_product_id: u32,
    /// "product_quantity" (1).
    pub product_quantity: u32,
    /// The customization id (CID).
    pub customization_id: String,
}

/// Output of "Get Shipment Details".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShipmentDetails {
    /// The shipment asked about.
    pub shipment_id: String,
    /// "Shipment State ID".
    pub shipment_state_id: u16,
    /// The state's text ("Shipped").
    pub shipment_state_message: String,
    /// "Shipment Items".
    pub shipment_items: Vec<DetailsItem>,
}

impl ShipmentDetails {
    /// The first item's first `product_data`, as Yubico's reference flow reads it.
    pub fn product_data(&self) -> Option<&ItemProductData> {
        self.shipment_items.first()?.product_data.first()
    }
}

/// "Get Shipment Details": `GET /v1/fpr/shipments/{id}` at the fulfiller. The id must
/// be a 22-character base58 id (field `shipment_id`); a deleted or unknown shipment is
/// the fulfiller's 404, relayed.
pub async fn get_shipment_details(
    fulfiller: &yubienterprise::Client,
    shipment_id: &str,
) -> Result<ShipmentDetails, CardError> {
    let id = Base58Id::parse(shipment_id).map_err(|_| {
        CardError::invalid(
            "shipment_id",
            "Shipment ID",
            "must be a 22-character YubiEnterprise shipment id",
        )
    })?;
    let s = fulfiller
        .get_fpr_shipment(id.as_str())
        .await
        .map_err(|e| CardError::from_client("reading YED shipment", e))?;
    Ok(ShipmentDetails {
        shipment_id: s.shipment_id.as_str().to_owned(),
        shipment_state_id: s.shipment_state.shipment_state_id.id(),
        shipment_state_message: s.shipment_state.shipment_state_message.clone(),
        shipment_items: s
            .shipment_items
            .iter()
            .map(|i| DetailsItem {
                product_data: i
                    .product_data
                    .iter()
                    .flatten()
                    .map(|p| ItemProductData {
                        serial: p.serial_number.clone(),
                        version: p.firmware_version.clone(),
                        fido_pin_response: p.fido_pin_response.clone(),
                        fido_credential_response: p.fido_credential_responses.clone(),
                    })
                    .collect(),
                product_id: i.product_id,
                inventory_product_id: i.inventory_product_id,
                product_quantity: i.product_quantity,
                customization_id: i.customization_id.clone(),
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------------
// Get Public Transport Keys and Signing Certificate
// ---------------------------------------------------------------------------------

/// Output of "Get Public Transport Keys and Signing Certificate".
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct YubicoKeys {
    /// "Transport Keys - JWKS": P-384 `use: enc` keys; Okta's `/enroll` takes one of
    /// them as `yubicoTransportKeyJWK`.
    #[schema(value_type = JwksSchema)]
    pub transport_keys_jwks: envelope::Jwks,
    /// "Signing Public Keys - JWKS": P-384 `use: sig` keys; Okta's `/activate` takes
    /// their `keys` as `yubicoSigningJwks`.
    #[schema(value_type = JwksSchema)]
    pub signing_public_keys_jwks: envelope::Jwks,
}

/// A JWKS of public P-384 keys (RFC 7517).
#[derive(ToSchema)]
#[schema(as = Jwks)]
#[allow(dead_code)] // A schema only: the keys are `envelope::Jwks`.
pub struct JwksSchema {
    /// The keys (`kty` EC, `crv` P-384, `x`, `y`, `kid`, `use`).
    keys: Vec<serde_json::Value>,
}

/// "Get Public Transport Keys and Signing Certificate": both JWKS from the
/// fulfiller's `/.well-known/` (no token needed), fetched together. A JWKS that is not
/// valid public P-384 keys is refused ([`CardError::Unavailable`]).
pub async fn get_keys(fulfiller: &yubienterprise::Client) -> Result<YubicoKeys, CardError> {
    let (t, s) = tokio::join!(fulfiller.transport_keys(), fulfiller.signing_keys());
    Ok(YubicoKeys {
        transport_keys_jwks: t
            .map_err(|e| CardError::from_client("fetching Yubico transport keys", e))?,
        signing_public_keys_jwks: s
            .map_err(|e| CardError::from_client("fetching Yubico signing keys", e))?,
    })
}

/// "Get Public Transport Keys and Signing Certificate" from explicit JWKS URLs (the
/// guide's `YE_JWKS_TRANSPORT_ENDPOINT` and `YE_JWKS_SIGN_ENDPOINT`), fetched together
/// with `http`. A non-2xx answer or a JWKS that is not valid public P-384 keys is
/// [`CardError::Unavailable`], naming the URL.
pub async fn get_keys_at(
    http: &reqwest::Client,
    transport_url: &str,
    signing_url: &str,
) -> Result<YubicoKeys, CardError> {
    let (t, s) = tokio::join!(
        fetch_jwks(http, transport_url, "fetching Yubico transport keys"),
        fetch_jwks(http, signing_url, "fetching Yubico signing keys"),
    );
    Ok(YubicoKeys {
        transport_keys_jwks: t?,
        signing_public_keys_jwks: s?,
    })
}

/// The most a JWKS document may be: 256 KiB.
const MAX_JWKS: usize = 256 * 1024;

async fn fetch_jwks(
    http: &reqwest::Client,
    url: &str,
    context: &'static str,
) -> Result<envelope::Jwks, CardError> {
    let unavailable = |message: String| CardError::Unavailable { context, message };
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| unavailable(format!("calling {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(unavailable(format!("{url} answered {status}")));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| unavailable(format!("reading {url}: {e}")))?;
    if body.len() > MAX_JWKS {
        return Err(unavailable(format!(
            "{url} answered more than {MAX_JWKS} bytes"
        )));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| unavailable(format!("{url} answered a body that is not UTF-8")))?;
    envelope::Jwks::parse(text)
        .map_err(|e| unavailable(format!("{url} is not a JWKS of public P-384 keys: {e}")))
}

// ---------------------------------------------------------------------------------
// Where the fulfiller is
// ---------------------------------------------------------------------------------

/// The fulfiller settings the cards need, with the guide's names: `YE_API_BASE_URL`,
/// `YED_API_TOKEN`, `YE_JWKS_TRANSPORT_ENDPOINT`, `YE_JWKS_SIGN_ENDPOINT`. `Debug`
/// hides the token.
#[derive(Clone)]
pub struct FulfillerSettings {
    /// `YE_API_BASE_URL`, e.g. `https://api.console.yubico.com/v1`.
    pub api_base_url: Option<String>,
    /// `YED_API_TOKEN`.
    pub token: Option<secrecy::SecretString>,
    /// `YE_JWKS_TRANSPORT_ENDPOINT`.
    pub jwks_transport_endpoint: Option<String>,
    /// `YE_JWKS_SIGN_ENDPOINT`.
    pub jwks_sign_endpoint: Option<String>,
}

impl std::fmt::Debug for FulfillerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FulfillerSettings")
            .field("api_base_url", &self.api_base_url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("jwks_transport_endpoint", &self.jwks_transport_endpoint)
            .field("jwks_sign_endpoint", &self.jwks_sign_endpoint)
            .finish()
    }
}

impl FulfillerSettings {
    /// From a connector configuration (`prereg serve --config`): all four are set.
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            api_base_url: Some(c.ye_api_base_url.clone()),
            token: Some(c.yed_api_token.clone()),
            jwks_transport_endpoint: Some(c.ye_jwks_transport_endpoint.clone()),
            jwks_sign_endpoint: Some(c.ye_jwks_sign_endpoint.clone()),
        }
    }

    /// From environment variables with the guide's names (`var` looks one up; blank
    /// counts as unset).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        Self {
            api_base_url: get("YE_API_BASE_URL"),
            token: get("YED_API_TOKEN").map(secrecy::SecretString::from),
            jwks_transport_endpoint: get("YE_JWKS_TRANSPORT_ENDPOINT"),
            jwks_sign_endpoint: get("YE_JWKS_SIGN_ENDPOINT"),
        }
    }

    /// The fulfiller API client ("Create Shipment Request", "Get Shipment Details").
    /// Fails naming the missing or insecure setting (`https://`; `http://` only to a
    /// loopback host, as in the connector's configuration).
    pub fn client(&self) -> Result<yubienterprise::Client, String> {
        let base = self
            .api_base_url
            .as_deref()
            .ok_or("YE_API_BASE_URL is not set (the fulfiller API base URL, ending in /v1)")?;
        secure("YE_API_BASE_URL", base)?;
        if let Some(t) = &self.jwks_transport_endpoint {
            secure("YE_JWKS_TRANSPORT_ENDPOINT", t)?;
        }
        let token = self
            .token
            .clone()
            .ok_or("YED_API_TOKEN is not set (the YubiEnterprise API token)")?;
        let keys_base = self
            .jwks_transport_endpoint
            .as_deref()
            .and_then(|t| t.split("/.well-known/").next())
            .unwrap_or(base);
        yubienterprise::Client::new(base, keys_base, token).map_err(|e| e.to_string())
    }

    /// The two JWKS URLs ("Get Public Transport Keys and Signing Certificate"; no token
    /// needed). Fails naming the missing setting.
    pub fn jwks_urls(&self) -> Result<(&str, &str), String> {
        let t = self
            .jwks_transport_endpoint
            .as_deref()
            .ok_or("YE_JWKS_TRANSPORT_ENDPOINT is not set (the Yubico transport keys JWKS URL)")?;
        let s = self
            .jwks_sign_endpoint
            .as_deref()
            .ok_or("YE_JWKS_SIGN_ENDPOINT is not set (the Yubico signing keys JWKS URL)")?;
        secure("YE_JWKS_TRANSPORT_ENDPOINT", t)?;
        secure("YE_JWKS_SIGN_ENDPOINT", s)?;
        Ok((t, s))
    }
}

/// `url` (the setting `name`) as [`engine::config::secure_url`] allows it.
fn secure(name: &str, url: &str) -> Result<(), String> {
    engine::config::secure_url(url)
        .map(|_| ())
        .map_err(|p| format!("{name}: {p}"))
}

// ---------------------------------------------------------------------------------
// HTTP routes
// ---------------------------------------------------------------------------------

/// The cards' routes, JWT-authenticated like the rest of the API; success bodies are
/// `{"data": <card output>}`:
/// - `POST /v1/yubico/shipments`: "Create Shipment Request" (201);
/// - `GET /v1/yubico/shipments/{id}`: "Get Shipment Details";
/// - `POST /v1/yubico/shipment-items`: "Build Shipment Item";
/// - `GET /v1/yubico/keys`: "Get Public Transport Keys and Signing Certificate".
///
/// The body limit is the router's, on every route ([`crate::edge`]).
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(api_create))
        .routes(routes!(api_details))
        .routes(routes!(api_build))
        .routes(routes!(api_keys))
}

/// `{"data": <Create Shipment Request's output>}`.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only.
pub struct CreatedShipmentAnswer {
    /// The new shipment.
    data: CreateShipmentResult,
}

/// `{"data": <Get Shipment Details' output>}`.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only.
pub struct ShipmentDetailsAnswer {
    /// The shipment.
    data: ShipmentDetails,
}

/// `{"data": <Build Shipment Item's output>}`.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only.
pub struct BuiltShipmentItemAnswer {
    /// The item.
    data: BuiltShipmentItem,
}

/// `{"data": <the two JWKS>}`.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only.
pub struct YubicoKeysAnswer {
    /// The keys.
    data: YubicoKeys,
}

/// An endpoint's failure: the caller's token ([`ApiError`]) or the card's.
enum Failure {
    Api(ApiError),
    Card(CardError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<CardError> for Failure {
    fn from(e: CardError) -> Self {
        Self::Card(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Card(e) => e.into_response(),
        }
    }
}

/// Parses a JSON body; a body that is not the input's shape is a validation error
/// that names the field: serde names unknown and missing ones ("unknown field
/// `phone_numbr`", "missing field `product_id`"); for a value of the wrong type the
/// field is found by leaving each top-level field out in turn.
pub fn parse_input<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CardError> {
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let field = field_of_serde_error(&text)
            .or_else(|| culprit::<T>(body))
            .unwrap_or_else(|| "body".to_owned());
        CardError::Validation {
            field,
            label: "Body",
            message: format!("The body is not valid input: {text}"),
        }
    })
}

/// The top-level field whose removal makes the body parse (or merely miss that field).
fn culprit<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<String> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    // The inputs have a dozen fields; a body with many more is not worth the search.
    if map.len() > 32 {
        return None;
    }
    map.keys().find_map(|k| {
        let mut without = map.clone();
        without.remove(k);
        match serde_json::from_value::<T>(Value::Object(without)) {
            Ok(_) => Some(k.clone()),
            Err(e) if field_of_serde_error(&e.to_string()).as_deref() == Some(k) => Some(k.clone()),
            Err(_) => None,
        }
    })
}

/// The field a serde_json message names (`unknown field `x``, `missing field `x``).
fn field_of_serde_error(text: &str) -> Option<String> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    let name = &text[start..start + len];
    (text.contains("field") && !name.is_empty()).then(|| name.to_owned())
}

/// `POST /v1/yubico/shipments`: "Create Shipment Request".
#[utoipa::path(
    post,
    path = "/v1/yubico/shipments",
    operation_id = "card_create_shipment",
    tag = "cards",
    summary = "Action card Create Shipment Request (docs/yubico-cards.md)",
    security(("bearer" = [])),
    request_body(content = CreateShipmentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created at the fulfiller", body = CreatedShipmentAnswer),
        (status = 400, description = "`api_error` `validation` (`error_data.field` names the input) or `ye_error` (the fulfiller refused; its error body relayed)", body = ErrorBody),
        (status = 404, description = "`ye_error`: the fulfiller answered 404", body = ErrorBody),
        (status = 409, description = "`ye_error`: the fulfiller answered 409", body = ErrorBody),
        (status = 413, description = "The body is larger than `max_body_bytes`"),
        (status = 429, description = "`ye_error`: the fulfiller rate-limited (`Retry-After`)", body = ErrorBody),
        (status = 502, description = "`api_error` `fulfiller_unavailable`, or `ye_error` for another fulfiller status", body = ErrorBody),
    )
)]
async fn api_create(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Value>), Failure> {
    let req: CreateShipmentRequest = parse_input(&body)?;
    let out = create_shipment_request(&s.fulfiller, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({"data": out}))))
}

/// `GET /v1/yubico/shipments/{id}`: "Get Shipment Details".
#[utoipa::path(
    get,
    path = "/v1/yubico/shipments/{id}",
    operation_id = "card_get_shipment_details",
    tag = "cards",
    summary = "Action card Get Shipment Details",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The fulfiller's shipment id (22-character Base58)")),
    responses(
        (status = 200, description = "The shipment; `product_data` once the key is programmed", body = ShipmentDetailsAnswer),
        (status = 400, description = "`api_error` `validation`: not a shipment id; or `ye_error`", body = ErrorBody),
        (status = 404, description = "`ye_error`: no such shipment at the fulfiller", body = ErrorBody),
        (status = 409, description = "`ye_error`: the fulfiller answered 409", body = ErrorBody),
        (status = 429, description = "`ye_error`: the fulfiller rate-limited (`Retry-After`)", body = ErrorBody),
        (status = 502, description = "`api_error` `fulfiller_unavailable`, or `ye_error` for another fulfiller status", body = ErrorBody),
    )
)]
async fn api_details(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, Failure> {
    let out = get_shipment_details(&s.fulfiller, &id).await?;
    Ok(axum::Json(json!({"data": out})))
}

/// `POST /v1/yubico/shipment-items`: "Build Shipment Item".
#[utoipa::path(
    post,
    path = "/v1/yubico/shipment-items",
    operation_id = "card_build_shipment_item",
    tag = "cards",
    summary = "Action card Build Shipment Item",
    security(("bearer" = [])),
    request_body(content = BuildShipmentItem, content_type = "application/json"),
    responses(
        (status = 200, description = "The item, as the fulfiller takes it", body = BuiltShipmentItemAnswer),
        (status = 400, description = "`api_error` `validation` (`error_data.field` names the input)", body = ErrorBody),
        (status = 413, description = "The body is larger than `max_body_bytes`"),
    )
)]
async fn api_build(_c: Caller, body: Bytes) -> Result<axum::Json<Value>, Failure> {
    let input: BuildShipmentItem = parse_input(&body)?;
    let item = build_shipment_item(&input)?;
    Ok(axum::Json(
        json!({"data": BuiltShipmentItem { shipment_item: item }}),
    ))
}

/// `GET /v1/yubico/keys`: "Get Public Transport Keys and Signing Certificate".
#[utoipa::path(
    get,
    path = "/v1/yubico/keys",
    operation_id = "card_get_keys",
    tag = "cards",
    summary = "Action card Get Public Transport Keys and Signing Certificate",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Both JWKS", body = YubicoKeysAnswer),
        (status = 502, description = "`api_error` `fulfiller_unavailable`: a JWKS could not be fetched or is not public P-384 keys", body = ErrorBody),
    )
)]
async fn api_keys(
    State(s): State<Arc<AppState>>,
    _c: Caller,
) -> Result<axum::Json<Value>, Failure> {
    let out = get_keys_at(
        &s.http,
        &s.config.ye_jwks_transport_endpoint,
        &s.config.ye_jwks_sign_endpoint,
    )
    .await?;
    Ok(axum::Json(json!({"data": out})))
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(u64),
    Str(String),
}

/// A number, or a string of digits (Okta's fulfilment data carries ids as strings).
fn u32_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match NumOrString::deserialize(d)? {
        NumOrString::Num(n) => u32::try_from(n).map_err(serde::de::Error::custom),
        NumOrString::Str(s) => s
            .trim()
            .parse::<u32>()
            .map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_jwe_shape() {
        assert!(is_compact_jwe("eyJh.a.b.c.d"));
        assert!(is_compact_jwe("eyJh..b.c.d"));
        assert!(!is_compact_jwe("eyJh.a.b.c"));
        assert!(!is_compact_jwe(" eyJh.a.b.c.d"));
        assert!(!is_compact_jwe(".a.b.c.d"));
    }

    #[test]
    fn serde_field_is_named() {
        let e = parse_input::<BuildShipmentItem>(br#"{"product_id":1}"#).unwrap_err();
        assert_eq!(e.field(), Some("inventory_product_id"));
        let e = parse_input::<CreateShipmentRequest>(br#"{"phone_numbr":"1"}"#).unwrap_err();
        assert_eq!(e.field(), Some("phone_numbr"));
        let e = parse_input::<CreateShipmentRequest>(br#"{"company":"C","delivery_type":"fast"}"#)
            .unwrap_err();
        assert_eq!(e.field(), Some("delivery_type"), "{e}");
        let e = parse_input::<BuildShipmentItem>(
            br#"{"customization_id":"C","product_id":"one","inventory_product_id":1}"#,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("product_id"), "{e}");
        let e =
            parse_input::<CreateShipmentRequest>(br#"{"shipment_items":[{"product_id":true}]}"#)
                .unwrap_err();
        assert_eq!(e.field(), Some("shipment_items"), "{e}");
        let e = parse_input::<CreateShipmentRequest>(b"[1]").unwrap_err();
        assert_eq!(e.field(), Some("body"), "{e}");
    }
}
