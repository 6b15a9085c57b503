//! Credential requests, API v2 (docs/credential-requests.md): `POST
//! /v2/credential-requests` orders several keys for one person, each with credentials at
//! Entra, Okta or both; `GET /v2/credential-requests/{id}` answers the status of each
//! key and credential; `DELETE` cancels every key. The handlers parse the body (every error names the member) and
//! call [`engine::credreq`].

use super::auth::Caller;
use super::create::{AddressBody, PinBody, RecipientBody, idempotency_key, pin_choice};
use super::error::ApiError;
use super::openapi::{CredentialRequestAnswer, CredentialRequestDeleted, ErrorBody};
use crate::app::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use engine::credreq::{self, Credential, Key, NewRequest};
use engine::domain::Idp;
use engine::intake::{Contact, Item};
use envelope::PinChoice;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;
use yubienterprise::fpr::{MailingAddress, Recipient};

/// The body of `POST /v2/credential-requests` (closed: unknown members are refused).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequestBody {
    /// The person.
    pub person: PersonBody,
    /// The keys' model, inventory and customization (the same for every key).
    pub product: ProductBody,
    /// 1 to 4 keys, each with its label and credentials.
    #[schema(min_items = 1, max_items = 4)]
    pub keys: Vec<KeyBody>,
    /// The PIN of keys whose PIN the connector delivers (keys with only an Entra
    /// credential; Okta makes and mails the PIN of a key with an Okta credential).
    /// Default: 8 generated digits.
    #[serde(default)]
    pub pin_request: Option<PinBody>,
    /// 1 standard, 2 expedited.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2)]
    pub delivery_type: Option<u8>,
}

/// The person the keys are for, at each identity provider a credential names.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonBody {
    /// Entra object id or UPN (required when a key has an Entra credential).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_.@'-]+$")]
    pub entra_user: Option<String>,
    /// Okta user id or login (required when a key has an Okta credential).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = r"^[A-Za-z0-9_.@'+-]+$")]
    pub okta_user: Option<String>,
    /// The recipient (default: from the identity provider's profile).
    #[serde(default)]
    pub recipient: Option<RecipientBody>,
    /// The address (default: from the identity provider's profile).
    #[serde(default)]
    pub mailing_address: Option<AddressBody>,
    /// Who receives the PINs the connector delivers (default: the Entra manager).
    #[serde(default)]
    pub pin_contacts: Vec<String>,
}

/// The fulfiller's order line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    /// The YubiKey model.
    #[schema(value_type = u64, maximum = 4294967295_u64)]
    pub product_id: u32,
    /// The inventory bucket.
    #[schema(value_type = u64, maximum = 4294967295_u64)]
    pub inventory_product_id: u32,
    /// The organisation's customization (CID).
    #[schema(min_length = 1)]
    pub customization_id: String,
}

/// One key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    /// What the person calls it (`primary`, `backup`): 1-32 letters, digits, spaces,
    /// `_` or `-`, unique in the order; the PIN mail names it.
    #[schema(min_length = 1, max_length = 32)]
    pub label: String,
    /// One credential per identity provider: Entra, Okta, or both.
    #[schema(min_items = 1, max_items = 2)]
    pub credentials: Vec<CredentialBody>,
}

/// One credential of a key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    /// Where the credential is registered.
    pub idp: IdpName,
    /// Its relying parties: Entra's is `login.microsoft.com`; Okta's are of
    /// `okta.rp_ids` (default: all of them).
    #[serde(default)]
    pub rp_ids: Vec<String>,
}

/// An identity provider.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdpName {
    /// Microsoft Entra ID.
    Entra,
    /// Okta.
    Okta,
}

/// Parses and checks the shape of a body (the engine checks it against the
/// configuration): every error names the member.
fn parse(bytes: &[u8]) -> Result<NewRequest, ApiError> {
    let body: CredentialRequestBody = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Validation(format!("invalid request body: {e}")))?;
    let person = body.person;
    let user = |v: Option<String>, name: &str| -> Result<Option<String>, ApiError> {
        match v.map(|u| u.trim().to_owned()) {
            None => Ok(None),
            Some(u)
                if !u.is_empty()
                    && u.len() <= 256
                    && u.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.@'+".contains(c)) =>
            {
                Ok(Some(u))
            }
            Some(_) => Err(ApiError::Validation(format!(
                "`person.{name}` must be the user's id or sign-in name"
            ))),
        }
    };
    let (pin, min_pin_length) = match &body.pin_request {
        Some(p) => pin_choice(p, 63, false)?,
        None => (PinChoice::Generate { length: 8 }, 8),
    };
    let recipient = person.recipient.map(Recipient::from);
    let address = person.mailing_address.map(MailingAddress::from);
    let req = NewRequest {
        entra_user: user(person.entra_user, "entra_user")?,
        okta_user: user(person.okta_user, "okta_user")?,
        item: Item {
            product_id: body.product.product_id,
            inventory_product_id: body.product.inventory_product_id,
            customization_id: body.product.customization_id.trim().to_owned(),
        },
        contact: Contact::whole(recipient, address),
        delivery_type: body.delivery_type,
        pin,
        min_pin_length,
        emails_to: person.pin_contacts,
        keys: body
            .keys
            .into_iter()
            .map(|k| Key {
                label: k.label,
                credentials: k
                    .credentials
                    .into_iter()
                    .map(|c| Credential {
                        idp: match c.idp {
                            IdpName::Entra => Idp::Entra,
                            IdpName::Okta => Idp::Okta,
                        },
                        rp_ids: c.rp_ids,
                    })
                    .collect(),
            })
            .collect(),
    };
    if !matches!(req.delivery_type, None | Some(1 | 2)) {
        return Err(ApiError::Validation(
            "`delivery_type` must be 1 (standard) or 2 (expedited)".into(),
        ));
    }
    Ok(req)
}

/// `POST /v2/credential-requests`.
#[utoipa::path(
    post,
    path = "/v2/credential-requests",
    operation_id = "create_credential_request",
    tag = "credential-requests",
    summary = "Order several keys for one person, each registered at Entra, Okta or both",
    security(("bearer" = [])),
    request_body(content = CredentialRequestBody, content_type = "application/json"),
    params(super::create::IdempotencyKey),
    responses(
        (status = 202, description = "Recorded; each key's request is made (`keys[].state`; a key a vendor outage left `not_ordered` is ordered by sending the same body with the same `Idempotency-Key` again)", body = CredentialRequestAnswer),
        (status = 200, description = "The caller's `Idempotency-Key` made this credential request already (keys still unordered were ordered now)", body = CredentialRequestAnswer),
        (status = 400, description = "`api_error` (validation: the member at fault is named), `ye_error` (the fulfiller refused the first key) or `idp_error` (no such user)", body = ErrorBody),
        (status = 409, description = "`api_error` `conflict`: the person already has an open Okta-mode request for the key", body = ErrorBody),
        (status = 502, description = "`idp_error`: Microsoft Graph or Okta could not be reached; nothing was recorded", body = ErrorBody),
        (status = 503, description = "`api_error` `fulfiller_unavailable`: the fulfiller's keys could not be read; nothing was recorded", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idem = idempotency_key(&headers)?;
    let once = idem.as_deref().map(|k| (caller.client_app.as_str(), k));
    let body = body.map_err(|e| ApiError::Validation(format!("request body: {e}")))?;
    let req = parse(&body)?;
    let done = credreq::create(&state.services, req, once).await?;
    tracing::info!(client_app = %caller.client_app, credential_request = %done.view.id, replayed = done.replayed, "credential request taken");
    let status = if done.replayed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(json!({"data": done.view}))))
}

/// `GET /v2/credential-requests/{id}`.
#[utoipa::path(
    get,
    path = "/v2/credential-requests/{id}",
    operation_id = "get_credential_request",
    tag = "credential-requests",
    summary = "A credential request with the status of each key and credential",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The credential request's id")),
    responses(
        (status = 200, description = "Each key (its request, shipment, serial, PIN delivery) and each credential (`pending`, `registered`, `error`, `deleted`, `not_ordered`)", body = CredentialRequestAnswer),
        (status = 404, description = "`api_error` `not_found`: no such credential request", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = credreq::get(&state.services, &id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("no credential request {id}")))?;
    Ok(Json(json!({"data": view})))
}

/// `DELETE /v2/credential-requests/{id}`.
#[utoipa::path(
    delete,
    path = "/v2/credential-requests/{id}",
    operation_id = "delete_credential_request",
    tag = "credential-requests",
    summary = "Cancel every key of a credential request",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The credential request's id")),
    responses(
        (status = 200, description = "Every key deleted, cancelled or never ordered (`results`, one per key)", body = CredentialRequestDeleted),
        (status = 202, description = "As 200, and a key still being created is `cancelling`: the runner deletes what its create made", body = CredentialRequestDeleted),
        (status = 409, description = "A key could not be cancelled (`results[].error`: the fulfiller can no longer cancel it, or did not answer); the others were", body = CredentialRequestDeleted),
        (status = 404, description = "`api_error` `not_found`: no such credential request", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (view, results) = credreq::delete(&state.services, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no credential request {id}")))?;
    tracing::info!(client_app = %caller.client_app, credential_request = %id, "credential request deleted");
    let status = if results.iter().any(|r| r.outcome == "refused") {
        StatusCode::CONFLICT
    } else if results.iter().any(|r| r.outcome == "cancelling") {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"data": view, "results": results}))))
}
