//! Sandbox-only routes: the clock, key rotation, token revocation, the FIDO2 policy,
//! faults and a state dump. Never faulted; no token (the sandbox listens on loopback).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::tokens::SigningKey;
use super::{Entra, Fido2Policy, GraphFailure};
use crate::faults::FaultConfig;

fn body_or_default<T: Default + for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, GraphFailure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| GraphFailure::invalid("invalidBody", e.to_string()))
}

/// The clock as the sandbox sees it.
#[derive(Debug, Serialize)]
pub(crate) struct ClockView {
    now: String,
    offset_secs: u64,
}

fn clock_view(entra: &Entra) -> ClockView {
    ClockView {
        now: crate::time::rfc3339(entra.clock().now()),
        offset_secs: entra.clock().offset(),
    }
}

pub(crate) async fn clock(State(entra): State<Entra>) -> Json<ClockView> {
    Json(clock_view(&entra))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Advance {
    #[serde(default)]
    seconds: u64,
    #[serde(default)]
    minutes: u64,
    #[serde(default)]
    days: u64,
}

/// `POST /sandbox/v1/clock/advance {"seconds"|"minutes"|"days"}`.
pub(crate) async fn advance_clock(
    State(entra): State<Entra>,
    body: Bytes,
) -> Result<Json<ClockView>, GraphFailure> {
    let a: Advance = body_or_default(&body)?;
    let secs = a
        .seconds
        .saturating_add(a.minutes.saturating_mul(60))
        .saturating_add(a.days.saturating_mul(86_400));
    entra.clock().advance(secs);
    Ok(Json(clock_view(&entra)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Rotate {
    /// Drop every older key from the key set (tokens they signed stop working).
    #[serde(default)]
    retire_previous: bool,
}

/// `POST /sandbox/v1/keys/rotate`: a new signing key; older ones stay published unless
/// `{"retirePrevious": true}`.
pub(crate) async fn rotate_keys(
    State(entra): State<Entra>,
    body: Bytes,
) -> Result<Json<Value>, GraphFailure> {
    let r: Rotate = body_or_default(&body)?;
    let key = tokio::task::spawn_blocking(SigningKey::generate)
        .await
        .map_err(|e| {
            GraphFailure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                e.to_string(),
            )
        })?
        .map_err(|e| GraphFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", e))?;
    let mut ring = entra.keys_mut();
    if r.retire_previous {
        ring.keys.clear();
    }
    let kid = key.kid.clone();
    ring.keys.push(key);
    let published: Vec<String> = ring.keys.iter().map(|k| k.kid.clone()).collect();
    Ok(Json(
        json!({"signing_kid": kid, "published_kids": published}),
    ))
}

/// `POST /sandbox/v1/tokens/revoke`: every token issued so far is refused from now on
/// (as if it had expired).
pub(crate) async fn revoke_tokens(State(entra): State<Entra>) -> Json<Value> {
    let mut ring = entra.keys_mut();
    let issued = std::mem::take(&mut ring.issued);
    let n = issued.len();
    ring.revoked.extend(issued);
    Json(json!({"revoked": n}))
}

pub(crate) async fn get_policy(State(entra): State<Entra>) -> Json<Fido2Policy> {
    Json(entra.seed().fido2_policy.clone())
}

/// `PUT /sandbox/v1/fido2-policy`: the whole policy (Graph member names).
pub(crate) async fn set_policy(
    State(entra): State<Entra>,
    body: Bytes,
) -> Result<Json<Fido2Policy>, GraphFailure> {
    let policy: Fido2Policy = serde_json::from_slice(&body)
        .map_err(|e| GraphFailure::invalid("invalidBody", e.to_string()))?;
    let mut candidate = entra.seed().clone();
    candidate.fido2_policy = policy;
    candidate
        .check()
        .map_err(|e| GraphFailure::invalid("invalidPolicy", e.to_string()))?;
    let mut seed = entra.seed_mut();
    seed.fido2_policy = candidate.fido2_policy;
    Ok(Json(seed.fido2_policy.clone()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct AppPatch {
    /// `1`, `2` or `null` (v1.0).
    access_token_accepted_version: Option<u8>,
}

/// `PATCH /sandbox/v1/apps/{clientId}` `{"accessTokenAcceptedVersion": 1|2|null}`: the
/// manifest setting that picks v1.0 or v2.0 access tokens for the app's API.
pub(crate) async fn patch_app(
    State(entra): State<Entra>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, GraphFailure> {
    let patch: AppPatch = serde_json::from_slice(&body)
        .map_err(|e| GraphFailure::invalid("invalidBody", e.to_string()))?;
    let mut candidate = entra.seed().clone();
    let found = candidate
        .apps
        .iter_mut()
        .find(|a| a.client_id.eq_ignore_ascii_case(&app))
        .ok_or_else(|| app_not_found(&app))?;
    found.access_token_accepted_version = patch.access_token_accepted_version;
    candidate
        .check()
        .map_err(|e| GraphFailure::invalid("invalidApp", e.to_string()))?;
    *entra.seed_mut() = candidate;
    Ok(Json(app_view(&entra, &app)))
}

/// `POST /sandbox/v1/apps/{clientId}/certificates` with a PEM certificate (RSA key) as
/// the body: registers it for certificate credentials; answers its thumbprints.
pub(crate) async fn add_certificate(
    State(entra): State<Entra>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), GraphFailure> {
    let pem = std::str::from_utf8(&body)
        .map_err(|_| GraphFailure::invalid("invalidBody", "the body must be a PEM certificate"))?
        .to_owned();
    let registered = super::certs::Registered::from_pem(&pem)
        .map_err(|e| GraphFailure::invalid("invalidBody", e))?;
    let mut seed = entra.seed_mut();
    let found = seed
        .apps
        .iter_mut()
        .find(|a| a.client_id.eq_ignore_ascii_case(&app))
        .ok_or_else(|| app_not_found(&app))?;
    found.certificates.push(pem);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "clientId": found.client_id,
            "x5t": registered.x5t,
            "x5t#S256": registered.x5t_s256,
            "certificates": found.certificates.len(),
        })),
    ))
}

fn app_not_found(app: &str) -> GraphFailure {
    GraphFailure::new(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!("No app registration with clientId {app:?} in the sandbox tenant."),
    )
}

fn app_view(entra: &Entra, app: &str) -> Value {
    let seed = entra.seed();
    let a = seed
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(app));
    json!({
        "clientId": a.map(|a| a.client_id.clone()),
        "accessTokenAcceptedVersion": a.and_then(|a| a.access_token_accepted_version),
        "tokenVersion": a.map(|a| match a.token_version() {
            super::seed::TokenVersion::V1 => "1.0",
            super::seed::TokenVersion::V2 => "2.0",
        }),
    })
}

pub(crate) async fn get_faults(State(entra): State<Entra>) -> Json<FaultConfig> {
    Json(entra.faults().get())
}

pub(crate) async fn set_faults(
    State(entra): State<Entra>,
    body: Bytes,
) -> Result<Json<FaultConfig>, GraphFailure> {
    let cfg: FaultConfig = serde_json::from_slice(&body)
        .map_err(|e| GraphFailure::invalid("invalidBody", e.to_string()))?;
    entra.faults().set(cfg);
    Ok(Json(entra.faults().get()))
}

/// Registered methods per user (no key material) and the clock.
pub(crate) async fn state(State(entra): State<Entra>) -> Json<Value> {
    let methods: Vec<Value> = entra
        .registered_methods()
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "userId": m.user_id,
                "displayName": m.display_name,
                "aaGuid": m.aaguid.to_string(),
                "model": m.model,
                "attestationLevel": if m.attested { "attested" } else { "notAttested" },
                "signCount": m.sign_count,
                "createdDateTime": crate::time::rfc3339(m.created),
            })
        })
        .collect();
    Json(json!({
        "tenantId": entra.tenant_id(),
        "clock": clock_view(&entra),
        "fido2Methods": methods,
    }))
}
