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
use crate::api::openapi::{
    BatchAnswer, ErrorBody, EventsAnswer, OktaRequestAnswer, OktaRequestDetailsAnswer,
    OktaRequestPage, ReconcileAnswer, Verification,
};
use crate::app::AppState;
use crate::store::{ListFilter, Store, now};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The Okta-mode routes, documented (merged into the API's [`OpenApiRouter`]).
pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(verify, events))
        .routes(routes!(batch))
        .routes(routes!(reconcile_now))
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(approve_route))
}

const OKTA_OFF: &str = "`api_error` `not_found`: Okta mode is off (no `[okta]` section)";

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
#[utoipa::path(
    get,
    path = "/v1/okta/events",
    operation_id = "okta_verify_event_hook",
    tag = "okta",
    summary = "Okta's one-time event hook verification",
    security(("okta_event_hook" = [])),
    params(("x-okta-verification-challenge" = String, Header, description = "Okta's challenge, echoed")),
    responses(
        (status = 200, description = "The challenge, echoed", body = Verification),
        (status = 400, description = "`api_error` `validation`: the challenge header is missing", body = ErrorBody),
        (status = 401, description = "`api_error` `unauthorized`: the event hook secret is missing or wrong", body = ErrorBody),
        (status = 404, description = OKTA_OFF, body = ErrorBody),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/okta/events",
    operation_id = "okta_event_hook",
    tag = "okta",
    summary = "An Okta event hook delivery (group membership, preregistration events)",
    security(("okta_event_hook" = [])),
    request_body(content = serde_json::Value, content_type = "application/json", description = "Okta's event hook envelope (`data.events[]`)"),
    responses(
        (status = 200, description = "What each event started", body = EventsAnswer),
        (status = 400, description = "`api_error` `validation`: not an Okta event hook delivery", body = ErrorBody),
        (status = 401, description = "`api_error` `unauthorized`: the event hook secret is missing or wrong", body = ErrorBody),
        (status = 404, description = OKTA_OFF, body = ErrorBody),
        (status = 502, description = "`idp_error`: Okta could not be reached for some event; Okta redelivers", body = ErrorBody),
    )
)]
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
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
enum BatchUser {
    /// The user's login or Okta id (the batch's default group's order).
    Login(String),
    /// The user with the order: a mapped `group_id`, or the three product fields.
    Full {
        user: String,
        #[serde(default)]
        group_id: Option<String>,
        #[serde(default)]
        #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
        product_id: Option<u32>,
        #[serde(default)]
        #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
        inventory_product_id: Option<u32>,
        #[serde(default)]
        customization_id: Option<String>,
    },
}

/// `POST /v1/okta/batch`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    /// 1-1000 users.
    #[schema(min_items = 1, max_items = 1000)]
    users: Vec<BatchUser>,
    /// The default order: a group mapped in `[okta] groups` (else the first mapped).
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
#[utoipa::path(
    post,
    path = "/v1/okta/batch",
    operation_id = "okta_batch",
    tag = "okta",
    summary = "Start requests for a list of users",
    security(("bearer" = [])),
    params(crate::api::create::IdempotencyKey),
    request_body(content = BatchBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Each user's outcome, in the order given", body = BatchAnswer),
        (status = 400, description = "`api_error` `validation`: not the body's shape, 0 or more than 1000 users, an unmapped `group_id`", body = ErrorBody),
        (status = 404, description = OKTA_OFF, body = ErrorBody),
    )
)]
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
                    Ok(Started::Created(r)) => {
                        // Its job is due now: the runner starts it while the rest of
                        // a long batch is still being recorded.
                        s.runner.kick();
                        (
                            json!({"user": user, "status": "created", "request_id": r.id}),
                            true,
                        )
                    }
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
                    shipping_overrides: Default::default(),
                    key: Default::default(),
                }),
                (Some(b), p, i, c) => Some(Order {
                    group_id: b.group_id,
                    product_id: p.unwrap_or(b.product_id),
                    inventory_product_id: i.unwrap_or(b.inventory_product_id),
                    customization_id: c.unwrap_or(b.customization_id),
                    shipping_overrides: Default::default(),
                    key: Default::default(),
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
#[utoipa::path(
    post,
    path = "/v1/okta/reconcile",
    operation_id = "okta_reconcile",
    tag = "okta",
    summary = "Start a request for every member of a mapped group who never had one",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the reconciliation did", body = ReconcileAnswer),
        (status = 404, description = OKTA_OFF, body = ErrorBody),
        (status = 502, description = "`idp_error`: Okta could not be reached", body = ErrorBody),
    )
)]
async fn reconcile_now(
    State(s): State<Arc<AppState>>,
    _c: Caller,
) -> Result<Json<Value>, ApiError> {
    super::admin::okta(&s)?;
    let sum = super::reconcile(&s).await?;
    if !sum.started.is_empty() {
        kick(&s);
    }
    Ok(Json(json!({"data": sum})))
}

/// The shipments table's query (unknown parameters are refused).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only requests in this state (ours: `open`, `pin_pending`, ...).
    state: Option<String>,
    /// The page size, 1-100 (default 100).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Skip this many.
    #[param(minimum = 0)]
    offset: Option<i64>,
}

/// `GET /v1/okta/requests`: the shipments table (`state` filters by our state).
#[utoipa::path(
    get,
    path = "/v1/okta/requests",
    operation_id = "okta_list_requests",
    tag = "okta",
    summary = "The shipments table",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "A page of Okta-mode requests, newest first", body = OktaRequestPage),
        (status = 400, description = "`api_error` `validation`: a parameter out of range or unknown", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    get,
    path = "/v1/okta/requests/{id}",
    operation_id = "okta_get_request",
    tag = "okta",
    summary = "One Okta-mode request with Okta's part and its timeline",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The connector's request id or the fulfiller's shipment id")),
    responses(
        (status = 200, description = "The request", body = OktaRequestDetailsAnswer),
        (status = 404, description = "`api_error` `not_found`: no such request or shipment", body = ErrorBody),
    )
)]
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

/// `POST /v1/okta/requests/{id}/approve`: the approval gate.
#[utoipa::path(
    post,
    path = "/v1/okta/requests/{id}/approve",
    operation_id = "okta_approve",
    tag = "okta",
    summary = "Approve the PIN release (the key arrived): Okta sends the PIN",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The connector's request id or the fulfiller's shipment id")),
    responses(
        (status = 200, description = "The request afterwards: `complete`, or `pin_pending` with `last_error` when Okta could not be reached (the job sends it later)", body = OktaRequestAnswer),
        (status = 404, description = "`api_error` `not_found`: no such request, or Okta mode is off", body = ErrorBody),
        (status = 409, description = "`api_error` `conflict`: not an Okta-mode request awaiting approval", body = ErrorBody),
        (status = 502, description = "`idp_error`: Okta could not be reached", body = ErrorBody),
    )
)]
async fn approve_route(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = approve(&s, &id).await?;
    let p = ostore::get(s.store.pool(), &r.id).await?;
    Ok(Json(json!({"data": okta_view(&r, p.as_ref())})))
}
