//! The services' error: one vocabulary for why an action was refused (bad input, the
//! vendor refused or could not be reached, no such request, the request is in a state
//! that does not allow it, the PIN is gone) or failed (our own fault). The HTTP layer
//! maps each to the guide's error bodies.

/// Why a service refused or failed: what the HTTP layer answers with (its status and
/// body are the API's business), and what the admin commands print.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
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
    /// Our own failure (database, crypto). Logged; the body says only that.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// An internal error from anything displayable (already free of secrets).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<crate::store::StoreError> for ServiceError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}
