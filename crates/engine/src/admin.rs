//! What an admin does to a tracked request, in either mode: read it (never the PIN),
//! retry, resend the PIN, acknowledge the sign-in, delete. The HTTP API and the console
//! both call these; neither calls the other.
//!
//! A worker may be processing the request while an admin acts on it: every state change
//! here is a compare-and-set on the state read ([`Store::update_request_if`]). When the
//! request moved meanwhile, the action reads it again and decides again (delete), or is
//! refused naming the state it is in now.

use crate::domain::{Idp, RequestState};
use crate::error::ServiceError;
use crate::secrets::Purpose;
use crate::services::Services;
use crate::store::{RequestRow, Store, now};
use serde_json::{Value, json};

/// What an admin action came to: the request's view afterwards, and whether the work
/// was only started (the runner finishes it; the API answers 202) or is done (200).
#[derive(Debug, Clone)]
pub struct Acted {
    /// The request afterwards (never a secret).
    pub view: Value,
    /// Started, not done.
    pub started: bool,
}

impl Acted {
    pub(crate) fn done(view: Value) -> Self {
        Self {
            view,
            started: false,
        }
    }

    pub(crate) fn started(view: Value) -> Self {
        Self {
            view,
            started: true,
        }
    }
}

/// The public view of a request (never a secret).
pub fn view(r: &RequestRow) -> Value {
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
pub async fn find(s: &Services, id: &str) -> Result<RequestRow, ServiceError> {
    if let Some(r) = s.store.get_request(id).await? {
        return Ok(r);
    }
    s.store
        .by_shipment(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no request or shipment {id:?}")))
}

/// A request's view with its PIN hold and its timeline (never the PIN).
pub async fn details(s: &Services, id: &str) -> Result<Value, ServiceError> {
    let r = find(s, id).await?;
    let mut v = view(&r);
    add_pin_hold(s, &r, &mut v).await?;
    v["timeline"] =
        serde_json::to_value(s.store.history(&r.id).await?).map_err(ServiceError::internal)?;
    Ok(v)
}

/// Retry (`POST /v1/fpr/shipments/{id}/retry`): a request in `error` goes back to where
/// it stopped, and is processed now.
pub async fn retry(s: &Services, id: &str) -> Result<Acted, ServiceError> {
    let mut r = find(s, id).await?;
    if r.idp == Idp::Okta {
        return crate::okta::admin::retry(s, r).await;
    }
    if r.state != RequestState::Error {
        return Err(ServiceError::Conflict(format!(
            "request is {}, not error",
            r.state
        )));
    }
    let pin_held = s.store.get_secret(&r.id, Purpose::Pin).await?.is_some();
    // A key riding in another request's shipment has no shipment id of its own: it
    // starts from `creating`, which finds the lead's shipment again.
    let rider = crate::process::Rider::of(&r).is_some();
    r.state = match (&r.shipment_id, pin_held) {
        (_, true) if rider => RequestState::PinPending,
        (None, _) => RequestState::Creating,
        (Some(_), true) => RequestState::PinPending,
        (Some(_), false) => RequestState::Open,
    };
    write_if(s, &r, RequestState::Error, "retried by an admin", "retried").await?;
    s.store.schedule(&r.id, now()).await?;
    s.runner.kick();
    Ok(Acted::done(view(&r)))
}

/// Resend the PIN (`POST /v1/fpr/shipments/{id}/resend-pin`): every recipient is mailed
/// again by the runner.
pub async fn resend_pin(s: &Services, id: &str) -> Result<Acted, ServiceError> {
    let mut r = find(s, id).await?;
    if r.idp == Idp::Okta {
        return crate::okta::admin::resend_pin(s, r).await;
    }
    // The retention ended but the cleanup has not run yet: purge now.
    if let Some(h) = crate::pin::hold(s, &r.id).await?
        && h.purged_at.is_none()
        && h.held_until.is_some_and(|u| u < now())
    {
        crate::pin::purge(s, &r.id, now(), "retention").await?;
    }
    if s.store.get_secret(&r.id, Purpose::Pin).await?.is_none() {
        return Err(match crate::pin::hold(s, &r.id).await? {
            Some(h) if h.purged_at.is_some() => ServiceError::PinPurged {
                message: crate::pin::gone_message(&h),
                reason: h.purge_reason.unwrap_or_default(),
                purged_at: h.purged_at.map(crate::pin::date).unwrap_or_default(),
            },
            _ => ServiceError::Conflict(format!(
                "the request is {}: there is no PIN to resend yet (it is read from the key's shipment once the fulfiller ships it)",
                r.state
            )),
        });
    }
    let read = std::mem::replace(&mut r.state, RequestState::PinPending);
    write_if(
        s,
        &r,
        read,
        "PIN resend requested by an admin",
        "marked for a PIN resend",
    )
    .await?;
    crate::pin::forget_deliveries(s, &r.id).await?;
    s.store.schedule(&r.id, now()).await?;
    s.runner.kick();
    let mut v = view(&r);
    add_pin_hold(s, &r, &mut v).await?;
    Ok(Acted::started(v))
}

/// `POST /v1/fpr/shipments/{id}/pin-acknowledged`: an admin confirms the user has signed
/// in with the key, so the held PIN is purged now (no more resends).
pub async fn pin_acknowledged(s: &Services, id: &str) -> Result<Acted, ServiceError> {
    let r = find(s, id).await?;
    let h = crate::pin::hold(s, &r.id).await?;
    match &h {
        None => {
            return Err(ServiceError::Conflict(format!(
                "the request is {}: its PIN has not been delivered yet, so there is nothing to acknowledge",
                r.state
            )));
        }
        Some(h) if h.purged_at.is_none() => {
            crate::pin::purge(s, &r.id, now(), "acknowledged").await?;
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
                row = find(s, &r.id).await?;
            }
        }
        Some(_) => {}
    }
    let mut v = view(&r);
    add_pin_hold(s, &r, &mut v).await?;
    Ok(Acted::done(v))
}

/// Delete (`DELETE /v1/fpr/shipments/{id}`): cancels at the fulfiller while editable. A
/// complete request (key shipped and registered) is only removed from tracking, and its
/// held PIN purged.
pub async fn delete(s: &Services, id: &str) -> Result<Acted, ServiceError> {
    let mut r = find(s, id).await?;
    if r.idp == Idp::Okta {
        return crate::okta::admin::delete(s, r).await;
    }
    // The worker may move the request while this runs: every write is a compare-and-set
    // on the state read, and when it loses the request is read again and the decision
    // made again (cancelling a request still being created; a request that recorded its
    // shipment meanwhile has it deleted at the fulfiller below).
    for attempt in 0.. {
        if attempt > 0 {
            if attempt == 4 {
                return Err(ServiceError::Conflict(format!(
                    "request {} changed state four times while it was being deleted; send the DELETE again",
                    r.id
                )));
            }
            r = s
                .store
                .get_request(&r.id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(format!("no request {:?}", r.id)))?;
        }
        let shipped = r.state == RequestState::Complete;
        let read = r.state;
        if let Some(sid) = r.shipment_id.as_ref().filter(|_| !shipped) {
            match s.fulfiller.delete_fpr_shipment(sid).await {
                Ok(()) | Err(yubienterprise::ClientError::Api { status: 404, .. }) => {}
                Err(yubienterprise::ClientError::Api {
                    status: 409, body, ..
                }) => {
                    return Err(ServiceError::Conflict(format!(
                        "the fulfiller can no longer cancel shipment {sid}: {}",
                        body.message
                    )));
                }
                Err(e) => {
                    return Err(ServiceError::FulfillerUnavailable {
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
                return Ok(Acted::started(view(&r)));
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
    crate::pin::purge(s, &r.id, now(), "deleted").await?;
    s.store.delete_secret(&r.id, Purpose::ResponseKey).await?;
    Ok(Acted::done(view(&r)))
}

/// [`Store::update_request_if`] on the state the handler read (`expected`); when the
/// request moved meanwhile (a worker or another admin wrote first), 409 naming the state
/// it is in now, and nothing is overwritten. `what` completes "the request was not ...".
async fn write_if(
    s: &Services,
    r: &RequestRow,
    expected: RequestState,
    note: &str,
    what: &str,
) -> Result<(), ServiceError> {
    if s.store.update_request_if(r, expected, note).await? {
        return Ok(());
    }
    let now_state = s
        .store
        .get_request(&r.id)
        .await?
        .map_or_else(|| "gone".to_owned(), |n| n.state.to_string());
    Err(ServiceError::Conflict(format!(
        "request {} changed from {expected} to {now_state} while this ran (the processor or another admin acted on it); it was not {what}: look at it again and repeat if still needed",
        r.id
    )))
}

/// Adds `pin_held_until` (and, once purged, `pin_purged_at` and `pin_purge_reason`) to
/// a request's view. Never the PIN.
async fn add_pin_hold(s: &Services, r: &RequestRow, v: &mut Value) -> Result<(), ServiceError> {
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
