//! `GET /v1/status` (the guide's shape, never a secret), `/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`.

use super::auth::Caller;
use super::error::ApiError;
use crate::app::AppState;
use crate::store::{Backend, Store};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::sync::Arc;

/// `GET /v1/status`: the guide's keys and Yubico's connector's (`FIDO_CONNECTOR_VERSION`,
/// `LOGGING_LEVEL_COM_YUBICO`, the cleanup settings), every value a string as theirs.
pub async fn status(State(s): State<Arc<AppState>>, _caller: Caller) -> Json<Value> {
    let c = &s.config;
    let db = match s.store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    Json(json!({
        "AZURE_TABLES_ENDPOINT": db,
        "AZURE_TABLES_SHIPMENTS_TABLE_NAME": "requests",
        "AZURE_KEY_VAULT_ENDPOINT": "master key (AES-256-GCM, outside the database)",
        "AZURE_TENANT_ID": c.azure_tenant_id,
        "CRON_PROCESS_SHIPMENT_SCHEDULE": c.cron_process_shipment_schedule,
        "CRON_DATA_CLEANUP_SCHEDULE": c.cron_data_cleanup_schedule,
        "CRON_DATA_CLEANUP_COMPLETED_DAYS": c.cron_data_cleanup_completed_days.to_string(),
        "EMAIL_API_SEND_ENDPOINT": c.send_pin_url.as_deref().map(redact_query).unwrap_or_default(),
        "ENTRA_FIDO_API_CLIENT_ID": c.entra_fido_api_client_id,
        "ENTRA_FIDO_API_VERSION": c.entra_fido_api_version.as_str(),
        "ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES": c.entra_fido_api_challenge_timeout_minutes.to_string(),
        "YE_API_BASE_URL": c.ye_api_base_url,
        "YE_JWKS_SIGN_ENDPOINT": c.ye_jwks_sign_endpoint,
        "YE_JWKS_TRANSPORT_ENDPOINT": c.ye_jwks_transport_endpoint,
        "FIDO_CONNECTOR_VERSION": env!("CARGO_PKG_VERSION"),
        "LOGGING_LEVEL_COM_YUBICO": log_level(),
    }))
}

/// The log level, as Yubico's connector names it (`INFO`, `DEBUG`): `PREREG_LOG` when it is
/// one level, upper-case; else `INFO` (the default) or the filter as given.
fn log_level() -> String {
    match std::env::var("PREREG_LOG") {
        Ok(f) if !f.trim().is_empty() => {
            let f = f.trim();
            if f.contains([',', '=']) {
                f.to_owned()
            } else {
                f.to_ascii_uppercase()
            }
        }
        _ => "INFO".to_owned(),
    }
}

/// A Logic App URL carries its signature in the query (`sig=`): never show it.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?[redacted]"),
        None => url.to_owned(),
    }
}

/// `GET /healthz`: the process answers and its runner lives (its dispatcher went round
/// within the last 30 s; it does every 2 s at least). 503 when the runner stopped: a
/// process to restart.
pub async fn healthz(State(s): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    match s.runner.idle_for() {
        Some(idle) if idle > RUNNER_STALE_SECONDS => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "runner stopped", "runner_idle_seconds": idle})),
        ),
        _ => (StatusCode::OK, Json(json!({"status": "ok"}))),
    }
}

/// How long the runner's dispatcher may not go round before `/healthz` reports it.
const RUNNER_STALE_SECONDS: i64 = 30;

/// `GET /readyz`: the database answers (the replica can take requests). The vendors'
/// reachability is not readiness (a fulfiller blip must not take every replica out of
/// the load balancer): it shows in `/metrics`.
pub async fn readyz(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    s.store.get_request("readyz-probe").await?;
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /metrics`: the figures in the Prometheus text format ([`engine::metrics`]).
pub async fn metrics(State(s): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    let body = engine::metrics::render(&s).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}

/// `GET /openapi.json`: a hand-written OpenAPI 3.1 document.
pub async fn openapi() -> Json<Value> {
    let err = json!({"$ref": "#/components/schemas/Error"});
    let resp =
        |d: &str| json!({"description": d, "content": {"application/json": {"schema": err}}});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "prereg connector (Entra mode)", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error_code", "error_message"], "properties": {
                    "error_code": {"enum": ["api_error", "ye_error", "idp_error"]},
                    "error_message": {"type": "string"},
                    "error_data": {"type": "object"}}},
                "CreateRequest": {"type": "object", "additionalProperties": false,
                    "required": ["user_id", "pin_request", "yubico_shipment_request"],
                    "properties": {
                        "user_id": {"type": "string"},
                        "pin_request": {"type": "object", "properties": {
                            "type": {"enum": ["generate", "static", "none"]},
                            "length": {"type": "integer", "minimum": 4, "maximum": 8},
                            "value": {"type": "string", "minLength": 4, "maxLength": 8}}},
                        "yubico_shipment_request": {"type": "object"},
                        "enrollment_contacts": {"type": "object", "properties": {"emails_to": {"type": "array", "items": {"type": "string"}}}}}}
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/status": {"get": {"summary": "Deployment configuration (no secrets)", "responses": {"200": {"description": "OK"}, "401": resp("bad token")}}},
            "/v1/fprRequest": {"post": {"summary": "Create a shipment request (guide form)",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateRequest"}}}},
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string"}}],
                "responses": {"201": {"description": "{\"data\":{\"shipment_id\":\"...\"}}"}, "400": resp("api_error, ye_error or idp_error"), "401": resp("bad token"), "503": resp("fulfiller unavailable; request kept")}}},
            "/v1/fpr/shipments": {
                "post": {"summary": "Create a shipment request (newer form)", "responses": {"201": {"description": "created"}, "400": resp("bad input")}},
                "get": {"summary": "List requests", "parameters": [
                    {"name": "state", "in": "query", "schema": {"type": "string"}},
                    {"name": "user_id", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "offset", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {"200": {"description": "a page"}}}},
            "/v1/fpr/shipments/process": {"post": {"summary": "Run processing now", "responses": {"200": {"description": "summary"}}}},
            "/v1/fpr/shipments/{id}": {
                "get": {"summary": "One request (never the PIN)", "responses": {"200": {"description": "the request"}, "404": resp("unknown")}},
                "delete": {"summary": "Cancel (at the fulfiller while editable)", "responses": {"200": {"description": "deleted"}, "202": {"description": "still creating: cancel recorded (state cancelling), done by the next processing run"}, "409": resp("no longer editable")}}},
            "/v1/fpr/shipments/{id}/retry": {"post": {"summary": "An errored request back to open", "responses": {"200": {"description": "reopened"}, "409": resp("not in error")}}},
            "/v1/fpr/shipments/{id}/resend-pin": {"post": {"summary": "Deliver the PIN again while it is held", "responses": {"202": {"description": "queued"}, "409": resp("PIN purged (error_data.reason, purged_at) or not received yet")}}}
        }
    });
    // Added apart: one json! literal of the whole document exceeds the macro's
    // recursion limit.
    doc["paths"]["/v1/fpr/shipments/{id}/pin-acknowledged"] = json!({"post": {
        "summary": "The user has signed in: purge the held PIN now",
        "responses": {"200": {"description": "the request, pin_purge_reason acknowledged"}, "409": resp("PIN not delivered yet")}}});
    if let (Some(paths), Value::Object(cards)) = (
        doc["paths"].as_object_mut(),
        crate::okta::cards::openapi_paths(),
    ) {
        paths.extend(cards);
    }
    Json(doc)
}
