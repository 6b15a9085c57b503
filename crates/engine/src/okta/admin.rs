//! What an admin does to an Okta-mode request (the guide's shipments table): approve
//! the PIN release, retry, resend the PIN through Okta, delete (cancel the shipment,
//! delete the enrollment). Reached through [`crate::admin`] for the shared actions.

use super::OktaState;
use super::store::{self as ostore, OktaRequest};
use crate::admin::Acted;
use crate::domain::{Idp, RequestState};
use crate::error::ServiceError;
use crate::services::Services;
use crate::store::{RequestRow, Store, now};
use serde_json::{Value, json};

pub fn okta(state: &Services) -> Result<&OktaState, ServiceError> {
    state
        .okta
        .as_ref()
        .ok_or_else(|| ServiceError::NotFound("Okta mode is off (no [okta] section)".into()))
}

/// The shared view plus the shipments-table state and Okta's part.
pub fn okta_view(r: &RequestRow, part: Option<&OktaRequest>) -> Value {
    let mut v = crate::admin::view(r);
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
        if let Some(u) = &p.key.entra_user_id {
            v["okta"]["entra_credential"] =
                json!({"user_id": u, "registered": p.key.entra_registered});
        }
    }
    v
}

/// Writes the row only if the request is still `expected` (the state this handler
/// read: a worker may be writing too), retrying transient database errors. When it
/// moved meanwhile: 409 naming the state it is in now, nothing overwritten.
async fn save(
    state: &Services,
    row: &RequestRow,
    expected: RequestState,
    note: &str,
) -> Result<(), ServiceError> {
    super::step::persist_if(state, row, expected, note)
        .await
        .map_err(|f| match f {
            super::step::Fault::Moved(now) => ServiceError::Conflict(format!(
                "request {} changed from {expected} to {now} while this ran (the processor or another admin acted on it); nothing was changed by this action: look at it again and repeat if still needed",
                row.id
            )),
            f => ServiceError::Internal(f.message()),
        })
}

async fn part_of(state: &Services, id: &str) -> Result<OktaRequest, ServiceError> {
    ostore::get(state.store.pool(), id)
        .await?
        .ok_or_else(|| ServiceError::Conflict(format!("request {id} has no Okta record")))
}

/// How long after an approval its job runs, when the approval's own PIN send did not
/// finish (seconds).
const APPROVAL_GRACE: i64 = 60;

/// Approves an Okta-mode request waiting at the approval gate (`awaiting_approval`):
/// the admin confirms the key arrived, and Okta sends the PIN right away. The answer
/// is the request afterwards: `complete`, or `pin_pending` with `last_error` when Okta
/// could not be reached (the job sends it later).
pub async fn approve(state: &Services, request_id: &str) -> Result<RequestRow, ServiceError> {
    let o = okta(state)?;
    let mut r = crate::admin::find(state, request_id).await?;
    if r.idp != Idp::Okta {
        return Err(ServiceError::Conflict(format!(
            "request {} is an {} request; only Okta-mode requests have an approval gate",
            r.id, r.idp
        )));
    }
    if r.state != RequestState::AwaitingApproval {
        return Err(ServiceError::Conflict(format!(
            "request {} is {}, not awaiting_approval",
            r.id, r.state
        )));
    }
    let part = part_of(state, &r.id).await?;
    // A job first, due a little later: if this process dies between the state write
    // and Okta's send-pin below, the runner sends the PIN (before, the request stayed in
    // `pin_pending` with no job, and no PIN was ever sent). When the send below works,
    // the job finds the request complete and ends.
    state.store.schedule(&r.id, now() + APPROVAL_GRACE).await?;
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

/// Retry for an Okta-mode request: the admin fixed the
/// cause and sets the request from `error` back to ongoing.
pub async fn retry(state: &Services, mut row: RequestRow) -> Result<Acted, ServiceError> {
    let o = okta(state)?;
    if row.state != RequestState::Error {
        return Err(ServiceError::Conflict(format!(
            "request is {}, not error",
            row.state
        )));
    }
    let pool = state.store.pool();
    let mut part = part_of(state, &row.id).await?;
    let lock = ostore::lock_name(&part.okta_user_id, part.key.slot.as_deref());
    if let Some(holder) = ostore::lock_user(pool, &lock, &row.id).await? {
        return Err(ServiceError::Conflict(format!(
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
                    return Err(ServiceError::FulfillerUnavailable {
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
                    return Err(ServiceError::IdpUnavailable(format!(
                        "deleting the old enrollment {id} at Okta: {e}"
                    )));
                }
            }
        }
        part.enrollment_ids.clear();
        part.activated = false;
        part.restart = false;
        // A new key: its Entra credential (if any) is registered anew.
        part.key.entra_registered = false;
        ostore::update(pool, &part).await?;
        ostore::set_create_body(pool, &row.id, "{}").await?;
        row.shipment_id = None;
        row.fulfiller_state = None;
        row.fulfiller_message = None;
        row.tracking = None;
        row.state = RequestState::Creating;
        note = "set back to ongoing by an admin: starting over with a new enrollment";
    } else if part.activated && part.key.entra_user_id.is_some() && !part.key.entra_registered {
        // Active at Okta, its Entra credential not registered (Graph refused it): the
        // shipment is read again and the same key registered at Entra.
        row.state = RequestState::Open;
        note = "set back to ongoing by an admin: registering the key at Entra again";
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
    Ok(Acted::done(okta_view(&row, Some(&part))))
}

/// Resend the PIN for an Okta-mode request: Okta mails the
/// PIN again, until the user's first sign-in with the key.
pub async fn resend_pin(state: &Services, row: RequestRow) -> Result<Acted, ServiceError> {
    let o = okta(state)?;
    let part = part_of(state, &row.id).await?;
    if row.state == RequestState::AwaitingApproval {
        return Err(ServiceError::Conflict(
            "the request awaits approval; approve it (POST /v1/okta/requests/{id}/approve) and Okta sends the PIN".into(),
        ));
    }
    if !part.activated || row.state == RequestState::Deleted {
        return Err(ServiceError::Conflict(format!(
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
            Ok(Acted::started(okta_view(&row, Some(&part))))
        }
        Ok(false) => Err(ServiceError::Conflict(
            "the PIN can no longer be resent: the user has signed in with the key, and Okta makes the PIN unavailable after the first sign-in. If the user lost the PIN, reset the key (or delete this request and order a new key)".into(),
        )),
        Err(super::step::Fault::Transient(m)) => Err(ServiceError::IdpUnavailable(m)),
        Err(super::step::Fault::Fatal(m)) | Err(super::step::Fault::Fixable(m)) => {
            Err(ServiceError::Idp(m))
        }
        Err(f @ super::step::Fault::Moved(_)) => Err(ServiceError::Conflict(f.message())),
    }
}

/// Delete an Okta-mode request: cancels the shipment at
/// the fulfiller (while editable), deletes the Okta enrollment, marks the row deleted
/// (200). A request still `creating` (a worker may be enrolling or ordering right now)
/// is set to `cancelling` instead, as a compare-and-set (202): the processor looks the
/// shipment up, then undoes it in the three places ([`super::step`]).
pub async fn delete(state: &Services, mut row: RequestRow) -> Result<Acted, ServiceError> {
    let o = okta(state)?;
    // Every write is a compare-and-set on the state read; when a worker moved the
    // request meanwhile, it is read again and the decision made again.
    for _ in 0..4 {
        match delete_once(state, o, row).await? {
            Ok(answer) => return Ok(answer),
            Err(now) => row = now,
        }
    }
    Err(ServiceError::Conflict(
        "the request changed state four times while it was being deleted; send the DELETE again"
            .into(),
    ))
}

/// One try of [`delete`]: the answer, or the request as it is now when it moved
/// before the final write.
async fn delete_once(
    state: &Services,
    o: &OktaState,
    mut row: RequestRow,
) -> Result<Result<Acted, RequestRow>, ServiceError> {
    for attempt in 0.. {
        if row.state == RequestState::Cancelling {
            let part = ostore::get(state.store.pool(), &row.id).await?;
            return Ok(Ok(Acted::started(okta_view(&row, part.as_ref()))));
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
            return Ok(Ok(Acted::started(okta_view(&row, part.as_ref()))));
        }
        if attempt == 3 {
            return Err(ServiceError::Conflict(format!(
                "request {} changed state four times while it was being cancelled; send the DELETE again",
                row.id
            )));
        }
        // The worker moved it (e.g. recorded the shipment): read it again.
        row = state
            .store
            .get_request(&row.id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no request {:?}", row.id)))?;
    }
    let part = ostore::get(state.store.pool(), &row.id).await?;
    if row.state == RequestState::Deleted {
        return Ok(Ok(Acted::done(okta_view(&row, part.as_ref()))));
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
                return Err(ServiceError::FulfillerUnavailable {
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
                    return Err(ServiceError::IdpUnavailable(format!(
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
    // The response key of an Entra credential the key carried (a credential request).
    state
        .store
        .delete_secret(&row.id, crate::secrets::Purpose::ResponseKey)
        .await?;
    let mut v = okta_view(&row, part.as_ref());
    v["deleted"] = json!({"fulfiller": fulfiller, "okta": okta_result, "table": "deleted"});
    Ok(Ok(Acted::done(v)))
}
