//! `POST /v1/entra/reconcile`: the Entra group trigger's reconciliation on request
//! ([`engine::entra_groups`], docs/entra-groups.md). It also runs every
//! `[entra] reconcile_interval_seconds` on its own.

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{ErrorBody, ReconcileAnswer};
use crate::app::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::sync::Arc;

/// Orders a key for every enabled member of a mapped Entra group who never had an
/// Entra-mode request. The answer lists the members looked at, the requests started and
/// the members that could not be ordered (with why; the next reconciliation tries them
/// again).
#[utoipa::path(
    post,
    path = "/v1/entra/reconcile",
    operation_id = "entra_reconcile",
    tag = "entra",
    summary = "Order a key for every member of a mapped Entra group who never had one",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the reconciliation did", body = ReconcileAnswer),
        (status = 404, description = "`api_error` `not_found`: the Entra group trigger is off (no `[entra]` groups)", body = ErrorBody),
        (status = 502, description = "`idp_error`: Microsoft Graph would not list a mapped group's members", body = ErrorBody),
    )
)]
pub async fn entra_reconcile(
    State(s): State<Arc<AppState>>,
    _c: Caller,
) -> Result<Json<Value>, ApiError> {
    if s.config.entra.as_ref().is_none_or(|e| e.groups.is_empty()) {
        return Err(ApiError::NotFound(
            "the Entra group trigger is off: map groups in [[entra.groups]] (docs/entra-groups.md)"
                .into(),
        ));
    }
    let sum = engine::entra_groups::reconcile(&s.services).await?;
    if !sum.started.is_empty() {
        s.runner.kick();
    }
    Ok(Json(json!({"data": sum})))
}
