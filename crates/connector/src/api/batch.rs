//! `POST /v1/batch`: a CSV file of orders, both modes (docs/batch.md). The file is read
//! and each row ordered by [`engine::batch`]; this handler checks the content type and
//! the query, and answers each row's result.

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::{CsvBatchAnswer, ErrorBody};
use crate::app::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use engine::batch::{self, Summary};
use engine::domain::Idp;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The query of `POST /v1/batch`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BatchParams {
    /// The mode of rows without an `idp` cell (default `entra`).
    #[serde(default)]
    idp: Option<BatchIdp>,
}

/// A batch's default mode.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchIdp {
    /// Entra mode.
    Entra,
    /// Okta mode.
    Okta,
}

/// `POST /v1/batch` (`Content-Type: text/csv`): one order per row, each row's result
/// in the file's order. With an `Idempotency-Key` header, each row is recorded under
/// the key, its mode and its user: the same file sent again answers those rows
/// `created` with the first call's request ids (`"replayed": true`) and orders nothing.
#[utoipa::path(
    post,
    path = "/v1/batch",
    operation_id = "csv_batch",
    tag = "batch",
    summary = "Order keys for the rows of a CSV file (both modes)",
    security(("bearer" = [])),
    params(BatchParams, crate::api::create::IdempotencyKey),
    request_body(content = String, content_type = "text/csv", description = "A header row naming the columns (`user` and `product` required; `idp`, `contacts`, `delivery_type` and the create body's recipient and address fields optional), then one row per person, at most 1000 (docs/batch.md)"),
    responses(
        (status = 202, description = "Each row's result, in the file's order: `created`, `already_open`, `refused` (naming the column) or `unavailable` (send the row again)", body = CsvBatchAnswer),
        (status = 400, description = "`api_error` `validation`: the file is not such a CSV (not UTF-8, no header row, an unknown or repeated column, no `user` or `product` column, a row with more or fewer cells than the header, no rows, more than 1000 rows), or a bad query or `Idempotency-Key`", body = ErrorBody),
        (status = 415, description = "`api_error` `unsupported_media_type`: the body is not sent as `text/csv`", body = ErrorBody),
    )
)]
pub async fn csv_batch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<BatchParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::Validation(format!("query: {e}")))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("text/csv") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the file as `Content-Type: text/csv`, not {:?} (docs/batch.md)",
            content_type
        )));
    }
    let idem = super::create::idempotency_key(&headers)?;
    let body = body.map_err(|e| ApiError::Validation(format!("request body: {e}")))?;
    let rows = batch::parse(&body).map_err(|e| ApiError::Validation(e.0))?;
    let default_idp = match q.idp {
        None | Some(BatchIdp::Entra) => Idp::Entra,
        Some(BatchIdp::Okta) => Idp::Okta,
    };
    let once = idem.as_deref().map(|k| (caller.client_app.as_str(), k));
    let results = batch::run(&state.services, &rows, default_idp, once, &|_| {}).await;
    let Summary {
        rows,
        created,
        already_open,
        refused,
        unavailable,
    } = Summary::of(&results);
    tracing::info!(
        client_app = %caller.client_app,
        rows, created, already_open, refused, unavailable,
        "CSV batch taken"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "data": results,
            "rows": rows,
            "created": created,
            "already_open": already_open,
            "refused": refused,
            "unavailable": unavailable,
        })),
    ))
}
