//! The error bodies of the guide's API reference: `api_error` (our validation and our
//! own failures), `ye_error` (the fulfiller refused, with its `error_data`) and
//! `idp_error` (the identity provider).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything an endpoint can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input: 400 `api_error`, `error_type: validation`.
    #[error("{0}")]
    Validation(String),
    /// The fulfiller refused the shipment: 400 `ye_error`.
    #[error("fulfiller refused: {code}: {message}")]
    Fulfiller {
        /// The fulfiller's error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The identity provider does not know the user (or refuses): 400 `idp_error`.
    #[error("{0}")]
    Idp(String),
    /// The identity provider could not be reached: 502 `idp_error`.
    #[error("{0}")]
    IdpUnavailable(String),
    /// The fulfiller could not be reached; the request is kept and retried: 503.
    #[error("{message}")]
    FulfillerUnavailable {
        /// What happened.
        message: String,
        /// The connector's id for the kept request.
        request_id: String,
    },
    /// Missing or bad bearer token: 401.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token without the required app role or scope: 403.
    #[error("{0}")]
    Forbidden(String),
    /// No such request: 404.
    #[error("{0}")]
    NotFound(String),
    /// The request is not in a state that allows this: 409.
    #[error("{0}")]
    Conflict(String),
    /// The PIN was purged (retention ended, acknowledged, request deleted): 409 with
    /// `error_type: pin_purged`, the reason and the date.
    #[error("{message}")]
    PinPurged {
        /// Why and what to do.
        message: String,
        /// `retention`, `acknowledged`, `deleted`, `not_retained` or `cleanup`.
        reason: String,
        /// When (RFC 3339).
        purged_at: String,
    },
    /// The request body is larger than `max_body_bytes`: 413 `api_error`,
    /// `error_type: payload_too_large`.
    #[error("{0}")]
    TooLarge(String),
    /// The body is not sent in the media type the route reads: 415 `api_error`,
    /// `error_type: unsupported_media_type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Our own failure (database, crypto). Logged; the body says only that.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::Fulfiller { .. } | Self::Idp(_) => StatusCode::BAD_REQUEST,
            Self::IdpUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::FulfillerUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::PinPurged { .. } => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An internal error from anything displayable (already free of secrets).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<engine::ServiceError> for ApiError {
    fn from(e: engine::ServiceError) -> Self {
        use engine::ServiceError as E;
        match e {
            E::Validation(m) => Self::Validation(m),
            E::Fulfiller { code, message } => Self::Fulfiller { code, message },
            E::Idp(m) => Self::Idp(m),
            E::IdpUnavailable(m) => Self::IdpUnavailable(m),
            E::FulfillerUnavailable {
                message,
                request_id,
            } => Self::FulfillerUnavailable {
                message,
                request_id,
            },
            E::NotFound(m) => Self::NotFound(m),
            E::Conflict(m) => Self::Conflict(m),
            E::PinPurged {
                message,
                reason,
                purged_at,
            } => Self::PinPurged {
                message,
                reason,
                purged_at,
            },
            E::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<engine::intake::IntakeError> for ApiError {
    fn from(e: engine::intake::IntakeError) -> Self {
        e.error.into()
    }
}

impl From<engine::groups::ReconcileError> for ApiError {
    fn from(e: engine::groups::ReconcileError) -> Self {
        use engine::groups::ReconcileError as E;
        match e {
            E::Off(m) => Self::NotFound(m),
            E::Idp(m) => Self::IdpUnavailable(m),
            E::Store(m) => Self::Internal(m),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}

fn api_error(status: StatusCode, message: &str, error_type: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "error_code": "api_error",
            "error_message": message,
            "error_data": {"error_type": error_type},
        })),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Validation(m) => api_error(self.status(), m, "validation"),
            Self::Fulfiller { code, message } => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "error_code": "ye_error",
                    "error_message": "Validation error when creating YED shipment",
                    "error_data": {"code": code, "message": message},
                })),
            )
                .into_response(),
            Self::Idp(m) => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error_code": "idp_error", "error_message": m})),
            )
                .into_response(),
            Self::IdpUnavailable(m) => (
                StatusCode::BAD_GATEWAY,
                axum::Json(json!({"error_code": "idp_error", "error_message": m})),
            )
                .into_response(),
            Self::FulfillerUnavailable {
                message,
                request_id,
            } => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({
                    "error_code": "api_error",
                    "error_message": message,
                    "error_data": {"error_type": "fulfiller_unavailable", "request_id": request_id},
                })),
            )
                .into_response(),
            Self::Unauthorized(m) => {
                let mut r = api_error(StatusCode::UNAUTHORIZED, m, "unauthorized");
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Self::Forbidden(m) => api_error(StatusCode::FORBIDDEN, m, "forbidden"),
            Self::NotFound(m) => api_error(StatusCode::NOT_FOUND, m, "not_found"),
            Self::Conflict(m) => api_error(StatusCode::CONFLICT, m, "conflict"),
            Self::TooLarge(m) => api_error(StatusCode::PAYLOAD_TOO_LARGE, m, "payload_too_large"),
            Self::UnsupportedMediaType(m) => api_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                m,
                "unsupported_media_type",
            ),
            Self::PinPurged {
                message,
                reason,
                purged_at,
            } => (
                StatusCode::CONFLICT,
                axum::Json(json!({
                    "error_code": "api_error",
                    "error_message": message,
                    "error_data": {"error_type": "pin_purged", "reason": reason, "purged_at": purged_at},
                })),
            )
                .into_response(),
            Self::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                api_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the connector's log",
                    "internal",
                )
            }
        }
    }
}
