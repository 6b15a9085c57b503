//! Okta mode's HTTP surface and the shipments-table operations.
//!
//! - `GET /v1/okta/events`: Okta's one-time verification (`x-okta-verification-challenge`).
//! - `POST /v1/okta/events`: event hook deliveries (shared secret in the configured
//!   header); duplicate event ids are ignored.
//! - `POST /v1/okta/batch` (JWT): start requests for a list of users.
//! - `POST /v1/okta/reconcile` (JWT): reconcile mapped groups now.
//! - `GET /v1/okta/requests`, `GET /v1/okta/requests/{id}` (JWT): the shipments table.
//! - `POST /v1/okta/requests/{id}/approve` (JWT): the approval gate.
//!
//! Retry, resend-PIN and delete go through the shared `/v1/fpr/shipments/{id}/...`
//! routes ([`engine::admin`], which hands Okta-mode rows to [`engine::okta::admin`]).

use super::OktaState;
use super::admin::{approve, okta_view};
use super::store as ostore;
use super::triggers::{
    Order, StartError, Started, order_of_event, start_request, start_request_once,
};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::store::{ListFilter, Store, now};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub(crate) fn routes(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/v1/okta/events", get(verify).post(events))
        .route("/v1/okta/batch", post(batch))
        .route("/v1/okta/reconcile", post(reconcile_now))
        .route("/v1/okta/requests", get(list))
        .route("/v1/okta/requests/{id}", get(get_one))
        .route("/v1/okta/requests/{id}/approve", post(approve_route))
        .with_state(state)
}

fn secret_ok(o: &OktaState, headers: &HeaderMap) -> bool {
    let Some(secret) = &o.config.event_hook_secret else {
        return false;
    };
    let Some(given) = headers
        .get(o.config.event_hook_header.as_str())
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    // Constant time (`subtle`; only the length can show).
    bool::from(secret.expose_secret().as_bytes().ct_eq(given.as_bytes()))
}

/// `GET /v1/okta/events`: echoes `x-okta-verification-challenge`.
async fn verify(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let o = super::admin::okta(&s)?;
    if !secret_ok(o, &headers) {
        return Err(ApiError::Unauthorized(format!(
            "the event hook's {} header is missing or wrong",
            o.config.event_hook_header
        )));
    }
    let challenge = headers
        .get(okta::hooks::VERIFICATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::Validation(format!(
                "the {} header is missing",
                okta::hooks::VERIFICATION_HEADER
            ))
        })?;
    Ok(Json(json!({ "verification": challenge })))
}

fn kick(state: &Arc<AppState>) {
    state.runner.kick();
}

/// `POST /v1/okta/events`: an event hook delivery.
async fn events(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let o = super::admin::okta(&s)?;
    if !secret_ok(o, &headers) {
        return Err(ApiError::Unauthorized(format!(
            "the event hook's {} header is missing or wrong",
            o.config.event_hook_header
        )));
    }
    let env: okta::hooks::EventEnvelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Validation(format!("not an Okta event hook delivery: {e}")))?;
    let pool = s.store.pool();
    let mut started = Vec::new();
    let mut duplicates = Vec::new();
    let mut ignored = Vec::new();
    let mut failed = None;
    // An event id is recorded only once the event was acted on (the request recorded,
    // or the event refused for good), never before: a crash in between must leave the
    // redelivery to act on it. A redelivery racing the first delivery finds the user's
    // open request (`Started::Duplicate`), so it never orders twice.
    for ev in &env.data.events {
        if ostore::event_seen(pool, &ev.uuid).await? {
            duplicates.push(ev.uuid.clone());
            continue;
        }
        let user = ev
            .target
            .iter()
            .find(|t| t.kind == "User")
            .map(|t| t.id.clone());
        let order = match ev.event_type.as_str() {
            okta::hooks::GROUP_MEMBERSHIP_ADD if o.config.trigger_group_add => ev
                .target
                .iter()
                .filter(|t| t.kind == "UserGroup")
                .find_map(|t| o.config.group(&t.id))
                .map(Order::from),
            okta::hooks::PREREGISTRATION_EVENT | okta::hooks::PREREGISTER_INITIATE_EVENT
                if o.config.trigger_mfa_initiated =>
            {
                order_of_event(o, &ev.debug_context)
            }
            _ => None,
        };
        let (Some(user), Some(order)) = (user, order) else {
            ostore::first_sight(pool, &ev.uuid, now()).await?;
            ignored.push(ev.uuid.clone());
            continue;
        };
        let source = if ev.event_type == okta::hooks::GROUP_MEMBERSHIP_ADD {
            "group_add"
        } else {
            "mfa_initiated"
        };
        match start_request(&s, &user, order, source).await {
            Ok(Started::Created(r)) => {
                ostore::first_sight(pool, &ev.uuid, now()).await?;
                started.push(json!({"user": user, "request_id": r.id}));
            }
            Ok(Started::Duplicate(id) | Started::Replayed(id)) => {
                ostore::first_sight(pool, &ev.uuid, now()).await?;
                started.push(
                    json!({"user": user, "request_id": id, "note": "the user already has an open request"}),
                );
            }
            Err(StartError::Refused(m)) => {
                tracing::warn!(event = %ev.uuid, error = %m, "event not acted on");
                ostore::first_sight(pool, &ev.uuid, now()).await?;
                ignored.push(ev.uuid.clone());
            }
            Err(StartError::Unavailable(m)) => {
                // Not recorded: Okta's redelivery acts on it.
                failed = Some(m);
            }
        }
    }
    if !started.is_empty() {
        kick(&s);
    }
    if let Some(m) = failed {
        return Err(ApiError::IdpUnavailable(format!(
            "could not act on every event (redeliver): {m}"
        )));
    }
    Ok(Json(json!({
        "started": started,
        "duplicates_ignored": duplicates,
        "not_acted_on": ignored,
    })))
}

/// One user of a batch: a login or id, or an object naming the order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BatchUser {
    Login(String),
    Full {
        user: String,
        #[serde(default)]
        group_id: Option<String>,
        #[serde(default)]
        product_id: Option<u32>,
        #[serde(default)]
        inventory_product_id: Option<u32>,
        #[serde(default)]
        customization_id: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    users: Vec<BatchUser>,
    #[serde(default)]
    group_id: Option<String>,
}

/// `POST /v1/okta/batch`: `{"users": ["login", {"user": "...", "group_id": "..."}],
/// "group_id": "<default mapping>"}`. Each user gets a request (or is reported as
/// already having one, or as unknown); the processing runs in the background jobs.
/// With an `Idempotency-Key` header, each line's request is recorded under the key and
/// the user as given: the same batch sent again (its answer lost) answers those lines
/// `created` with the same request ids (`"replayed": true`) and orders nothing, even when
/// a request has completed since.
async fn batch(
    State(s): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<BatchBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idem = crate::api::create::idempotency_key(&headers)?;
    let Json(body) = body.map_err(|e| ApiError::Validation(format!("body: {e}")))?;
    let o = super::admin::okta(&s)?;
    if body.users.is_empty() || body.users.len() > 1000 {
        return Err(ApiError::Validation(
            "`users` must list 1-1000 users".into(),
        ));
    }
    let default = match &body.group_id {
        Some(g) => Some(o.config.group(g).map(Order::from).ok_or_else(|| {
            ApiError::Validation(format!("group {g} is not mapped in [okta] groups"))
        })?),
        None => o.config.groups.first().map(Order::from),
    };
    // Each line's order first (refusals need no one), then the requests started
    // `vendor_concurrency` at a time (each reads its user at Okta), answered in the
    // order given. Two lines for one user still give one request: the user's lock.
    let lines: Vec<Result<(String, Order), Value>> = body
        .users
        .into_iter()
        .map(|u| order_line(o, u, default.as_ref()))
        .collect();
    let at_once = s.config.processing.vendor_concurrency.max(1);
    let results: Vec<(Value, bool)> = futures_util::stream::iter(lines)
        .map(|line| {
            let (s, idem, client) = (&s, idem.as_deref(), caller.client_app.as_str());
            async move {
                let (user, order) = match line {
                    Ok(l) => l,
                    Err(refused) => return (refused, false),
                };
                // The key per line: a batch's lines are separate orders.
                let key = idem.map(|k| format!("okta-batch\n{k}\n{user}"));
                let once = key.as_deref().map(|k| (client, k));
                match start_request_once(s, &user, order, "batch", once).await {
                    Ok(Started::Created(r)) => (
                        json!({"user": user, "status": "created", "request_id": r.id}),
                        true,
                    ),
                    Ok(Started::Replayed(id)) => (
                        json!({"user": user, "status": "created", "request_id": id, "replayed": true}),
                        false,
                    ),
                    Ok(Started::Duplicate(id)) => (
                        json!({"user": user, "status": "already_open", "request_id": id}),
                        false,
                    ),
                    // Okta or the database failed just now: nothing was recorded, the
                    // caller sends this user again.
                    Err(StartError::Unavailable(m)) => (
                        json!({"user": user, "status": "unavailable", "error": m}),
                        false,
                    ),
                    Err(StartError::Refused(m)) => (
                        json!({"user": user, "status": "refused", "error": m}),
                        false,
                    ),
                }
            }
        })
        .buffered(at_once)
        .collect()
        .await;
    let created = results.iter().filter(|(_, c)| *c).count();
    let results: Vec<Value> = results.into_iter().map(|(v, _)| v).collect();
    if created > 0 {
        kick(&s);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": results, "created": created})),
    ))
}

/// A batch line's user and order (the line's own, its group's, or the batch's default
/// group's), or the refusal to answer for it.
fn order_line(
    o: &OktaState,
    u: BatchUser,
    default: Option<&Order>,
) -> Result<(String, Order), Value> {
    let (user, order) = match u {
        BatchUser::Login(l) => (l, default.cloned()),
        BatchUser::Full {
            user,
            group_id,
            product_id,
            inventory_product_id,
            customization_id,
        } => {
            let base = match &group_id {
                Some(g) => match o.config.group(g) {
                    Some(m) => Some(Order::from(m)),
                    None => {
                        return Err(
                            json!({"user": user, "status": "refused", "error": format!("group {g} is not mapped in [okta] groups")}),
                        );
                    }
                },
                None => default.cloned(),
            };
            let order = match (base, product_id, inventory_product_id, customization_id) {
                (_, Some(p), Some(i), Some(c)) => Some(Order {
                    group_id,
                    product_id: p,
                    inventory_product_id: i,
                    customization_id: c,
                }),
                (Some(b), p, i, c) => Some(Order {
                    group_id: b.group_id,
                    product_id: p.unwrap_or(b.product_id),
                    inventory_product_id: i.unwrap_or(b.inventory_product_id),
                    customization_id: c.unwrap_or(b.customization_id),
                }),
                (None, ..) => None,
            };
            (user, order)
        }
    };
    match order {
        Some(order) => Ok((user, order)),
        None => Err(
            json!({"user": user, "status": "refused", "error": "no order line: name a mapped group_id, or product_id, inventory_product_id and customization_id"}),
        ),
    }
}

/// `POST /v1/okta/reconcile`.
async fn reconcile_now(
    State(s): State<Arc<AppState>>,
    _c: Caller,
) -> Result<Json<Value>, ApiError> {
    super::admin::okta(&s)?;
    let sum = super::reconcile(&s)
        .await
        .map_err(ApiError::IdpUnavailable)?;
    if !sum.started.is_empty() {
        kick(&s);
    }
    Ok(Json(json!({"data": sum})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    state: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /v1/okta/requests`: the shipments table (`state` filters by our state).
async fn list(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    q: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::Validation(format!("query: {e}")))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=100).contains(&limit) || q.offset.is_some_and(|o| o < 0) {
        return Err(ApiError::Validation(
            "`limit` must be 1-100 and `offset` ≥ 0".into(),
        ));
    }
    let (rows, total) = s
        .store
        .list_requests(&ListFilter {
            state: q.state,
            user_id: None,
            idp: Some("okta".into()),
            limit,
            offset: q.offset.unwrap_or(0),
        })
        .await?;
    let mut data = Vec::new();
    for r in &rows {
        let p = ostore::get(s.store.pool(), &r.id).await?;
        data.push(okta_view(r, p.as_ref()));
    }
    Ok(Json(
        json!({"data": data, "total_count": total, "limit": limit}),
    ))
}

/// `GET /v1/okta/requests/{id}`.
async fn get_one(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = engine::admin::find(&s, &id).await?;
    let p = ostore::get(s.store.pool(), &r.id).await?;
    let mut v = okta_view(&r, p.as_ref());
    v["timeline"] =
        serde_json::to_value(s.store.history(&r.id).await?).map_err(ApiError::internal)?;
    Ok(Json(json!({"data": v})))
}

async fn approve_route(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = approve(&s, &id).await?;
    let p = ostore::get(s.store.pool(), &r.id).await?;
    Ok(Json(json!({"data": okta_view(&r, p.as_ref())})))
}
