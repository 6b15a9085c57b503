//! `GET /v1/status` (the guide's shape, never a secret), `/healthz`, `/readyz`,
//! `/metrics`.

use super::auth::Caller;
use super::error::ApiError;
use super::openapi::ErrorBody;
use crate::app::AppState;
use crate::store::{Backend, Store};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The deployment's configuration as the guide's `GET /v1/status` shows it: the
/// guide's keys and Yubico's connector's, every value a string, never a secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct DeploymentStatus {
    /// The database: `sqlite` or `postgresql`.
    pub azure_tables_endpoint: String,
    /// The requests table.
    pub azure_tables_shipments_table_name: String,
    /// Where the secrets' master key is.
    pub azure_key_vault_endpoint: String,
    /// The Entra tenant.
    pub azure_tenant_id: String,
    /// The processing schedule (cron).
    pub cron_process_shipment_schedule: String,
    /// The cleanup schedule (cron).
    pub cron_data_cleanup_schedule: String,
    /// Days a completed request is kept before the cleanup.
    pub cron_data_cleanup_completed_days: String,
    /// Days after which a completed or deleted request's personal data is removed
    /// (`retention_days`; `0`: kept).
    pub retention_days: String,
    /// The PIN webhook, its query (a signature) redacted; empty when mail is SMTP.
    pub email_api_send_endpoint: String,
    /// The connector's app (client id) in Entra.
    pub entra_fido_api_client_id: String,
    /// `beta` or `v1.0`.
    pub entra_fido_api_version: String,
    /// The creation options' challenge timeout.
    pub entra_fido_api_challenge_timeout_minutes: String,
    /// The fulfiller's API.
    pub ye_api_base_url: String,
    /// The fulfiller's signing keys.
    pub ye_jwks_sign_endpoint: String,
    /// The fulfiller's transport keys.
    pub ye_jwks_transport_endpoint: String,
    /// This connector's version.
    pub fido_connector_version: String,
    /// The log level (`INFO`, `DEBUG`) or filter.
    pub logging_level_com_yubico: String,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `runner stopped`.
    pub status: String,
    /// Only when the runner stopped: seconds since its dispatcher last went round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_idle_seconds: Option<i64>,
}

impl Health {
    fn is(status: &str) -> Json<Self> {
        Json(Self {
            status: status.to_owned(),
            runner_idle_seconds: None,
        })
    }
}

/// `GET /v1/status`: the guide's keys and Yubico's connector's (`FIDO_CONNECTOR_VERSION`,
/// `LOGGING_LEVEL_COM_YUBICO`, the cleanup settings), every value a string as theirs.
#[utoipa::path(
    get,
    path = "/v1/status",
    operation_id = "deployment_status",
    tag = "entra",
    security(("bearer" = [])),
    responses((status = 200, description = "The deployment's configuration (no secret)", body = DeploymentStatus))
)]
pub async fn status(State(s): State<Arc<AppState>>, _caller: Caller) -> Json<DeploymentStatus> {
    let c = &s.config;
    let db = match s.store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    Json(DeploymentStatus {
        azure_tables_endpoint: db.to_owned(),
        azure_tables_shipments_table_name: "requests".to_owned(),
        azure_key_vault_endpoint: "master key (AES-256-GCM, outside the database)".to_owned(),
        azure_tenant_id: c.azure_tenant_id.clone(),
        cron_process_shipment_schedule: c.cron_process_shipment_schedule.clone(),
        cron_data_cleanup_schedule: c.cron_data_cleanup_schedule.clone(),
        cron_data_cleanup_completed_days: c.cron_data_cleanup_completed_days.to_string(),
        retention_days: c.retention_days.to_string(),
        email_api_send_endpoint: c
            .send_pin_url
            .as_deref()
            .map(redact_query)
            .unwrap_or_default(),
        entra_fido_api_client_id: c.entra_fido_api_client_id.clone(),
        entra_fido_api_version: c.entra_fido_api_version.as_str().to_owned(),
        entra_fido_api_challenge_timeout_minutes: c
            .entra_fido_api_challenge_timeout_minutes
            .to_string(),
        ye_api_base_url: c.ye_api_base_url.clone(),
        ye_jwks_sign_endpoint: c.ye_jwks_sign_endpoint.clone(),
        ye_jwks_transport_endpoint: c.ye_jwks_transport_endpoint.clone(),
        fido_connector_version: env!("CARGO_PKG_VERSION").to_owned(),
        logging_level_com_yubico: log_level(),
    })
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
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "monitoring",
    responses(
        (status = 200, description = "`ok`: the process and its runner live", body = Health),
        (status = 503, description = "`runner stopped`: restart the process", body = Health),
    )
)]
pub async fn healthz(State(s): State<Arc<AppState>>) -> (StatusCode, Json<Health>) {
    match s.runner.idle_for() {
        Some(idle) if idle > RUNNER_STALE_SECONDS => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "runner stopped".to_owned(),
                runner_idle_seconds: Some(idle),
            }),
        ),
        _ => (StatusCode::OK, Health::is("ok")),
    }
}

/// How long the runner's dispatcher may not go round before `/healthz` reports it.
const RUNNER_STALE_SECONDS: i64 = 30;

/// `GET /readyz`: the database answers (the replica can take requests). The vendors'
/// reachability is not readiness (a fulfiller blip must not take every replica out of
/// the load balancer): it shows in `/metrics`.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "ready",
    tag = "monitoring",
    responses(
        (status = 200, description = "`ready`: the database answers", body = Health),
        (status = 500, description = "The database does not answer", body = ErrorBody),
    )
)]
pub async fn readyz(State(s): State<Arc<AppState>>) -> Result<Json<Health>, ApiError> {
    s.store.get_request("readyz-probe").await?;
    Ok(Health::is("ready"))
}

/// `GET /metrics`: the figures in the Prometheus text format ([`engine::metrics`]).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "monitoring",
    responses((status = 200, description = "The Prometheus text format (docs/connector.md lists the series)", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"))
)]
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
