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
//! routes, which hand Okta-mode rows to [`api_retry`], [`api_resend_pin`], [`api_delete`].

use super::OktaState;
use super::store::{self as ostore, OktaRequest};
use super::triggers::{Order, StartError, Started, order_of_event, start_request};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::app::AppState;
use crate::domain::{Idp, RequestState};
use crate::store::{ListFilter, RequestRow, Store, now};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

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

fn okta(state: &AppState) -> Result<&OktaState, ApiError> {
    state
        .okta
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("Okta mode is off (no [okta] section)".into()))
}

/// The shared view plus the shipments-table state and Okta's part.
pub(crate) fn okta_view(r: &RequestRow, part: Option<&OktaRequest>) -> Value {
    let mut v = crate::api::shipments::view(r);
    v["table_state"] = json!(r.state.table_state());
    if let Some(p) = part {
        v["okta"] = json!({
            "user_id": p.okta_user_id,
            "login": p.login,
            "group_id": p.group_id,
            "product_id": p.product_id,
            "inventory_product_id": p.inventory_product_id,
            "customization_id": p.customization_id,
            "source": p.source,
            "enrollment_ids": p.enrollment_ids,
            "activated": p.activated,
        });
    }
    v
}

/// Writes the row only if the request is still `expected` (the state this handler
/// read: a worker may be writing too), retrying transient database errors. When it
/// moved meanwhile: 409 naming the state it is in now, nothing overwritten.
async fn save(
    state: &AppState,
    row: &RequestRow,
    expected: RequestState,
    note: &str,
) -> Result<(), ApiError> {
    super::step::persist_if(state, row, expected, note)
        .await
        .map_err(|f| match f {
            super::step::Fault::Moved(now) => ApiError::Conflict(format!(
                "request {} changed from {expected} to {now} while this ran (the processor or another admin acted on it); nothing was changed by this action: look at it again and repeat if still needed",
                row.id
            )),
            f => ApiError::Internal(f.message()),
        })
}

async fn part_of(state: &AppState, id: &str) -> Result<OktaRequest, ApiError> {
    ostore::get(state.store.pool(), id)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("request {id} has no Okta record")))
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
    let want = secret.expose_secret().as_bytes();
    let given = given.as_bytes();
    // Constant time over the expected length.
    let mut diff = u8::from(want.len() != given.len());
    for (i, w) in want.iter().enumerate() {
        diff |= w ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// `GET /v1/okta/events`: echoes `x-okta-verification-challenge`.
async fn verify(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let o = okta(&s)?;
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
    let o = okta(&s)?;
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
            okta::hooks::PREREGISTRATION_EVENT if o.config.trigger_mfa_initiated => {
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
            Ok(Started::Duplicate(id)) => {
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
async fn batch(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    body: Result<Json<BatchBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::Validation(format!("body: {e}")))?;
    let o = okta(&s)?;
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
    let mut results = Vec::new();
    let mut created = 0u64;
    for u in body.users {
        let (user, order) = match u {
            BatchUser::Login(l) => (l, default.clone()),
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
                            results.push(json!({"user": user, "status": "refused", "error": format!("group {g} is not mapped in [okta] groups")}));
                            continue;
                        }
                    },
                    None => default.clone(),
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
        let Some(order) = order else {
            results.push(json!({"user": user, "status": "refused", "error": "no order line: name a mapped group_id, or product_id, inventory_product_id and customization_id"}));
            continue;
        };
        match start_request(&s, &user, order, "batch").await {
            Ok(Started::Created(r)) => {
                created += 1;
                results.push(json!({"user": user, "status": "created", "request_id": r.id}));
            }
            Ok(Started::Duplicate(id)) => {
                results.push(json!({"user": user, "status": "already_open", "request_id": id}))
            }
            Err(e) => {
                results.push(json!({"user": user, "status": "refused", "error": e.to_string()}))
            }
        }
    }
    if created > 0 {
        kick(&s);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": results, "created": created})),
    ))
}

/// `POST /v1/okta/reconcile`.
async fn reconcile_now(
    State(s): State<Arc<AppState>>,
    _c: Caller,
) -> Result<Json<Value>, ApiError> {
    okta(&s)?;
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
    let r = crate::api::shipments::find(&s, &id).await?;
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

/// Approves an Okta-mode request waiting at the approval gate (`awaiting_approval`):
/// the admin confirms the key arrived, and Okta sends the PIN right away. The answer
/// is the request afterwards: `complete`, or `pin_pending` with `last_error` when Okta
/// could not be reached (the job sends it later).
pub async fn approve(state: &AppState, request_id: &str) -> Result<RequestRow, ApiError> {
    let o = okta(state)?;
    let mut r = crate::api::shipments::find(state, request_id).await?;
    if r.idp != Idp::Okta {
        return Err(ApiError::Conflict(format!(
            "request {} is an {} request; only Okta-mode requests have an approval gate",
            r.id, r.idp
        )));
    }
    if r.state != RequestState::AwaitingApproval {
        return Err(ApiError::Conflict(format!(
            "request {} is {}, not awaiting_approval",
            r.id, r.state
        )));
    }
    let part = part_of(state, &r.id).await?;
    r.state = RequestState::PinPending;
    save(
        state,
        &r,
        RequestState::AwaitingApproval,
        "approved by an admin: the key arrived",
    )
    .await?;
    match super::step::send_now(state, o, r.clone(), &part).await {
        Ok(done) => Ok(done),
        Err(m) => {
            r.last_error = Some(format!("sending the PIN failed, will retry: {m}"));
            save(state, &r, RequestState::PinPending, "").await?;
            state.store.schedule(&r.id, now()).await?;
            Ok(r)
        }
    }
}

/// `POST /v1/fpr/shipments/{id}/retry` for an Okta-mode request: the admin fixed the
/// cause and sets the request from `error` back to ongoing.
pub(crate) async fn api_retry(
    state: &AppState,
    mut row: RequestRow,
) -> Result<Json<Value>, ApiError> {
    let o = okta(state)?;
    if row.state != RequestState::Error {
        return Err(ApiError::Conflict(format!(
            "request is {}, not error",
            row.state
        )));
    }
    let pool = state.store.pool();
    let mut part = part_of(state, &row.id).await?;
    if let Some(holder) = ostore::lock_user(pool, &part.okta_user_id, &row.id).await? {
        return Err(ApiError::Conflict(format!(
            "the user has another open request ({holder}); finish or delete it first"
        )));
    }
    let note;
    if part.restart {
        // The enrollment is spent: withdraw what is left and start over.
        if let Some(sid) = row.shipment_id.clone() {
            match state.fulfiller.delete_fpr_shipment(&sid).await {
                Ok(())
                | Err(yubienterprise::ClientError::Api {
                    status: 404 | 409, ..
                }) => {}
                Err(e) => {
                    return Err(ApiError::FulfillerUnavailable {
                        message: format!("withdrawing the old shipment {sid}: {e}"),
                        request_id: row.id,
                    });
                }
            }
        }
        for id in &part.enrollment_ids {
            match o.client.delete_enrollment(&part.okta_user_id, id).await {
                Ok(()) | Err(okta::ClientError::Okta { status: 404, .. }) => {}
                Err(e) => {
                    return Err(ApiError::IdpUnavailable(format!(
                        "deleting the old enrollment {id} at Okta: {e}"
                    )));
                }
            }
        }
        part.enrollment_ids.clear();
        part.activated = false;
        part.restart = false;
        ostore::update(pool, &part).await?;
        ostore::set_create_body(pool, &row.id, "{}").await?;
        row.shipment_id = None;
        row.fulfiller_state = None;
        row.fulfiller_message = None;
        row.tracking = None;
        row.state = RequestState::Creating;
        note = "set back to ongoing by an admin: starting over with a new enrollment";
    } else if part.activated {
        row.state = RequestState::PinPending;
        note = "set back to ongoing by an admin: sending the PIN again";
    } else if row.shipment_id.is_some() {
        row.state = RequestState::Open;
        note = "set back to ongoing by an admin: polling the shipment again";
    } else {
        row.state = RequestState::Creating;
        note = "set back to ongoing by an admin";
    }
    row.last_error = None;
    if let Err(e) = save(state, &row, RequestState::Error, note).await {
        // Deleted meanwhile: the user's lock taken above is not this request's to keep.
        if matches!(state.store.get_request(&row.id).await, Ok(Some(n)) if n.state == RequestState::Deleted)
        {
            let _ = ostore::unlock_user(pool, &row.id).await;
        }
        return Err(e);
    }
    state.store.schedule(&row.id, now()).await?;
    Ok(Json(json!({"data": okta_view(&row, Some(&part))})))
}

/// `POST /v1/fpr/shipments/{id}/resend-pin` for an Okta-mode request: Okta mails the
/// PIN again, until the user's first sign-in with the key.
pub(crate) async fn api_resend_pin(
    state: &AppState,
    row: RequestRow,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let o = okta(state)?;
    let part = part_of(state, &row.id).await?;
    if row.state == RequestState::AwaitingApproval {
        return Err(ApiError::Conflict(
            "the request awaits approval; approve it (POST /v1/okta/requests/{id}/approve) and Okta sends the PIN".into(),
        ));
    }
    if !part.activated || row.state == RequestState::Deleted {
        return Err(ApiError::Conflict(format!(
            "no PIN to resend: the key is not activated at Okta (request is {})",
            row.state
        )));
    }
    match super::step::okta_send_pin(o, &part).await {
        Ok(true) => {
            save(
                state,
                &row,
                row.state,
                "PIN resent through Okta by an admin",
            )
            .await?;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"data": okta_view(&row, Some(&part))})),
            ))
        }
        Ok(false) => Err(ApiError::Conflict(
            "the PIN can no longer be resent: the user has signed in with the key, and Okta makes the PIN unavailable after the first sign-in. If the user lost the PIN, reset the key (or delete this request and order a new key)".into(),
        )),
        Err(super::step::Fault::Transient(m)) => Err(ApiError::IdpUnavailable(m)),
        Err(super::step::Fault::Fatal(m)) | Err(super::step::Fault::Fixable(m)) => {
            Err(ApiError::Idp(m))
        }
        Err(f @ super::step::Fault::Moved(_)) => Err(ApiError::Conflict(f.message())),
    }
}

/// `DELETE /v1/fpr/shipments/{id}` for an Okta-mode request: cancels the shipment at
/// the fulfiller (while editable), deletes the Okta enrollment, marks the row deleted
/// (200). A request still `creating` (a worker may be enrolling or ordering right now)
/// is set to `cancelling` instead, as a compare-and-set (202): the processor looks the
/// shipment up, then undoes it in the three places ([`super::step`]).
pub(crate) async fn api_delete(
    state: &AppState,
    mut row: RequestRow,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let o = okta(state)?;
    // Every write is a compare-and-set on the state read; when a worker moved the
    // request meanwhile, it is read again and the decision made again.
    for _ in 0..4 {
        match delete_once(state, o, row).await? {
            Ok(answer) => return Ok(answer),
            Err(now) => row = now,
        }
    }
    Err(ApiError::Conflict(
        "the request changed state four times while it was being deleted; send the DELETE again"
            .into(),
    ))
}

/// One try of [`api_delete`]: the answer, or the request as it is now when it moved
/// before the final write.
async fn delete_once(
    state: &AppState,
    o: &OktaState,
    mut row: RequestRow,
) -> Result<Result<(StatusCode, Json<Value>), RequestRow>, ApiError> {
    for attempt in 0.. {
        if row.state == RequestState::Cancelling {
            let part = ostore::get(state.store.pool(), &row.id).await?;
            return Ok(Ok((
                StatusCode::ACCEPTED,
                Json(json!({"data": okta_view(&row, part.as_ref())})),
            )));
        }
        if row.state != RequestState::Creating {
            break;
        }
        row.state = RequestState::Cancelling;
        row.last_error = None;
        if state
            .store
            .update_request_if(
                &row,
                RequestState::Creating,
                "cancel requested by an admin while the request was being created; the processor deletes what was made (shipment, Okta enrollment), then marks it deleted",
            )
            .await?
        {
            state.store.schedule(&row.id, now()).await?;
            let part = ostore::get(state.store.pool(), &row.id).await?;
            return Ok(Ok((
                StatusCode::ACCEPTED,
                Json(json!({"data": okta_view(&row, part.as_ref())})),
            )));
        }
        if attempt == 3 {
            return Err(ApiError::Conflict(format!(
                "request {} changed state four times while it was being cancelled; send the DELETE again",
                row.id
            )));
        }
        // The worker moved it (e.g. recorded the shipment): read it again.
        row = state
            .store
            .get_request(&row.id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no request {:?}", row.id)))?;
    }
    let part = ostore::get(state.store.pool(), &row.id).await?;
    if row.state == RequestState::Deleted {
        return Ok(Ok((
            StatusCode::OK,
            Json(json!({"data": okta_view(&row, part.as_ref())})),
        )));
    }
    let read = row.state;
    let mut fulfiller = "no shipment";
    if let Some(sid) = &row.shipment_id {
        fulfiller = match state.fulfiller.delete_fpr_shipment(sid).await {
            Ok(()) => "cancelled",
            Err(yubienterprise::ClientError::Api { status: 404, .. }) => "already gone",
            Err(yubienterprise::ClientError::Api { status: 409, .. }) => {
                "no longer editable (already being fulfilled); not cancelled"
            }
            Err(e) => {
                return Err(ApiError::FulfillerUnavailable {
                    message: format!("cancelling shipment {sid}: {e}"),
                    request_id: row.id,
                });
            }
        };
    }
    let mut okta_result = "no enrollment";
    if let Some(p) = &part {
        for id in &p.enrollment_ids {
            match o.client.delete_enrollment(&p.okta_user_id, id).await {
                Ok(()) => okta_result = "enrollment deleted",
                Err(okta::ClientError::Okta { status: 404, .. }) => {
                    okta_result = "enrollment already gone"
                }
                Err(e) => {
                    return Err(ApiError::IdpUnavailable(format!(
                        "deleting enrollment {id} at Okta: {e}"
                    )));
                }
            }
        }
    }
    row.state = RequestState::Deleted;
    row.last_error = None;
    let note = format!("deleted by an admin (fulfiller: {fulfiller}; Okta: {okta_result})");
    if let Err(e) = save(state, &row, read, &note).await {
        return match state.store.get_request(&row.id).await? {
            Some(now) if now.state != read => Ok(Err(now)),
            _ => Err(e),
        };
    }
    ostore::unlock_user(state.store.pool(), &row.id).await?;
    let mut v = okta_view(&row, part.as_ref());
    v["deleted"] = json!({"fulfiller": fulfiller, "okta": okta_result, "table": "deleted"});
    Ok(Ok((StatusCode::OK, Json(json!({"data": v})))))
}
