//! `POST /v1/fprRequest` (the guide's body) and `POST /v1/fpr/shipments` (the newer
//! form: `user_id` as object id or UPN, PIN length 4-63, `enrollment_contacts`).
//!
//! The handlers parse and validate a body into an [`engine::intake::Order`] (nothing
//! written; every error names the field) and hand it to [`engine::intake::create`],
//! which reads the user from Graph, seals, records the intent and creates the shipment
//! at the fulfiller (the CSV batch, `POST /v1/batch`, calls the same service).

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{Created, ErrorBody};
use crate::app::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use engine::intake::{self, Contact, Duplicates, Intake, Item, Order, Via};
use envelope::PinChoice;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;
use yubienterprise::fpr::{MailingAddress, Recipient};

/// Which create endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `/v1/fprRequest`: PIN 4-8.
    Guide,
    /// `/v1/fpr/shipments`: PIN 4-63, `enrollment_contacts`.
    Newer,
}

/// The request body (closed schema: unknown members are refused). Its schema is the
/// newer form's (`POST /v1/fpr/shipments`); the guide's form has [`GuideCreateBody`].
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Entra object id or UPN.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_.@'-]+$")]
    pub user_id: String,
    /// How the PIN is chosen.
    pub pin_request: PinBody,
    /// The shipment.
    pub yubico_shipment_request: ShipmentBody,
    /// Newer form: who receives the PIN.
    #[serde(default)]
    pub enrollment_contacts: Option<Contacts>,
}

/// `enrollment_contacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    /// Addresses that receive the PIN instead of the manager.
    #[serde(default)]
    pub emails_to: Vec<String>,
}

/// `pin_request` (newer form: 4-63). `generate` takes only `length`, `static` only
/// `value`, `none` nothing. `Debug` never prints the value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    /// generate, static or none.
    #[serde(rename = "type")]
    #[schema(value_type = PinType)]
    pub kind: String,
    /// For generate: the PIN's length.
    #[serde(default)]
    #[schema(minimum = 4, maximum = 63)]
    pub length: Option<u32>,
    /// For static: the PIN.
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 4, max_length = 63)]
    pub value: Option<envelope::Pin>,
}

/// How the PIN is chosen.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PinType {
    /// The key makes one of `length` digits.
    Generate,
    /// The caller gives it (`value`).
    Static,
    /// No PIN set before shipping.
    None,
}

/// The guide's body (`POST /v1/fprRequest`), for the document: as [`CreateBody`] with
/// the guide's rules (the Entra object id, a PIN of 4-8 letters and digits, the
/// recipient and address required). The handler parses [`CreateBody`] and applies them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuideCreateBody {
    /// The user's Entra object id.
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_.'-]+$")]
    pub user_id: String,
    /// How the PIN is chosen (4-8).
    pub pin_request: GuidePinBody,
    /// The shipment.
    pub yubico_shipment_request: GuideShipmentBody,
    /// Who receives the PIN instead of the manager.
    #[serde(default)]
    pub enrollment_contacts: Option<Contacts>,
}

/// The guide's `pin_request`: 4-8, a static PIN letters and digits only.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuidePinBody {
    /// generate, static or none.
    #[serde(rename = "type")]
    pub kind: PinType,
    /// For generate: the PIN's length.
    #[serde(default)]
    #[schema(minimum = 4, maximum = 8)]
    pub length: Option<u32>,
    /// For static: the PIN.
    #[serde(default)]
    #[schema(min_length = 4, max_length = 8, pattern = "^[A-Za-z0-9]+$")]
    pub value: Option<String>,
}

/// The guide's `yubico_shipment_request`: recipient and address required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuideShipmentBody {
    /// 1 standard, 2 expedited.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2)]
    pub delivery_type: Option<u8>,
    /// The recipient.
    pub recipient: RecipientBody,
    /// The address.
    pub mailing_address: AddressBody,
    /// Exactly one item.
    #[schema(min_items = 1, max_items = 1)]
    pub shipment_items: Vec<ItemBody>,
    /// The reseller's organisation (22-character Base58), passed to the fulfiller.
    #[serde(default)]
    #[schema(pattern = "^[1-9A-HJ-NP-Za-km-z]{22}$")]
    pub reseller_organization_id: Option<String>,
    /// Skip the fulfiller's address validation, passed to it.
    #[serde(default)]
    pub address_validation_bypass: Option<bool>,
}

impl std::fmt::Debug for PinBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinBody")
            .field("kind", &self.kind)
            .field("length", &self.length)
            .field("value", &self.value.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// `yubico_shipment_request`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentBody {
    /// 1 standard, 2 expedited.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2)]
    pub delivery_type: Option<u8>,
    /// Recipient (newer form: optional, filled from Entra when absent).
    #[serde(default)]
    pub recipient: Option<RecipientBody>,
    /// Address (newer form: optional, filled from Entra when absent).
    #[serde(default)]
    pub mailing_address: Option<AddressBody>,
    /// Exactly one item.
    #[schema(min_items = 1, max_items = 1)]
    pub shipment_items: Vec<ItemBody>,
    /// Yubico's newer body: the reseller's organisation (22-character Base58), passed to
    /// the fulfiller.
    #[serde(default)]
    #[schema(pattern = "^[1-9A-HJ-NP-Za-km-z]{22}$")]
    pub reseller_organization_id: Option<String>,
    /// Yubico's newer body: skip the fulfiller's address validation, passed to it.
    #[serde(default)]
    pub address_validation_bypass: Option<bool>,
}

/// `recipient` (closed); the fulfiller's limits apply (docs/connector.md).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientBody {
    /// Required by the fulfiller, at most 20.
    #[serde(default)]
    #[schema(max_length = 20)]
    recipient_company: String,
    /// At most 80; receives the tracking number (and the PIN when no manager).
    #[serde(default)]
    #[schema(max_length = 80)]
    recipient_email: String,
    /// At most 15.
    #[serde(default)]
    #[schema(max_length = 15)]
    recipient_firstname: String,
    /// At most 20.
    #[serde(default)]
    #[schema(max_length = 20)]
    recipient_lastname: String,
    /// Required, at most 40 of `0-9+-( )` (255 when the country is IN).
    #[serde(default)]
    #[schema(max_length = 255)]
    recipient_telephone: String,
}

/// `mailing_address` (closed); the fulfiller's limits apply.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    /// Required, at most 60 (both lines at most 120).
    #[serde(default)]
    #[schema(max_length = 60)]
    street_line1: String,
    /// At most 60.
    #[serde(default)]
    #[schema(max_length = 60)]
    street_line2: String,
    /// Required, at most 60.
    #[serde(default)]
    #[schema(max_length = 60)]
    city: String,
    /// At most 50; a 2-letter code, required, for US and CA.
    #[serde(default)]
    #[schema(max_length = 50)]
    region: String,
    /// Required.
    #[serde(default)]
    postal_code: String,
    /// Required: the 2-letter ISO code.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z]{2}$")]
    country_code_2: String,
}

impl From<RecipientBody> for Recipient {
    fn from(r: RecipientBody) -> Self {
        Self {
            recipient_company: r.recipient_company,
            recipient_email: r.recipient_email,
            recipient_firstname: r.recipient_firstname,
            recipient_lastname: r.recipient_lastname,
            recipient_telephone: r.recipient_telephone,
        }
    }
}

impl From<AddressBody> for MailingAddress {
    fn from(a: AddressBody) -> Self {
        Self {
            street_line1: a.street_line1,
            street_line2: a.street_line2,
            street_line3: String::new(),
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country_code_2: a.country_code_2,
        }
    }
}

/// One `shipment_items[]` entry (closed).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    /// The YubiKey model (`GET /v1/products` at the fulfiller).
    #[schema(value_type = u64, maximum = 4294967295_u64)]
    product_id: u32,
    /// The inventory bucket.
    #[schema(value_type = u64, maximum = 4294967295_u64)]
    inventory_product_id: u32,
    /// One key per shipment.
    #[schema(minimum = 1, maximum = 1)]
    product_quantity: u32,
    /// The organisation's customization (CID).
    #[schema(min_length = 1)]
    customization_id: String,
}

/// Parses and validates a body: every error names the field.
pub fn parse(form: Form, bytes: &[u8]) -> Result<Order, ApiError> {
    let body: CreateBody = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Validation(format!("invalid request body: {e}")))?;
    let user_id = body.user_id.trim().to_owned();
    let id_ok = !user_id.is_empty()
        && user_id.len() <= 256
        && user_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@'".contains(c));
    if !id_ok || (form == Form::Guide && user_id.contains('@')) {
        return Err(ApiError::Validation(match form {
            Form::Guide => "`user_id` must be the user's Entra object id".into(),
            Form::Newer => "`user_id` must be the user's Entra object id or UPN".into(),
        }));
    }
    let max = match form {
        Form::Guide => 8,
        Form::Newer => 63,
    };
    let (pin, min_pin_length) = pin_choice(&body.pin_request, max, form == Form::Guide)?;
    let s = body.yubico_shipment_request;
    let reseller_organization_id = s
        .reseller_organization_id
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if let Some(r) = &reseller_organization_id
        && yubienterprise::Base58Id::parse(r).is_err()
    {
        return Err(ApiError::Fulfiller {
            code: "validation_error".into(),
            message: format!(
                "reseller_organization_id: must be a 22-character Base58 organization ID, not {r:?}"
            ),
        });
    }
    let [item] = <[ItemBody; 1]>::try_from(s.shipment_items)
        .map_err(|_| ApiError::Validation("`shipment_items` must hold exactly one item".into()))?;
    if item.product_quantity != 1 {
        return Err(ApiError::Validation(
            "`product_quantity` must be 1 (one key per shipment)".into(),
        ));
    }
    if item.customization_id.trim().is_empty() {
        return Err(ApiError::Validation(
            "`customization_id` is required".into(),
        ));
    }
    if form == Form::Guide && (s.recipient.is_none() || s.mailing_address.is_none()) {
        return Err(ApiError::Validation(
            "`recipient` and `mailing_address` are required".into(),
        ));
    }
    let recipient = s.recipient.map(Recipient::from);
    let address = s.mailing_address.map(MailingAddress::from);
    let emails_to = body
        .enrollment_contacts
        .map(|c| c.emails_to)
        .unwrap_or_default();
    let order = Order {
        user: user_id,
        pin,
        min_pin_length,
        contact: Contact::whole(recipient, address),
        delivery_type: s.delivery_type,
        item: Item {
            product_id: item.product_id,
            inventory_product_id: item.inventory_product_id,
            customization_id: item.customization_id,
        },
        emails_to,
        reseller_organization_id,
        address_validation_bypass: s.address_validation_bypass,
        via: Via::Api,
        keys: 1,
    };
    // The fulfiller's own rules (checked before anything is written; answered in the
    // fulfiller's shape so a caller sees the same error either way), then the PIN
    // contacts.
    order.check()?;
    Ok(order)
}

/// The PIN choice of a `pin_request` (generate 4-`max` digits, static 4-`max`
/// characters, letters and digits only when `alnum_only`, or none) and the minimum PIN
/// length the key is to enforce.
pub(crate) fn pin_choice(
    p: &PinBody,
    max: u32,
    alnum_only: bool,
) -> Result<(PinChoice, u8), ApiError> {
    Ok(match (p.kind.as_str(), p.length, &p.value) {
        ("generate", Some(n), None) => {
            if !(4..=max).contains(&n) {
                return Err(ApiError::Validation(format!(
                    "PIN `length` must be between 4 and {max}"
                )));
            }
            let n = u8::try_from(n).unwrap_or(8);
            (PinChoice::Generate { length: n }, n)
        }
        ("generate", None, _) => {
            return Err(ApiError::Validation(
                "PIN `length` is required when `type` is generate".into(),
            ));
        }
        ("static", None, Some(v)) => {
            let n = v.expose().chars().count();
            let alnum = v.expose().chars().all(|c| c.is_ascii_alphanumeric());
            if !(4..=max as usize).contains(&n) || (alnum_only && !alnum) {
                return Err(ApiError::Validation(format!(
                    "PIN `value` must be 4 to {max} alphanumeric characters"
                )));
            }
            (
                PinChoice::Static { value: v.clone() },
                u8::try_from(n).unwrap_or(4),
            )
        }
        ("static", _, None) => {
            return Err(ApiError::Validation(
                "PIN `value` is required when `type` is static".into(),
            ));
        }
        ("none", None, None) => (PinChoice::None, 4),
        ("generate" | "static" | "none", _, _) => {
            return Err(ApiError::Validation(
                "`pin_request`: generate takes only `length`, static only `value`, none nothing"
                    .into(),
            ));
        }
        _ => {
            return Err(ApiError::Validation(
                "PIN `type` must be generate, static or none".into(),
            ));
        }
    })
}

/// `POST /v1/fprRequest`.
#[utoipa::path(
    post,
    path = "/v1/fprRequest",
    operation_id = "create_request_guide",
    tag = "entra",
    summary = "Create a request (the guide's form)",
    security(("bearer" = [])),
    request_body(content = GuideCreateBody, content_type = "application/json"),
    params(IdempotencyKey),
    responses(
        (status = 201, description = "Created: the shipment exists at the fulfiller", body = Created),
        (status = 400, description = "`api_error` (validation: wrong types, unknown members, PIN rules, item count), `ye_error` (the fulfiller refused; its `error_data`) or `idp_error` (no such user in Entra)", body = ErrorBody),
        (status = 502, description = "`idp_error`: Microsoft Graph could not be reached", body = ErrorBody),
        (status = 503, description = "`api_error` `fulfiller_unavailable`: the fulfiller did not answer; the request is kept (`error_data.request_id`) and the processor creates the shipment", body = ErrorBody),
    )
)]
pub async fn fpr_request(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create(state, caller, headers, body_bytes(body)?, Form::Guide).await
}

/// `POST /v1/fpr/shipments`.
#[utoipa::path(
    post,
    path = "/v1/fpr/shipments",
    operation_id = "create_request",
    tag = "entra",
    summary = "Create a request (the newer form: UPN, PIN 4-63, contacts, recipient and address from Entra)",
    security(("bearer" = [])),
    request_body(content = CreateBody, content_type = "application/json"),
    params(IdempotencyKey),
    responses(
        (status = 201, description = "Created: the shipment exists at the fulfiller", body = Created),
        (status = 400, description = "`api_error` (validation: wrong types, unknown members, PIN rules, item count), `ye_error` (the fulfiller refused; its `error_data`) or `idp_error` (no such user in Entra)", body = ErrorBody),
        (status = 502, description = "`idp_error`: Microsoft Graph could not be reached", body = ErrorBody),
        (status = 503, description = "`api_error` `fulfiller_unavailable`: the fulfiller did not answer; the request is kept (`error_data.request_id`) and the processor creates the shipment", body = ErrorBody),
    )
)]
pub async fn fpr_shipments(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create(state, caller, headers, body_bytes(body)?, Form::Newer).await
}

/// The `Idempotency-Key` header of the calls that order keys: the create calls, the
/// Okta batch and the CSV batch.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// The same key from the same client app answers with the request it first
    /// created, and never orders a second key; in a batch, per line (the key with the
    /// line's user) (1-255 visible characters).
    #[serde(rename = "Idempotency-Key")]
    #[param(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => {
            ApiError::Validation("request body is too large or could not be read".into())
        }
        other => ApiError::Validation(format!("request body: {other}")),
    })
}

fn created(request_id: &str, shipment_id: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::CREATED,
        Json(json!({"data": {"shipment_id": shipment_id, "request_id": request_id}})),
    )
}

/// The caller's `Idempotency-Key` header, if sent: 1 to 255 visible characters.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .filter(|k| !k.is_empty() && k.len() <= 255)
            .map(|k| Some(k.to_owned()))
            .ok_or_else(|| {
                ApiError::Validation("`Idempotency-Key` must be 1 to 255 visible characters".into())
            }),
    }
}

#[tracing::instrument(skip_all, fields(client_app = %caller.client_app, form = ?form))]
async fn create(
    state: Arc<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
    form: Form,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idem = idempotency_key(&headers)?;
    let once = idem.as_deref().map(|k| (caller.client_app.as_str(), k));
    // A repeated call is answered before its body is read again.
    let done = match intake::replayed(&state, once).await? {
        Some(replay) => replay,
        None => {
            let order = parse(form, &body)?;
            intake::create(&state.services, order, once, Duplicates::Allow).await?
        }
    };
    match done {
        Intake::Created {
            request_id,
            shipment_id,
        }
        | Intake::Replayed {
            request_id,
            shipment_id: Some(shipment_id),
        } => Ok(created(&request_id, &shipment_id)),
        Intake::Replayed {
            request_id,
            shipment_id: None,
        } => Err(ApiError::FulfillerUnavailable {
            message:
                "this request is kept and the shipment is still being created; ask again later"
                    .into(),
            request_id,
        }),
        // Not asked for (`Duplicates::Allow`).
        Intake::AlreadyOpen { request_id } => Err(ApiError::Internal(format!(
            "the intake answered already open ({request_id}) although duplicates are allowed"
        ))),
    }
}
