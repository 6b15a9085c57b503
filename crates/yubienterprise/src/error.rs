//! The error body. The real one is **not public** (yubienterprise.md §1); this is the
//! project's documented choice, in the style of the guide's connector error
//! (`"error_data":{"code":"validation_error","message":"Input for Last Name exceeded
//! limit of 20 characters"}`): JSON with a stable `code`, a human `message` that says what
//! to fix, and, for validation errors, the wire `field`.

use serde::{Deserialize, Serialize};

/// The stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a field breaks a documented rule.
    ValidationError,
    /// 400: the body is not JSON of the expected shape.
    InvalidBody,
    /// 400: a path id is not a 22-character base58 id.
    InvalidShipmentId,
    /// 400: the customization id is not the organisation's.
    UnknownCustomization,
    /// 400: the product or inventory bucket does not exist or does not match.
    UnknownProduct,
    /// 400: not enough keys left in the bucket.
    InventoryUnavailable,
    /// 400: `POST /v1/validate-address`: the carrier cannot deliver to the address.
    AddressUndeliverable,
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 404: no such shipment (or deleted).
    NotFound,
    /// 409: the shipment is locked for processing; it can no longer be edited or deleted.
    NotEditable,
    /// 409: a sandbox clock move that the lifecycle does not allow.
    InvalidTransition,
    /// 429: slow down; see `Retry-After`.
    RateLimited,
    /// 500.
    InternalError,
    /// A code this crate does not know.
    #[serde(other)]
    Other,
}

/// The error body: `{"code": "...", "message": "...", "field": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code:?})")]
pub struct ApiError {
    /// Stable, machine-readable.
    pub code: ErrorCode,
    /// For people; never contains a secret.
    pub message: String,
    /// The wire name of the offending field, for validation errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error without a field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> u16 {
        match self.code {
            ErrorCode::ValidationError
            | ErrorCode::InvalidBody
            | ErrorCode::InvalidShipmentId
            | ErrorCode::UnknownCustomization
            | ErrorCode::UnknownProduct
            | ErrorCode::InventoryUnavailable
            | ErrorCode::AddressUndeliverable => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::NotEditable | ErrorCode::InvalidTransition => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::InternalError | ErrorCode::Other => 500,
        }
    }
}

impl From<crate::validate::ValidationError> for ApiError {
    fn from(e: crate::validate::ValidationError) -> Self {
        Self {
            code: ErrorCode::ValidationError,
            message: e.to_string(),
            field: Some(e.field.wire_name().to_owned()),
        }
    }
}
