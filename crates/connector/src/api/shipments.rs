//! The routes that read and manage tracked requests: get (never the PIN), list, process
//! now, retry, resend PIN, acknowledge, delete. Each calls the engine's admin action
//! ([`engine::admin`]) and answers with its outcome.

use super::auth::Caller;
use super::error::ApiError;
use crate::app::AppState;
use crate::store::{ListFilter, Store};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use engine::admin::{self, Acted};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET /v1/fpr/shipments/{id}`: the request with its PIN hold and timeline.
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"data": admin::details(&s, &id).await?})))
}

/// List query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    state: Option<String>,
    user_id: Option<String>,
    idp: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /v1/fpr/shipments`.
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessParams {
    wait: Option<u64>,
}

/// `POST /v1/fpr/shipments/{id}/retry`: [`admin::retry`].
pub async fn retry(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    answer(admin::retry(&s, &id).await?)
}

/// `POST /v1/fpr/shipments/{id}/resend-pin`: [`admin::resend_pin`].
pub async fn resend_pin(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    answer(admin::resend_pin(&s, &id).await?)
}

/// `POST /v1/fpr/shipments/{id}/pin-acknowledged`: an admin confirms the user has signed
/// in with the key, so the held PIN is purged now ([`admin::pin_acknowledged`]).
pub async fn pin_acknowledged(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    answer(admin::pin_acknowledged(&s, &id).await?)
}

/// `DELETE /v1/fpr/shipments/{id}`: [`admin::delete`].
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
