//! Reading and managing tracked requests: get (never the PIN), list, process now,
//! retry, resend PIN, delete.
//!
//! A worker may be processing the request while an admin acts on it: every state change
//! here is a compare-and-set on the state the handler read
//! ([`Store::update_request_if`]). When the request moved meanwhile, the handler reads
//! it again and decides again (DELETE), or answers 409 naming the state it is in now.

use super::auth::Caller;
use super::error::ApiError;
use crate::app::AppState;
use crate::domain::{Idp, RequestState};
use crate::secrets::Purpose;
use crate::store::{ListFilter, RequestRow, Store, now};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The public view of a request (never a secret).
pub(crate) fn view(r: &RequestRow) -> Value {
    json!({
        "request_id": r.id,
        "idp": r.idp,
        "shipment_id": r.shipment_id,
        "state": r.state,
        "user_id": r.user_id,
        "user": r.user_label,
        "fulfiller_state": r.fulfiller_state,
        "fulfiller_state_message": r.fulfiller_message,
        "serial_number": r.serial,
        "firmware_version": r.firmware,
        "tracking_link": r.tracking,
        "last_error": r.last_error,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    })
}

/// Finds by the connector's request id or the fulfiller's shipment id.
pub(crate) async fn find(s: &AppState, id: &str) -> Result<RequestRow, ApiError> {
    if let Some(r) = s.store.get_request(id).await? {
        return Ok(r);
    }
    s.store
        .by_shipment(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no request or shipment {id:?}")))
}

/// `GET /v1/fpr/shipments/{id}`.
pub async fn get_one(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = find(&s, &id).await?;
    let mut v = view(&r);
    add_pin_hold(&s, &r, &mut v).await?;
    v["timeline"] =
        serde_json::to_value(s.store.history(&r.id).await?).map_err(ApiError::internal)?;
    Ok(Json(json!({"data": v})))
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
        "data": rows.iter().map(view).collect::<Vec<_>>(),
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

/// `POST /v1/fpr/shipments/{id}/retry`.
pub async fn retry(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut r = find(&s, &id).await?;
    if r.idp == Idp::Okta {
        return crate::okta::api_retry(&s, r).await;
    }
    if r.state != RequestState::Error {
        return Err(ApiError::Conflict(format!(
            "request is {}, not error",
            r.state
        )));
    }
    let pin_held = s.store.get_secret(&r.id, Purpose::Pin).await?.is_some();
    r.state = match (&r.shipment_id, pin_held) {
        (None, _) => RequestState::Creating,
        (Some(_), true) => RequestState::PinPending,
        (Some(_), false) => RequestState::Open,
    };
    write_if(
        &s,
        &r,
        RequestState::Error,
        "retried by an admin",
        "retried",
    )
    .await?;
    s.store.schedule(&r.id, now()).await?;
    s.runner.kick();
    Ok(Json(json!({"data": view(&r)})))
}

/// `POST /v1/fpr/shipments/{id}/resend-pin`.
pub async fn resend_pin(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut r = find(&s, &id).await?;
    if r.idp == Idp::Okta {
        return crate::okta::api_resend_pin(&s, r).await;
    }
    // The retention ended but the cleanup has not run yet: purge now.
    if let Some(h) = crate::pin::hold(&s, &r.id).await?
        && h.purged_at.is_none()
        && h.held_until.is_some_and(|u| u < now())
    {
        crate::pin::purge(&s, &r.id, now(), "retention").await?;
    }
    if s.store.get_secret(&r.id, Purpose::Pin).await?.is_none() {
        return Err(match crate::pin::hold(&s, &r.id).await? {
            Some(h) if h.purged_at.is_some() => ApiError::PinPurged {
                message: crate::pin::gone_message(&h),
                reason: h.purge_reason.unwrap_or_default(),
                purged_at: h.purged_at.map(crate::pin::date).unwrap_or_default(),
            },
            _ => ApiError::Conflict(format!(
                "the request is {}: there is no PIN to resend yet (it is read from the key's shipment once the fulfiller ships it)",
                r.state
            )),
        });
    }
    let read = std::mem::replace(&mut r.state, RequestState::PinPending);
    write_if(
        &s,
        &r,
        read,
        "PIN resend requested by an admin",
        "marked for a PIN resend",
    )
    .await?;
    crate::pin::forget_deliveries(&s, &r.id).await?;
    s.store.schedule(&r.id, now()).await?;
    s.runner.kick();
    let mut v = view(&r);
    add_pin_hold(&s, &r, &mut v).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"data": v}))))
}

/// [`Store::update_request_if`] on the state the handler read (`expected`); when the
/// request moved meanwhile (a worker or another admin wrote first), 409 naming the state
/// it is in now, and nothing is overwritten. `what` completes "the request was not ...".
async fn write_if(
    s: &AppState,
    r: &RequestRow,
    expected: RequestState,
    note: &str,
    what: &str,
) -> Result<(), ApiError> {
    if s.store.update_request_if(r, expected, note).await? {
        return Ok(());
    }
    let now_state = s
        .store
        .get_request(&r.id)
        .await?
        .map_or_else(|| "gone".to_owned(), |n| n.state.to_string());
    Err(ApiError::Conflict(format!(
        "request {} changed from {expected} to {now_state} while this ran (the processor or another admin acted on it); it was not {what}: look at it again and repeat if still needed",
        r.id
    )))
}

/// Adds `pin_held_until` (and, once purged, `pin_purged_at` and `pin_purge_reason`) to
/// a request's view. Never the PIN.
async fn add_pin_hold(s: &AppState, r: &RequestRow, v: &mut Value) -> Result<(), ApiError> {
    let h = crate::pin::hold(s, &r.id).await?;
    let held = s.store.get_secret(&r.id, Purpose::Pin).await?.is_some();
    v["pin_held_until"] = match &h {
        Some(h) if held => json!(h.held_until.map(crate::pin::date)),
        _ => Value::Null,
    };
    if let Some(h) = h.filter(|h| h.purged_at.is_some()) {
        v["pin_purged_at"] = json!(h.purged_at.map(crate::pin::date));
        v["pin_purge_reason"] = json!(h.purge_reason);
    }
    Ok(())
}

/// `POST /v1/fpr/shipments/{id}/pin-acknowledged`: an admin confirms the user has signed
/// in with the key, so the held PIN is purged now (no more resends).
pub async fn pin_acknowledged(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let r = find(&s, &id).await?;
    let h = crate::pin::hold(&s, &r.id).await?;
    match &h {
        None => {
            return Err(ApiError::Conflict(format!(
                "the request is {}: its PIN has not been delivered yet, so there is nothing to acknowledge",
                r.state
            )));
        }
        Some(h) if h.purged_at.is_none() => {
            crate::pin::purge(&s, &r.id, now(), "acknowledged").await?;
            // Only the audit entry: the row is written back as read, so only if no one
            // changed it meanwhile (read again, up to four times).
            let mut row = r.clone();
            for _ in 0..4 {
                let read = row.state;
                if s.store
                    .update_request_if(
                        &row,
                        read,
                        "an admin acknowledged the user's sign-in; PIN purged",
                    )
                    .await?
                {
                    break;
                }
                row = find(&s, &r.id).await?;
            }
        }
        Some(_) => {}
    }
    let mut v = view(&r);
    add_pin_hold(&s, &r, &mut v).await?;
    Ok(Json(json!({"data": v})))
}

/// `DELETE /v1/fpr/shipments/{id}`: cancels at the fulfiller while editable. A
/// complete request (key shipped and registered) is only removed from tracking, and its
/// held PIN purged.
pub async fn delete(
    State(s): State<Arc<AppState>>,
    _c: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut r = find(&s, &id).await?;
    if r.idp == Idp::Okta {
        return crate::okta::api_delete(&s, r).await;
    }
    // The worker may move the request while this runs: every write is a compare-and-set
    // on the state read, and when it loses the request is read again and the decision
    // made again (cancelling a request still being created; a request that recorded its
    // shipment meanwhile has it deleted at the fulfiller below).
    for attempt in 0.. {
        if attempt > 0 {
            if attempt == 4 {
                return Err(ApiError::Conflict(format!(
                    "request {} changed state four times while it was being deleted; send the DELETE again",
                    r.id
                )));
            }
            r = s
                .store
                .get_request(&r.id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no request {:?}", r.id)))?;
        }
        let shipped = r.state == RequestState::Complete;
        let read = r.state;
        if let Some(sid) = r.shipment_id.as_ref().filter(|_| !shipped) {
            match s.fulfiller.delete_fpr_shipment(sid).await {
                Ok(()) | Err(yubienterprise::ClientError::Api { status: 404, .. }) => {}
                Err(yubienterprise::ClientError::Api {
                    status: 409, body, ..
                }) => {
                    return Err(ApiError::Conflict(format!(
                        "the fulfiller can no longer cancel shipment {sid}: {}",
                        body.message
                    )));
                }
                Err(e) => {
                    return Err(ApiError::FulfillerUnavailable {
                        message: e.to_string(),
                        request_id: r.id,
                    });
                }
            }
        } else if r.state == RequestState::Creating || r.state == RequestState::Cancelling {
            // The create call may have reached the fulfiller: record the intent; the
            // processor looks the shipment up by reference, deletes it, then marks the
            // request deleted.
            r.state = RequestState::Cancelling;
            r.last_error = None;
            if s.store
                .update_request_if(
                    &r,
                    read,
                    "cancel requested by an admin while the shipment was being created",
                )
                .await?
            {
                s.store.schedule(&r.id, now()).await?;
                s.runner.kick();
                return Ok((StatusCode::ACCEPTED, Json(json!({"data": view(&r)}))));
            }
            continue;
        }
        r.state = RequestState::Deleted;
        let note = if shipped {
            "deleted by an admin (the key had shipped and was registered: nothing to cancel at the fulfiller)"
        } else {
            "deleted by an admin"
        };
        if s.store.update_request_if(&r, read, note).await? {
            break;
        }
    }
    crate::pin::purge(&s, &r.id, now(), "deleted").await?;
    s.store.delete_secret(&r.id, Purpose::ResponseKey).await?;
    Ok((StatusCode::OK, Json(json!({"data": view(&r)}))))
}
