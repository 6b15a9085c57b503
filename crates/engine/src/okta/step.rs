//! The per-user flow: Okta `enroll` with a fulfiller transport key → fulfiller shipment
//! with the returned JWEs (exactly once, as in Entra mode: the intent is recorded before
//! the call and an earlier attempt's shipment is adopted) → poll → on 103/104 Okta
//! `activate` with the responses, serial, firmware and the fulfiller's signing keys →
//! approval gate → Okta `send-pin` → complete.
//!
//! Errors that end the enrollment (Okta refused the enrollment, the fulfiller refused or
//! deleted the shipment) call `mark-error` on it and make the next retry start over.
//! Errors the admin can fix where they are keep the enrollment: a fulfiller error state
//! (address, phone) — the retry polls the same shipment again, as the guide's FAQ says —
//! and Okta refusing the activation — the retry activates the same, shipped key.
//!
//! An admin's DELETE while `creating` sets `cancelling` (a compare-and-set); every write
//! of `create` that could race with it is conditional on `creating` (or leaves the state
//! alone), and errors are recorded only in the state the run acted on, so a worker never
//! overwrites the cancel: it carries it out (`cancel`). The same holds for the other
//! states: every write of a run is a compare-and-set on the state it read, so an admin's
//! DELETE or retry that lands while the worker polls stays; the run ends with
//! `Step::Moved` and the request is read again and decided on as it now is.

use super::OktaState;
use super::store::{self as ostore, OktaRequest};
use crate::domain::RequestState;
use crate::process::{CreateError, Step, StepError, Undone, fail, undo_shipment};
use crate::secrets::Purpose;
use crate::services::Services;
use crate::store::{RequestRow, Store};
use yubienterprise::ClientError;
use yubienterprise::fpr::{CreateFprShipment, ProductCustomization, ShipmentItemRequest};

/// How a phase failed.
pub(crate) enum Fault {
    /// Try again later.
    Transient(String),
    /// The enrollment cannot go on: mark it errored, start over on retry.
    Fatal(String),
    /// The admin can fix it where it is (the fulfiller's error states, the profile):
    /// the retry continues from the same place.
    Fixable(String),
    /// The request changed meanwhile (an admin deleted or retried it): nothing was
    /// written; the next run decides again. Carries the state it is in now.
    Moved(String),
}

impl Fault {
    /// What an admin reads.
    pub(crate) fn message(self) -> String {
        match self {
            Fault::Transient(m) | Fault::Fatal(m) | Fault::Fixable(m) => m,
            Fault::Moved(now) => format!(
                "the request changed to {now} meanwhile (the processor or another admin acted on it)"
            ),
        }
    }
}

fn db(e: impl std::fmt::Display) -> Fault {
    Fault::Transient(e.to_string())
}

fn okta_fault(what: &str, e: okta::ClientError) -> Fault {
    match e {
        okta::ClientError::Okta { status, body }
            if (400..500).contains(&status) && status != 429 =>
        {
            Fault::Fatal(format!("Okta refused {what} ({status}): {body}"))
        }
        e => Fault::Transient(format!("{what}: {e}")),
    }
}

fn ye_fault(e: ClientError) -> Fault {
    if e.is_transient() {
        Fault::Transient(e.to_string())
    } else {
        Fault::Fatal(format!("the fulfiller answered {e}"))
    }
}

/// Runs the next step of an Okta-mode request (called by the processor for rows with
/// `idp = 'okta'`).
pub(crate) async fn step(state: &Services, row: RequestRow) -> Step {
    let Some(okta) = state.okta.as_ref() else {
        return match row.state {
            RequestState::Complete | RequestState::Deleted | RequestState::Error => {
                Step::Done(RequestState::Error)
            }
            _ => Step::Retry("Okta mode is off (no [okta] section); the request waits".into()),
        };
    };
    let mut part = match ostore::get(state.store.pool(), &row.id).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return fail(
                state,
                row,
                "the request's Okta record is missing; delete it and start it again".into(),
            )
            .await;
        }
        Err(e) => return Step::Retry(e.to_string()),
    };
    let mut row = row;
    for _ in 0..6 {
        let res = match row.state {
            RequestState::Creating => create(state, okta, row.clone(), &mut part).await.map(Some),
            RequestState::Open => poll(state, okta, row.clone(), &mut part).await,
            RequestState::AwaitingApproval => return Step::Done(RequestState::AwaitingApproval),
            RequestState::PinPending => send_pin(state, okta, row.clone(), &part).await.map(Some),
            RequestState::Complete => {
                if let Err(e) = ostore::unlock_user(state.store.pool(), &row.id).await {
                    return Step::Retry(e.to_string());
                }
                return Step::Done(RequestState::Complete);
            }
            RequestState::Cancelling => return cancel(state, okta, row, &mut part).await,
            RequestState::Deleted => return Step::Done(RequestState::Deleted),
            _ => return Step::Done(RequestState::Error),
        };
        row = match res {
            Ok(Some(r)) => r,
            Ok(None) => return Step::Again,
            Err(Fault::Transient(m)) => {
                tracing::warn!(request_id = %row.id, error = %m, "Okta-mode step failed; will retry");
                return Step::Retry(m);
            }
            Err(Fault::Fixable(m)) => return failed(state, okta, row, &mut part, m, false).await,
            Err(Fault::Fatal(m)) => return failed(state, okta, row, &mut part, m, true).await,
            Err(Fault::Moved(now)) => {
                tracing::info!(request_id = %row.id, now = %now, "the request changed meanwhile; this run's write is dropped");
                return Step::Moved;
            }
        };
    }
    Step::Again
}

/// A phase of `row` failed for good: the error is recorded only if the request is still
/// in the state this run acted on (an admin may have cancelled or deleted it
/// meanwhile); a cancel recorded meanwhile is carried out instead. `spent`: the
/// enrollment cannot go on ([`fatal`]).
async fn failed(
    state: &Services,
    okta: &OktaState,
    row: RequestRow,
    part: &mut OktaRequest,
    message: String,
    spent: bool,
) -> Step {
    let acted = row.state;
    let row = fresh(state, row).await;
    if row.state == RequestState::Cancelling {
        return cancel(state, okta, row, part).await;
    }
    if spent {
        fatal(state, okta, row, acted, part, message).await
    } else {
        fail_unless_moved(state, okta, row, acted, part, message).await
    }
}

/// The row as stored (a phase may have recorded fulfiller fields before failing).
async fn fresh(state: &Services, row: RequestRow) -> RequestRow {
    match state.store.get_request(&row.id).await {
        Ok(Some(r)) => r,
        _ => row,
    }
}

/// Marks the enrollment errored at Okta (unless it is active), flags the request to
/// start over on retry, and puts it in `error` (if it is still `expected`).
async fn fatal(
    state: &Services,
    okta: &OktaState,
    row: RequestRow,
    expected: RequestState,
    part: &mut OktaRequest,
    message: String,
) -> Step {
    let mut message = message;
    if !part.activated {
        for id in &part.enrollment_ids {
            match okta.client.mark_error(&part.okta_user_id, id).await {
                Ok(()) => {}
                Err(okta::ClientError::Okta { status: 404, .. }) => {}
                Err(e) => {
                    message.push_str(&format!(
                        " (marking enrollment {id} errored at Okta failed too: {e})"
                    ));
                }
            }
        }
        part.restart = true;
        if let Err(e) = ostore::update(state.store.pool(), part).await {
            return Step::Retry(e.to_string());
        }
    }
    fail_unless_moved(state, okta, row, expected, part, message).await
}

/// Puts the request in `error` (as [`fail`] does) only if its state is still
/// `expected`, the one this run acted on (a compare-and-set): an admin's cancel
/// recorded meanwhile is carried out instead, a delete is left as it is.
async fn fail_unless_moved(
    state: &Services,
    okta: &OktaState,
    row: RequestRow,
    expected: RequestState,
    part: &mut OktaRequest,
    message: String,
) -> Step {
    let mut failed = row.clone();
    failed.state = RequestState::Error;
    failed.last_error = Some(message.clone());
    match state
        .store
        .update_request_if(&failed, expected, &message)
        .await
    {
        Ok(true) => {
            tracing::warn!(request_id = %row.id, error = %message, "request entered the error state");
            Step::Done(RequestState::Error)
        }
        Ok(false) => {
            let now = fresh(state, row).await;
            if now.state == RequestState::Cancelling {
                Box::pin(cancel(state, okta, now, part)).await
            } else {
                Step::Retry(format!(
                    "the request changed to {} meanwhile (not put in error: {message})",
                    now.state
                ))
            }
        }
        Err(e) => Step::Retry(e.to_string()),
    }
}

/// `cancelling` (an admin's DELETE while the request was `creating`): reconcile first,
/// then undo in the guide's three places.
///
/// - The shipment: the recorded one, or the one this request created without hearing
///   back (a create whose answer was lost), found as Entra mode finds it
///   ([`crate::process::find_existing`]: by customer reference, else by recipient and
///   address when the fulfiller ignores the reference). The order is recorded before the
///   fulfiller sees it, so without a recorded order nothing was ordered. It is deleted
///   at the fulfiller; one that can no longer be deleted puts the request in `error`
///   (the key ships; its enrollment is kept so that it can still be activated).
/// - Okta: the recorded enrollments are deleted, and when none is recorded but an
///   enrollment was being made, the one whose answer was lost is withdrawn.
/// - The table: `deleted`, and the user can be ordered again.
async fn cancel(
    state: &Services,
    okta: &OktaState,
    mut row: RequestRow,
    part: &mut OktaRequest,
) -> Step {
    // The order is recorded before the fulfiller sees it: without one, nothing was made.
    let order = serde_json::from_str::<CreateFprShipment>(&row.create_body).ok();
    let (sid, fulfiller) = match undo_shipment(state, &row, order.as_ref()).await {
        Ok(Undone::NothingOrdered) => (None, "nothing had been ordered".to_owned()),
        Ok(Undone::Deleted(sid)) => {
            let said = format!("shipment {sid} deleted");
            (Some(sid), said)
        }
        Ok(Undone::TooLate { shipment_id, why }) => {
            row.shipment_id = Some(shipment_id);
            let message = format!(
                "{why}; the key will ship. Its enrollment is kept at Okta: set the request back to ongoing to activate the key, or delete the request (the enrollment is deleted then)"
            );
            return fail_unless_moved(state, okta, row, RequestState::Cancelling, part, message)
                .await;
        }
        Err(step) => return step,
    };
    if part.enrollment_ids.is_empty()
        && let Err(f) = withdraw_lost_enrollments(state, okta, &row, part).await
    {
        return Step::Retry(f.message());
    }
    for id in &part.enrollment_ids {
        match okta.client.delete_enrollment(&part.okta_user_id, id).await {
            Ok(()) | Err(okta::ClientError::Okta { status: 404, .. }) => {}
            Err(e) => return Step::Retry(format!("deleting enrollment {id} at Okta: {e}")),
        }
    }
    let okta_result = if part.enrollment_ids.is_empty() {
        "no enrollment left".to_owned()
    } else {
        format!("enrollment {} deleted", part.enrollment_ids.join(", "))
    };
    row.shipment_id = sid;
    row.state = RequestState::Deleted;
    row.last_error = None;
    let note = format!(
        "cancelled by an admin while it was being created (fulfiller: {fulfiller}; Okta: {okta_result})"
    );
    match state
        .store
        .update_request_if(&row, RequestState::Cancelling, &note)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Step::Moved,
        Err(e) => return Step::Retry(e.to_string()),
    }
    if let Err(e) = ostore::unlock_user(state.store.pool(), &row.id).await {
        // A deleted request's lock is stale: the next start takes it over.
        tracing::warn!(request_id = %row.id, error = %e, "could not release the user's lock");
    }
    // The response key of an Entra credential the order carried (a credential request).
    if let Err(e) = state
        .store
        .delete_secret(&row.id, Purpose::ResponseKey)
        .await
    {
        tracing::warn!(request_id = %row.id, error = %e, "could not destroy the request's response key");
    }
    Step::Done(RequestState::Deleted)
}

/// `creating`: read the shipping data, enroll at Okta, record the order, create the
/// shipment exactly once.
async fn create(
    state: &Services,
    okta: &OktaState,
    mut row: RequestRow,
    part: &mut OktaRequest,
) -> Result<RequestRow, Fault> {
    let mut new_order = false;
    if part.enrollment_ids.is_empty() {
        let read = match okta.recent_user(&part.okta_user_id) {
            Some(u) => Ok(u),
            None => okta.client.get_user(&part.okta_user_id).await,
        };
        let user = match read {
            Ok(u) => u,
            Err(okta::ClientError::Okta { status: 404, .. }) => {
                return Err(Fault::Fixable(format!(
                    "Okta no longer has user {} ({}); delete this request",
                    part.login, part.okta_user_id
                )));
            }
            Err(e) => return Err(Fault::Transient(format!("reading the user at Okta: {e}"))),
        };
        if user.id != part.okta_user_id {
            // Recorded while Okta did not answer, under the name it was given: now the
            // user is known. One open request per person: a second one is withdrawn.
            let pool = state.store.pool();
            let lock = ostore::lock_name(&user.id, part.key.slot.as_deref());
            if let Some(holder) = ostore::lock_user(pool, &lock, &row.id).await.map_err(db)? {
                row.state = RequestState::Deleted;
                row.last_error = None;
                let note = format!(
                    "{} already has open request {holder}; this one is withdrawn (nothing was ordered)",
                    user.profile.login
                );
                persist_if(state, &row, RequestState::Creating, &note).await?;
                ostore::unlock_user(pool, &row.id).await.map_err(db)?;
                return Ok(row);
            }
            ostore::resolve_user(&state.store, &row.id, &user.id, &user.profile.login)
                .await
                .map_err(db)?;
            tracing::info!(request_id = %row.id, okta_user = %user.id, "read the user the request was recorded for");
            part.okta_user_id = user.id.clone();
            part.login = user.profile.login.clone();
            row.user_id = user.id.clone();
            row.user_label = user.profile.login.clone();
        }
        let hr =
            match &okta.config.hr_csv {
                Some(p) => Some(super::profile::HrData::load(p).map_err(|e| {
                    Fault::Fixable(format!("reading the HR file (okta.hr_csv): {e}"))
                })?),
                None => None,
            };
        let (recipient, address) =
            super::profile::shipping(&user.profile, hr.as_ref(), &part.shipping_overrides)
                .map_err(Fault::Fixable)?;
        let transport = state.transport_key().await.map_err(Fault::Transient)?;
        let tk: okta::EcKeyJwk = serde_json::from_value(transport.to_value())
            .map_err(|e| Fault::Transient(format!("the fulfiller's transport key: {e}")))?;
        // A key registered at Entra too (a credential request): our own credential
        // request, sealed before Okta is asked, rides along with Okta's.
        let entra_request = match &part.key.entra_user_id {
            Some(entra_user) => {
                Some(seal_entra_request(state, &row.id, entra_user, &transport).await?)
            }
            None => None,
        };
        // Intent first: an enrollment whose answer was lost (a crash, a timeout) is
        // found by this mark and withdrawn before enrolling again, so the user's
        // "Pre-enrolled authenticators" never collects strays.
        withdraw_lost_enrollments(state, okta, &row, part).await?;
        // Only while still `creating`: an admin's cancel recorded meanwhile wins, and
        // nothing is enrolled.
        if !state
            .store
            .update_request_if(&row, RequestState::Creating, ENROLLING)
            .await
            .map_err(db)?
        {
            return Ok(fresh(state, row).await);
        }
        let enrolled = okta
            .client
            .enroll(&okta::EnrollmentInitializationRequest {
                enrollment_rp_ids: if part.key.rp_ids.is_empty() {
                    okta.config.rp_ids.clone()
                } else {
                    part.key.rp_ids.clone()
                },
                fulfillment_provider: okta::FULFILLMENT_PROVIDER.into(),
                user_id: part.okta_user_id.clone(),
                yubico_transport_key_jwk: tk,
            })
            .await
            .map_err(|e| okta_fault("the enrollment", e))?;
        // Built through JSON so the order carries our request id as the customer
        // reference where the fulfiller types know that field.
        let body: CreateFprShipment = serde_json::from_value(serde_json::json!({
            "delivery_type": okta.config.delivery_type,
            "recipient": recipient,
            "mailing_address": address,
            "shipment_items": [ShipmentItemRequest {
                product_id: u32::try_from(part.product_id).unwrap_or_default(),
                inventory_product_id: u32::try_from(part.inventory_product_id).unwrap_or_default(),
                product_quantity: 1,
                customization_id: part.customization_id.clone(),
                product_customizations: vec![ProductCustomization {
                    fido_pin_request: enrolled.pin_request_jwe.clone(),
                    fido_credential_requests: enrolled
                        .cred_requests
                        .iter()
                        .map(|c| c.cred_request_jwe.clone())
                        .chain(entra_request)
                        .collect(),
                }],
            }],
            "customer_reference": row.id,
        }))
        .map_err(db)?;
        let text = serde_json::to_string(&body).map_err(db)?;
        part.enrollment_ids = enrolled
            .cred_requests
            .iter()
            .map(|c| c.authenticator_enrollment_id.clone())
            .collect();
        // Record the enrollment and the order (the intent) before the fulfiller sees
        // it, in one transaction, whatever the state now is: a cancel that came while
        // Okta answered needs the enrollment ids to delete them.
        let now = ostore::record_enrollment(
            &state.store,
            &row.id,
            &text,
            &part.enrollment_ids,
            &format!("enrolled at Okta ({})", part.enrollment_ids.join(", ")),
        )
        .await
        .map_err(db)?;
        if now != RequestState::Creating.as_str() {
            return Ok(fresh(state, row).await);
        }
        row.create_body = text;
        row.last_error = None;
        // These JWEs are brand new: no earlier attempt can have ordered with them.
        new_order = true;
    }
    match crate::process::create_shipment(state, row, new_order).await {
        Ok(r) => Ok(r),
        Err(CreateError::Refused { code, message }) => Err(Fault::Fatal(format!(
            "the fulfiller refused the shipment ({code}): {message}; fix the cause (profile, product, customization) and set the request back to ongoing"
        ))),
        Err(CreateError::Unavailable(m, _)) | Err(CreateError::Internal(m)) => {
            Err(Fault::Transient(m))
        }
    }
}

/// Refuses to act outside (activate, send the PIN) when an admin changed the request
/// meanwhile (deleted it while this worker held it): the next run sees the new state.
async fn still_current(state: &Services, row: &RequestRow) -> Result<(), Fault> {
    match state.store.get_request(&row.id).await.map_err(db)? {
        Some(now) if now.state == row.state => Ok(()),
        Some(now) => Err(Fault::Transient(format!(
            "the request changed to {} meanwhile",
            now.state
        ))),
        None => Err(Fault::Transient("the request is gone".into())),
    }
}

/// The audit-trail note recorded right before calling Okta `enroll`.
const ENROLLING: &str = "enrolling at Okta";

/// If an earlier run marked [`ENROLLING`] and recorded no enrollment, the answer was
/// lost: delete the user's pending enrollments created since that mark (the user's
/// lock means no other request of ours enrolls this user meanwhile).
async fn withdraw_lost_enrollments(
    state: &Services,
    okta: &OktaState,
    row: &RequestRow,
    part: &OktaRequest,
) -> Result<(), Fault> {
    let history = state.store.history(&row.id).await.map_err(db)?;
    let Some(mark) = history
        .iter()
        .rev()
        .find(|h| h.note == ENROLLING)
        .map(|h| h.at)
    else {
        return Ok(());
    };
    let list = okta
        .client
        .list_enrollments(&part.okta_user_id)
        .await
        .map_err(|e| okta_fault("listing the enrollments", e))?;
    for f in list {
        let created = chrono::DateTime::parse_from_rfc3339(&f.created)
            .map(|d| d.timestamp())
            .unwrap_or(0);
        if f.status.eq_ignore_ascii_case("PENDING_ACTIVATION") && created + 5 >= mark {
            match okta
                .client
                .delete_enrollment(&part.okta_user_id, &f.id)
                .await
            {
                Ok(()) | Err(okta::ClientError::Okta { status: 404, .. }) => {
                    tracing::info!(request_id = %row.id, enrollment = %f.id, "withdrew an enrollment whose answer was lost");
                }
                Err(e) => return Err(okta_fault("withdrawing a lost enrollment", e)),
            }
        }
    }
    Ok(())
}

/// `open`: poll; on 103/104 activate at Okta.
async fn poll(
    state: &Services,
    okta: &OktaState,
    mut row: RequestRow,
    part: &mut OktaRequest,
) -> Result<Option<RequestRow>, Fault> {
    let sid = row.shipment_id.clone().unwrap_or_default();
    let s = match state.fulfiller.get_fpr_shipment(&sid).await {
        Ok(s) => s,
        Err(ClientError::Api { status: 404, .. }) => {
            return Err(Fault::Fatal(format!(
                "shipment {sid} no longer exists at the fulfiller (404: deleted there); it is not polled again. Delete this request, or set it back to ongoing to order a new key"
            )));
        }
        Err(e) => return Err(ye_fault(e)),
    };
    let st = s.shipment_state.shipment_state_id;
    let changed = row.fulfiller_state != Some(i64::from(st.id()));
    row.fulfiller_state = Some(i64::from(st.id()));
    row.fulfiller_message = Some(s.shipment_state.shipment_state_message.clone());
    row.tracking = s.tracking_link.clone();
    if st.is_error() {
        persist_if(state, &row, RequestState::Open, "").await?;
        return Err(Fault::Fixable(format!(
            "the fulfiller put shipment {sid} in error state {}: {}; correct it in the YubiEnterprise Console, then set this request back to ongoing",
            st.id(),
            s.shipment_state.shipment_state_message
        )));
    }
    if !st.has_responses() {
        if changed {
            persist_if(
                state,
                &row,
                RequestState::Open,
                &format!("fulfiller state {}", st.id()),
            )
            .await?;
        }
        return Ok(None);
    }
    let Some(pd) = s.product_data() else {
        return Err(Fault::Fatal(
            "the shipment is shipped but carries no product_data; contact the fulfiller".into(),
        ));
    };
    still_current(state, &row).await?;
    let entra = usize::from(part.key.entra_user_id.is_some());
    if pd.fido_credential_responses.len() != part.enrollment_ids.len() + entra {
        return Err(Fault::Fatal(format!(
            "the shipment carries {} credential responses for {} enrollments{}; contact the fulfiller",
            pd.fido_credential_responses.len(),
            part.enrollment_ids.len(),
            if entra == 1 {
                " and one Entra credential"
            } else {
                ""
            }
        )));
    }
    if !part.activated {
        activate(state, okta, part, pd).await?;
        part.activated = true;
        ostore::update(state.store.pool(), part).await.map_err(db)?;
    }
    if let Some(entra_user) = part.key.entra_user_id.clone()
        && !part.key.entra_registered
    {
        register_at_entra(state, &row, &entra_user, pd).await?;
        part.key.entra_registered = true;
        ostore::update(state.store.pool(), part).await.map_err(db)?;
    }
    row.serial = Some(pd.serial_number.clone());
    row.firmware = Some(pd.firmware_version.clone());
    row.last_error = None;
    let note = match okta.config.approval {
        super::Approval::Admin => {
            row.state = RequestState::AwaitingApproval;
            "key activated at Okta; waiting for an admin to approve that it arrived"
        }
        super::Approval::Auto => {
            row.state = RequestState::PinPending;
            "key activated at Okta"
        }
    };
    persist_if(state, &row, RequestState::Open, note).await?;
    Ok(Some(row))
}

/// Seals a credential request for Entra user `entra_user` (creation options from
/// Graph) to the fulfiller's transport key, keeping its response key sealed with the
/// request: the Entra credential of a key that is registered at Okta and Entra.
async fn seal_entra_request(
    state: &Services,
    request_id: &str,
    entra_user: &str,
    transport: &envelope::PublicJwk,
) -> Result<String, Fault> {
    let version = state.config.entra_fido_api_version;
    let minutes = match version {
        graph::ApiVersion::Beta => Some(state.config.entra_fido_api_challenge_timeout_minutes),
        graph::ApiVersion::V1 => None,
    };
    let options = match state
        .graph
        .creation_options(version, entra_user, minutes)
        .await
    {
        Ok(o) => o,
        Err(e) if e.status() == Some(404) => {
            return Err(Fault::Fixable(format!(
                "Entra has no user {entra_user} to register the key with; delete this request"
            )));
        }
        Err(e) => {
            return Err(Fault::Transient(format!(
                "getting FIDO2 creation options from Graph: {e}"
            )));
        }
    };
    let key = envelope::PrivateJwk::generate(format!("resp-{request_id}"), envelope::KeyUse::Enc)
        .map_err(db)?;
    let public_key = serde_json::to_value(&options.public_key).map_err(db)?;
    let jwe = envelope::seal_request(
        &envelope::Request::Credential(envelope::CredentialRequest {
            response_key: key.public().clone(),
            origin: graph::ENTRA_ORIGIN.to_owned(),
            public_key,
        }),
        transport,
    )
    .map_err(db)?;
    let sealed = state
        .master_key
        .seal(request_id, Purpose::ResponseKey, key.to_json().as_bytes())
        .map_err(db)?;
    state
        .store
        .put_secret(request_id, Purpose::ResponseKey, &sealed)
        .await
        .map_err(db)?;
    Ok(jwe)
}

/// Registers the key's Entra credential (the last credential request of the order, the
/// last response of the shipment) with Graph, as Entra mode does: idempotent against a
/// lost answer.
async fn register_at_entra(
    state: &Services,
    row: &RequestRow,
    entra_user: &str,
    pd: &yubienterprise::fpr::ProductData,
) -> Result<(), Fault> {
    let body: CreateFprShipment = serde_json::from_str(&row.create_body)
        .map_err(|e| Fault::Fatal(format!("stored create body unreadable: {e}")))?;
    let (Some(cred_req), Some(cred_resp)) = (
        body.shipment_items
            .first()
            .and_then(|i| i.product_customizations.first())
            .and_then(|c| c.fido_credential_requests.last()),
        pd.fido_credential_responses.last(),
    ) else {
        return Err(Fault::Fatal(
            "the order or the shipment has no Entra credential; contact the fulfiller".into(),
        ));
    };
    let step = |e: StepError| match e {
        StepError::Transient(m) => Fault::Transient(m),
        StepError::Permanent(m) => Fault::Fixable(format!(
            "{m} (the key is active at Okta; set the request back to ongoing once fixed)"
        )),
        StepError::Moved => Fault::Transient("the request changed meanwhile".into()),
    };
    let keys = [crate::process::response_key(state, &row.id)
        .await
        .map_err(step)?];
    let (reg, _) = crate::process::open_credential(state, &keys, cred_req, cred_resp, pd)
        .await
        .map_err(step)?;
    crate::process::register_with_graph(state, entra_user, &reg, &pd.serial_number)
        .await
        .map_err(step)
}

/// Okta `activate` with the shipment's responses and the fulfiller's signing keys (the
/// cached set, from `ye_jwks_sign_endpoint`).
///
/// No enrollment list before the call: when an earlier run's activation worked and its
/// answer was lost, Okta refuses this one (the enrollments are no longer pending), and
/// only then are the user's enrollments read: all of ours `ACTIVE` is the activation
/// done. A refusal with the enrollments still pending is tried once more with the
/// signing keys read again (the fulfiller may have rotated them since they were cached).
async fn activate(
    state: &Services,
    okta: &OktaState,
    part: &OktaRequest,
    pd: &yubienterprise::fpr::ProductData,
) -> Result<(), Fault> {
    let mut fresh = false;
    loop {
        let signing = state.signing_keys(fresh).await.map_err(ye_fault)?;
        let jwks = signing
            .keys()
            .iter()
            .map(|k| serde_json::from_value::<okta::EcKeyJwk>(k.to_value()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Fault::Transient(format!("the fulfiller's signing keys: {e}")))?;
        let request = okta::EnrollmentActivationRequest {
            cred_responses: part
                .enrollment_ids
                .iter()
                .zip(&pd.fido_credential_responses)
                .map(|(id, jwe)| okta::WebAuthnCredResponse {
                    authenticator_enrollment_id: id.clone(),
                    cred_response_jwe: jwe.clone(),
                })
                .collect(),
            fulfillment_provider: okta::FULFILLMENT_PROVIDER.into(),
            pin_response_jwe: pd.fido_pin_response.clone(),
            serial: pd.serial_number.clone(),
            user_id: part.okta_user_id.clone(),
            version: pd.firmware_version.clone(),
            yubico_signing_jwks: jwks,
        };
        let refused = match okta.client.activate(&request).await {
            Ok(_) => return Ok(()),
            Err(e) => match okta_fault("the activation", e) {
                Fault::Fatal(m) => m,
                f => return Err(f),
            },
        };
        if already_active(okta, part).await? {
            tracing::info!(okta_user = %part.okta_user_id, "Okta refused the activation because an earlier one, whose answer was lost, had activated the key");
            return Ok(());
        }
        if fresh {
            // The key is already programmed and on its way: keep the enrollment so
            // that, once the org is fixed, the same key is activated.
            return Err(Fault::Fixable(format!(
                "{refused}; fix it at Okta (e.g. the trusted Yubico signing keys), then set the request back to ongoing: the same key is activated again"
            )));
        }
        fresh = true;
    }
}

/// Whether Okta shows every enrollment of the request ACTIVE (an earlier run activated
/// and then lost the answer).
async fn already_active(okta: &OktaState, part: &OktaRequest) -> Result<bool, Fault> {
    let list = okta
        .client
        .list_enrollments(&part.okta_user_id)
        .await
        .map_err(|e| okta_fault("listing the enrollments", e))?;
    Ok(part.enrollment_ids.iter().all(|id| {
        list.iter()
            .any(|f| &f.id == id && f.status.eq_ignore_ascii_case("ACTIVE"))
    }))
}

/// Okta `send-pin` for the request's enrollments. `Ok(false)`: Okta no longer holds
/// the PIN (the user signed in with the key).
pub(crate) async fn okta_send_pin(okta: &OktaState, part: &OktaRequest) -> Result<bool, Fault> {
    let ids = match part.enrollment_ids.as_slice() {
        [one] => okta::OneOrMany::One(one.clone()),
        many => okta::OneOrMany::Many(many.to_vec()),
    };
    match okta
        .client
        .send_pin(&okta::PinRequest {
            authenticator_enrollment_id: ids,
            fulfillment_provider: okta::FULFILLMENT_PROVIDER.into(),
            user_id: part.okta_user_id.clone(),
        })
        .await
    {
        Ok(()) => Ok(true),
        Err(okta::ClientError::Okta { status: 403, .. }) => Ok(false),
        Err(e) => Err(okta_fault("sending the PIN", e)),
    }
}

/// `pin_pending`: Okta sends the PIN → `complete`.
async fn send_pin(
    state: &Services,
    okta: &OktaState,
    mut row: RequestRow,
    part: &OktaRequest,
) -> Result<RequestRow, Fault> {
    still_current(state, &row).await?;
    let sent = match okta_send_pin(okta, part).await {
        Ok(s) => s,
        // The key is active: nothing to mark errored; the retry sends again.
        Err(Fault::Fatal(m)) => return Err(Fault::Fixable(m)),
        Err(e) => return Err(e),
    };
    row.state = RequestState::Complete;
    row.last_error = None;
    let note = if sent {
        "Okta sent the PIN to the user"
    } else {
        "Okta no longer holds the PIN: the user already signed in with the key"
    };
    // Okta has mailed the PIN: record it even through a busy database, or the next
    // run would mail it again. The write releases the user's lock.
    persist_if(state, &row, RequestState::PinPending, note).await?;
    Ok(row)
}

/// Writes the row after an outside effect happened, only if the request is still in
/// `expected` (the state the writer read: a compare-and-set, [`Fault::Moved`] with the
/// state it is in now otherwise), retrying transient database errors (SQLite answers
/// "database is locked" to concurrent writers at times).
pub(crate) async fn persist_if(
    state: &Services,
    row: &RequestRow,
    expected: RequestState,
    note: &str,
) -> Result<(), Fault> {
    let mut last = String::new();
    for attempt in 0..10u64 {
        match state.store.update_request_if(row, expected, note).await {
            Ok(true) => return Ok(()),
            Ok(false) => {
                let now = match state.store.get_request(&row.id).await {
                    Ok(Some(r)) => r.state.to_string(),
                    Ok(None) => "gone".into(),
                    Err(e) => e.to_string(),
                };
                return Err(Fault::Moved(now));
            }
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
            }
        }
    }
    Err(Fault::Transient(last))
}

/// `pin_pending` run at once (approval): `Ok(row)` complete, or the error for the caller.
pub(crate) async fn send_now(
    state: &Services,
    okta: &OktaState,
    row: RequestRow,
    part: &OktaRequest,
) -> Result<RequestRow, String> {
    send_pin(state, okta, row, part)
        .await
        .map_err(Fault::message)
}
