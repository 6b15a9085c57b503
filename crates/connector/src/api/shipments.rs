//! The routes that read and manage tracked requests: get (never the PIN), list, process
//! now, retry, resend PIN, acknowledge, delete. Each calls the engine's admin action
//! ([`engine::admin`]) and answers with its outcome.

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{
    ErrorBody, ProcessedAnswer, Queued, RequestAnswer, RequestDetailsAnswer, RequestPage,
};
use crate::app::AppState;
use crate::store::{ListFilter, Store};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use engine::admin::{self, Acted};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::IntoParams;

/// `GET /v1/fpr/shipments/{id}`: the request with its PIN hold and timeline.
#[utoipa::path(
    get,
    path = "/v1/fpr/shipments/{id}",
    operation_id = "get_request",
    tag = "requests",
    summary = "One request, either mode (never the PIN)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The connector's request id or the fulfiller's shipment id")),
    responses(
        (status = 200, description = "The request, its PIN hold and its timeline", body = RequestDetailsAnswer),
        (status = 404, description = "`api_error` `not_found`: no such request or shipment", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"data": admin::details(&s, &id).await?})))
}

/// List query (unknown parameters are refused).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only requests in this state (`open`, `error`, ...).
    state: Option<String>,
    /// Only this user's (the identity provider's user id).
    user_id: Option<String>,
    /// Only this mode's: `entra` or `okta`.
    idp: Option<String>,
    /// The page size, 1-100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Skip this many (default 0).
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// `GET /v1/fpr/shipments`.
#[utoipa::path(
    get,
    path = "/v1/fpr/shipments",
    operation_id = "list_requests",
    tag = "requests",
    summary = "A page of requests, newest first",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "The page and the total count", body = RequestPage),
        (status = 400, description = "`api_error` `validation`: a parameter out of range or unknown", body = ErrorBody),
    )
)]
pub async fn list(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::Validation(format!("query: {e}")))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) || q.offset.is_some_and(|o| o < 0) {
        return Err(ApiError::Validation(
            "`limit` must be 1-100 and `offset` ≥ 0".into(),
        ));
    }
    let (rows, total) = s
        .store
        .list_requests(&ListFilter {
            state: q.state,
            user_id: q.user_id,
            idp: q.idp,
            limit,
            offset: q.offset.unwrap_or(0),
        })
        .await?;
    Ok(Json(json!({
        "data": rows.iter().map(admin::view).collect::<Vec<_>>(),
        "total_count": total, "limit": limit, "offset": q.offset.unwrap_or(0),
    })))
}

/// `POST /v1/fpr/shipments/process`.
///
/// Makes due every request (those waiting out a retry backoff too: an admin asks to
/// try now) and wakes the runner; answers 202 at once with how many were made due. The
/// work runs in the runner, never in this call. With `?wait=SECONDS` (1-300) it answers
/// 200 once the runner has run everything due as far as it goes now (or the time is
/// up: `"idle": false`), with what the runner did meanwhile.
#[utoipa::path(
    post,
    path = "/v1/fpr/shipments/process",
    operation_id = "process_now",
    tag = "requests",
    summary = "Process now",
    security(("bearer" = [])),
    params(ProcessParams),
    responses(
        (status = 200, description = "With `wait`: what the runner did meanwhile", body = ProcessedAnswer),
        (status = 202, description = "Without `wait`: how many jobs were made due", body = Queued),
        (status = 400, description = "`api_error` `validation`: `wait` out of range, or an unknown parameter", body = ErrorBody),
    )
)]
pub async fn process(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    q: Result<Query<ProcessParams>, axum::extract::rejection::QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(q) = q.map_err(|e| ApiError::Validation(format!("query: {e}")))?;
    let Some(wait) = q.wait else {
        let queued = crate::runner::process_now(&s).await?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"data": {"queued": queued}})),
        ));
    };
    if !(1..=300).contains(&wait) {
        return Err(ApiError::Validation(
            "`wait` must be between 1 and 300 seconds".into(),
        ));
    }
    let done = crate::runner::process_and_wait(&s, std::time::Duration::from_secs(wait)).await?;
    Ok((StatusCode::OK, Json(json!({"data": done}))))
}

/// `process` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProcessParams {
    /// Wait (1-300 seconds) until the runner has run everything due.
    #[param(minimum = 1, maximum = 300)]
    wait: Option<u64>,
}

/// `POST /v1/fpr/shipments/{id}/retry`: [`admin::retry`].
#[utoipa::path(
    post,
    path = "/v1/fpr/shipments/{id}/retry",
    operation_id = "retry_request",
    tag = "requests",
    summary = "An `error` request back to where it failed",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The connector's request id or the fulfiller's shipment id")),
    responses(
        (status = 200, description = "Reopened", body = RequestAnswer),
        (status = 202, description = "Started: the runner finishes it", body = RequestAnswer),
        (status = 404, description = "`api_error` `not_found`: no such request or shipment", body = ErrorBody),
        (status = 409, description = "`api_error` `conflict`: not in a state that allows this", body = ErrorBody),
        (status = 502, description = "`idp_error`: the identity provider could not be reached", body = ErrorBody),
        (status = 503, description = "`api_error` `fulfiller_unavailable`: the fulfiller could not be reached", body = ErrorBody),
    )
)]
pub async fn retry(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    answer(admin::retry(&s, &id).await?)
}

/// `POST /v1/fpr/shipments/{id}/resend-pin`: [`admin::resend_pin`].
#[utoipa::path(
    post,
    path = "/v1/fpr/shipments/{id}/resend-pin",
    operation_id = "resend_pin",
    tag = "requests",
    summary = "Deliver the held PIN again",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The connector's request id or the fulfiller's shipment id")),
    responses(
        (status = 200, description = "Queued", body = RequestAnswer),
        (status = 202, description = "Started: the runner finishes it", body = RequestAnswer),
        (status = 404, description = "`api_error` `not_found`: no such request or shipment", body = ErrorBody),
        (status = 409, description = "`api_error` `conflict`: not in a state that allows this; `pin_purged` (`error_data.reason`, `purged_at`) once the PIN was purged", body = ErrorBody),
        (status = 502, description = "`idp_error`: the identity provider could not be reached", body = ErrorBody),
        (status = 503, description = "`api_error` `fulfiller_unavailable`: the fulfiller could not be reached", body = ErrorBody),
    )
)]
pub async fn resend_pin(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    answer(admin::resend_pin(&s, &id).await?)
}

/// `POST /v1/fpr/shipments/{id}/pin-acknowledged`: an admin confirms the user has signed
/// in with the key, so the held PIN is purged now ([`admin::pin_acknowledged`]).
#[utoipa::path(
    post,
    path = "/v1/fpr/shipments/{id}/pin-acknowledged",
    operation_id = "acknowledge_pin",
    tag = "requests",
    summary = "The user signed in: purge the held PIN now",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The connector's request id or the fulfiller's shipment id")),
    responses(
        (status = 200, description = "The request, `pin_purge_reason` acknowledged", body = RequestAnswer),
        (status = 202, description = "Started: the runner finishes it", body = RequestAnswer),
        (status = 404, description = "`api_error` `not_found`: no such request or shipment", body = ErrorBody),
        (status = 409, description = "`api_error` `conflict`: not in a state that allows this", body = ErrorBody),
        (status = 502, description = "`idp_error`: the identity provider could not be reached", body = ErrorBody),
        (status = 503, description = "`api_error` `fulfiller_unavailable`: the fulfiller could not be reached", body = ErrorBody),
    )
)]
pub async fn pin_acknowledged(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    answer(admin::pin_acknowledged(&s, &id).await?)
}

/// `DELETE /v1/fpr/shipments/{id}`: [`admin::delete`].
#[utoipa::path(
    delete,
    path = "/v1/fpr/shipments/{id}",
    operation_id = "delete_request",
    tag = "requests",
    summary = "Cancel (at the fulfiller while editable), mark deleted, destroy its secrets",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The connector's request id or the fulfiller's shipment id")),
    responses(
        (status = 200, description = "Deleted", body = RequestAnswer),
        (status = 202, description = "Started: the runner finishes it", body = RequestAnswer),
        (status = 404, description = "`api_error` `not_found`: no such request or shipment", body = ErrorBody),
        (status = 409, description = "`api_error` `conflict`: not in a state that allows this; no longer editable at the fulfiller", body = ErrorBody),
        (status = 502, description = "`idp_error`: the identity provider could not be reached", body = ErrorBody),
        (status = 503, description = "`api_error` `fulfiller_unavailable`: the fulfiller could not be reached", body = ErrorBody),
    )
)]
pub async fn delete(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    answer(admin::delete(&s, &id).await?)
}

/// An admin action's answer: 202 when the runner finishes the work, else 200.
fn answer(a: Acted) -> Result<(StatusCode, Json<Value>), ApiError> {
    let status = if a.started {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"data": a.view}))))
}
