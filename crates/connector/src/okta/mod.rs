//! Okta mode: the guide's four action-card operations, the triggers (MFA-initiated
//! event hook, group add, batch), the shipments table and activation through Okta's
//! preregistration API.
//!
//! Requests of this mode live in the shared `requests` table with `idp = 'okta'` (so
//! the list API, the jobs, the audit trail and the console see them); what only Okta
//! needs lives in this module's own tables ([`store::schema`]).

pub mod cards;
pub mod store;

use crate::app::AppState;
use crate::config::{ConfigError, Section};
use std::sync::Arc;

/// Okta-mode settings, from the `[okta]` table of the configuration file (environment
/// variables `OKTA_<KEY>`). Absent table: Okta mode is off.
#[derive(Debug, Clone, Default)]
pub struct OktaConfig {}

impl OktaConfig {
    /// Parses the `[okta]` section; every invalid value names its key.
    pub fn parse(_section: &Section) -> Result<Self, ConfigError> {
        Ok(Self {})
    }
}

/// Okta-mode runtime state (clients, caches), built at start when Okta mode is on.
#[derive(Debug, Default)]
pub struct OktaState {}

impl OktaState {
    /// Builds the runtime from the configuration.
    pub fn build(_config: &OktaConfig, _http: &reqwest::Client) -> Result<Self, String> {
        Ok(Self {})
    }
}

/// The Okta-mode routes (merged into the API router).
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().with_state(state)
}

/// Background work of Okta mode (reconciliation), spawned by [`crate::Application::run`].
pub async fn background(_state: Arc<AppState>) {}

/// Runs the next step of an Okta-mode request (called by the processor for rows with
/// `idp = 'okta'`).
pub(crate) async fn step(state: &AppState, row: crate::store::RequestRow) -> crate::process::Step {
    crate::process::fail(
        state,
        row,
        "Okta-mode processing is not built yet".to_owned(),
    )
    .await
}

/// Approves an Okta-mode request waiting at the approval gate (`awaiting_approval`):
/// the admin confirms the key arrived, and the PIN is sent through Okta next.
pub async fn approve(
    _state: &AppState,
    request_id: &str,
) -> Result<crate::store::RequestRow, crate::api::error::ApiError> {
    Err(crate::api::error::ApiError::Conflict(format!(
        "request {request_id} is not awaiting approval"
    )))
}

/// `POST /v1/fpr/shipments/{id}/retry` for an Okta-mode request.
pub(crate) async fn api_retry(
    _state: &AppState,
    _row: crate::store::RequestRow,
) -> Result<axum::Json<serde_json::Value>, crate::api::error::ApiError> {
    Err(crate::api::error::ApiError::Conflict(
        "Okta-mode requests cannot be retried yet".into(),
    ))
}

/// `POST /v1/fpr/shipments/{id}/resend-pin` for an Okta-mode request.
pub(crate) async fn api_resend_pin(
    _state: &AppState,
    _row: crate::store::RequestRow,
) -> Result<(axum::http::StatusCode, axum::Json<serde_json::Value>), crate::api::error::ApiError> {
    Err(crate::api::error::ApiError::Conflict(
        "Okta-mode PIN resend is not built yet".into(),
    ))
}

/// `DELETE /v1/fpr/shipments/{id}` for an Okta-mode request.
pub(crate) async fn api_delete(
    _state: &AppState,
    _row: crate::store::RequestRow,
) -> Result<axum::Json<serde_json::Value>, crate::api::error::ApiError> {
    Err(crate::api::error::ApiError::Conflict(
        "Okta-mode delete is not built yet".into(),
    ))
}
