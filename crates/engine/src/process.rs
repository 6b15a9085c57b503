//! Processing: create shipments exactly once, poll them, open and verify the responses,
//! register the credential with Graph, deliver the PIN, complete.
//!
//! Each request has one job; a worker claims it with a lease (so two workers never
//! process one request at once, and a crashed worker's job comes back), runs the next
//! step for the request's state, and releases the job. Every step is idempotent:
//!
//! - `creating`: the intent is recorded, the shipment may or may not exist. Look it up
//!   at the fulfiller first (same recipient, address and CID, created after the intent,
//!   not owned by another request); adopt it, or create it.
//! - `open`: poll. 103/104 → open both responses with the response key, verify the
//!   signatures against the fulfiller's signing JWKS and the request hashes, check the
//!   serials agree; any failure → `error` naming the step, nothing registered. Then
//!   register with Graph, seal the PIN, → `pin_pending`. Errors 1-9/99/105/106 →
//!   `error` with the fulfiller's text; 404 → `deleted`; other codes stay `open`.
//! - `cancelling` (DELETE while `creating`): look the shipment up by reference, delete it
//!   at the fulfiller if it exists, → `deleted`; nothing is created. The transitions
//!   that race with a DELETE (`creating` → `open` when the shipment is recorded,
//!   `creating` → `cancelling`) are compare-and-set ([`Store::update_request_if`]): a
//!   cancel that lands while the shipment is being recorded is never lost, the shipment
//!   is recorded and deleted.
//! - `pin_pending`: deliver the PIN → `complete`; the PIN stays sealed for resends for
//!   `pin_retention_days` (0: destroyed now), see [`crate::pin::cleanup`].
//!
//! Every state write of a run is a compare-and-set on the state the run read
//! ([`Store::update_request_if`]): an admin's DELETE or retry that lands while the
//! worker polls is never overwritten. A run that loses ends with `Step::Moved`: the
//! request is read again and the step decides on the state it now has (a deleted
//! request stays deleted).

use crate::domain::{Idp, RequestState};
use crate::secrets::Purpose;
use crate::services::Services;
use crate::store::{RequestRow, Store, now};
use envelope::PrivateJwk;
use std::time::Duration;
use yubienterprise::fpr::{CreateFprShipment, FprShipment};
use yubienterprise::{ClientError, ListQuery, ShipmentState, ShipmentType};

/// A transient failure is retried in the same run this many times.
const INLINE_ATTEMPTS: u32 = 4;

/// Why a shipment could not be created.
#[derive(Debug)]
pub enum CreateError {
    /// The fulfiller refused it (4xx): nothing to retry.
    Refused {
        /// The fulfiller's code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The fulfiller did not answer; the intent stays and is reconciled later. Carries
    /// the fulfiller's `Retry-After` (seconds) when it asked for a pause.
    Unavailable(String, Option<u64>),
    /// Our own failure.
    Internal(String),
}

/// What one processing run did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RunSummary {
    /// Jobs run.
    pub processed: u64,
    /// Requests that completed.
    pub completed: u64,
    /// Requests that entered the error state.
    pub errors: u64,
    /// Runs that ended in a transient failure (retried with backoff).
    pub retries: u64,
}

impl RunSummary {
    /// What was done since `before` (an earlier reading of the same totals).
    pub fn since(&self, before: &Self) -> Self {
        Self {
            processed: self.processed - before.processed,
            completed: self.completed - before.completed,
            errors: self.errors - before.errors,
            retries: self.retries - before.retries,
        }
    }
}

/// The pause between attempts inside one run; `None` when the fulfiller asked for a
/// longer pause than a run should hold a worker for (the job's backoff waits instead).
fn inline_backoff(attempt: u32, retry_after: Option<u64>) -> Option<Duration> {
    match retry_after {
        Some(s) if s > 2 => None,
        Some(s) => Some(Duration::from_secs(s)),
        None => Some(Duration::from_millis(100u64 << attempt.min(6))),
    }
}

fn code_of(e: &yubienterprise::ApiError) -> String {
    serde_json::to_value(e.code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "error".into())
}

/// Looks for a shipment this request already created (a crash or a lost answer after
/// `POST /v1/fpr/shipments`) by its customer reference, which holds the request id:
/// `GET /v1/shipments_exact?search_field=customer_reference&search=<id>`, keeping only
/// shipments whose reference is exactly the id.
///
/// Fallback to [`find_by_contact`] (same recipient, address and customization, created
/// after the intent) when the request carries no reference (recorded by an older
/// version) or the fulfiller does not support the field: it refuses the search field
/// (400), or answers with shipments that carry no reference at all.
pub(crate) async fn find_existing(
    state: &Services,
    row: &RequestRow,
    body: &CreateFprShipment,
) -> Result<Option<String>, ClientError> {
    let Some(reference) = body.customer_reference.as_deref() else {
        return find_by_contact(state, row, body).await;
    };
    // A fulfiller that filters answers one short page; one that ignored the search
    // answers everything, so page through it (as the fallback does).
    let mut offset = 0u64;
    let mut any_reference = false;
    let mut seen = 0usize;
    for _ in 0..50 {
        let page = match state
            .fulfiller
            .list_shipments_exact(&ListQuery {
                limit: Some(100),
                offset: Some(offset),
                search: Some(reference.to_owned()),
                search_field: Some("customer_reference".into()),
                shipment_type: Some(ShipmentType::AutoFidoPreReg),
                shipment_state_id: None,
            })
            .await
        {
            Ok(p) => p,
            Err(ClientError::Api { status: 400, .. }) if offset == 0 => {
                tracing::warn!(request_id = %row.id, "the fulfiller cannot search by customer_reference; matching by recipient and address");
                return find_by_contact(state, row, body).await;
            }
            Err(e) => return Err(e),
        };
        if let Some(s) = page
            .shipments
            .iter()
            .find(|s| s.customer_reference.as_deref() == Some(reference))
        {
            return Ok(Some(s.shipment_id.as_str().to_owned()));
        }
        any_reference |= page
            .shipments
            .iter()
            .any(|s| s.customer_reference.is_some());
        let n = page.shipments.len();
        seen += n;
        if n < 100 {
            break;
        }
        offset += n as u64;
    }
    if seen > 0 && !any_reference {
        tracing::warn!(request_id = %row.id, "the fulfiller ignored the customer_reference search; matching by recipient and address");
        return find_by_contact(state, row, body).await;
    }
    Ok(None)
}

/// The fallback match: an FPR shipment with the same recipient, address and
/// customization, requested at or after the intent was recorded, not owned by another
/// request. Two requests with the same recipient and address can swap shipments here,
/// which is why the reference is preferred.
async fn find_by_contact(
    state: &Services,
    row: &RequestRow,
    body: &CreateFprShipment,
) -> Result<Option<String>, ClientError> {
    let mut offset = 0u64;
    let mut best: Option<(i64, String)> = None;
    for _ in 0..50 {
        let page = state
            .fulfiller
            .list_shipments_exact(&ListQuery {
                limit: Some(100),
                offset: Some(offset),
                search: Some(body.mailing_address.postal_code.clone()),
                search_field: Some("postal_code".into()),
                shipment_type: Some(ShipmentType::AutoFidoPreReg),
                shipment_state_id: None,
            })
            .await?;
        let n = page.shipments.len() as u64;
        for s in page.shipments {
            let a = &body.mailing_address;
            let r = &body.recipient;
            let same = s.street_line1 == a.street_line1
                && s.street_line2 == a.street_line2
                && s.city == a.city
                && s.postal_code == a.postal_code
                && s.country_code_2 == a.country_code_2
                && s.recipient_email == r.recipient_email
                && s.recipient_lastname == r.recipient_lastname
                && s.recipient_firstname == r.recipient_firstname
                && s.recipient_telephone == r.recipient_telephone
                && s.shipment_items.iter().any(|i| {
                    body.shipment_items.first().is_some_and(|b| {
                        b.product_id == i.product_id
                            && b.inventory_product_id == i.inventory_product_id
                    })
                });
            let at = s
                .shipment_request_date
                .as_deref()
                .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                .map(|d| d.timestamp())
                .unwrap_or(0);
            if !same || at + 120 < row.created_at {
                continue;
            }
            let id = s.shipment_id.as_str().to_owned();
            if matches!(state.store.by_shipment(&id).await, Ok(Some(_))) {
                continue;
            }
            if best.as_ref().is_none_or(|(t, _)| at < *t) {
                best = Some((at, id));
            }
        }
        if n < 100 {
            break;
        }
        offset += n;
    }
    Ok(best.map(|(_, id)| id))
}

/// Records the shipment this request's create made (or an earlier attempt made):
/// `creating` → `open`, as a compare-and-set, because an admin's DELETE can land at any
/// moment between the fulfiller's answer and this write. When the request moved
/// meanwhile:
///
/// - `cancelling` (the cancel came while the create was in flight): the cancel stays,
///   and the shipment id is recorded so that the processor deletes it;
/// - `deleted` without a shipment (the cancel ran before the shipment existed at the
///   fulfiller): back to `cancelling` with the shipment id, so the late shipment is
///   deleted too, and the job is made due;
/// - anything else (another worker recorded it): its row is returned as it is.
async fn adopt(
    state: &Services,
    mut row: RequestRow,
    shipment_id: String,
    note: &str,
) -> Result<RequestRow, CreateError> {
    let internal = |e: crate::store::StoreError| CreateError::Internal(e.to_string());
    row.shipment_id = Some(shipment_id.clone());
    row.last_error = None;
    row.state = RequestState::Open;
    if state
        .store
        .update_request_if(&row, RequestState::Creating, note)
        .await
        .map_err(internal)?
    {
        return Ok(row);
    }
    // Each lost compare-and-set means another writer moved the request: read it again.
    for _ in 0..4 {
        let Some(mut current) = state.store.get_request(&row.id).await.map_err(internal)? else {
            return Err(CreateError::Internal(format!(
                "request {} vanished while its shipment {shipment_id} was being recorded",
                row.id
            )));
        };
        let (expected, why) = match (current.state, &current.shipment_id) {
            (RequestState::Cancelling, None) => (
                RequestState::Cancelling,
                format!(
                    "{note}: shipment {shipment_id}, cancelled by an admin meanwhile; it is deleted at the fulfiller next"
                ),
            ),
            (RequestState::Deleted, None) => (
                RequestState::Deleted,
                format!(
                    "{note} after the cancel: shipment {shipment_id} is deleted at the fulfiller too"
                ),
            ),
            _ => {
                if current
                    .shipment_id
                    .as_deref()
                    .is_some_and(|other| other != shipment_id)
                {
                    discard_duplicate(state, &current, &shipment_id).await;
                }
                return Ok(current);
            }
        };
        tracing::info!(request_id = %row.id, shipment_id = %shipment_id, "the request was cancelled while its shipment was being created; the shipment will be deleted");
        current.shipment_id = Some(shipment_id.clone());
        current.fulfiller_state = row.fulfiller_state;
        current.fulfiller_message = row.fulfiller_message.clone();
        current.state = RequestState::Cancelling;
        current.last_error = None;
        if state
            .store
            .update_request_if(&current, expected, &why)
            .await
            .map_err(internal)?
        {
            state
                .store
                .schedule(&current.id, now())
                .await
                .map_err(internal)?;
            return Ok(current);
        }
    }
    Err(CreateError::Internal(format!(
        "request {} kept changing while its shipment {shipment_id} was being recorded; the next run reconciles it",
        row.id
    )))
}

/// Another run recorded a different shipment for this request (it should not happen:
/// only the lease holder creates): the one this run made is a duplicate. It is deleted
/// at the fulfiller so that no second key ships, and logged either way.
async fn discard_duplicate(state: &Services, row: &RequestRow, duplicate: &str) {
    let kept = row.shipment_id.as_deref().unwrap_or_default();
    tracing::error!(request_id = %row.id, kept, duplicate, "a second shipment was made for one request; deleting it at the fulfiller");
    let note = match state.fulfiller.delete_fpr_shipment(duplicate).await {
        Ok(()) | Err(ClientError::Api { status: 404, .. }) => format!(
            "a second shipment {duplicate} was made for this request; it was deleted at the fulfiller (shipment {kept} is kept)"
        ),
        Err(e) => format!(
            "a second shipment {duplicate} was made for this request and could not be deleted at the fulfiller ({e}); delete it in the YubiEnterprise Console"
        ),
    };
    if let Err(e) = state.store.update_request_if(row, row.state, &note).await {
        tracing::warn!(request_id = %row.id, error = %e, "recording the duplicate shipment failed");
    }
}

/// What the first half of a cancel (shared by both modes) came to.
pub(crate) enum Undone {
    /// The request never reached the fulfiller: nothing to delete.
    NothingOrdered,
    /// This shipment is deleted at the fulfiller (or was already gone).
    Deleted(String),
    /// The fulfiller can no longer delete the shipment (already being fulfilled); `why`
    /// says so in words.
    TooLate { shipment_id: String, why: String },
}

/// Finds the shipment a cancelled request made — the recorded one, or, when the
/// create's answer was lost, the one [`find_existing`] finds for `order` (`None`: the
/// request never sent an order, so nothing was made) — and deletes it at the fulfiller.
/// `Err` is the step to return (a transient fault: retry).
pub(crate) async fn undo_shipment(
    state: &Services,
    row: &RequestRow,
    order: Option<&CreateFprShipment>,
) -> Result<Undone, Step> {
    let sid = match (&row.shipment_id, order) {
        (Some(s), _) => s.clone(),
        (None, Some(body)) => match find_existing(state, row, body).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(Undone::NothingOrdered),
            Err(e) => {
                return Err(Step::Retry(format!(
                    "looking for a shipment this request created: {e}"
                )));
            }
        },
        (None, None) => return Ok(Undone::NothingOrdered),
    };
    match state.fulfiller.delete_fpr_shipment(&sid).await {
        Ok(()) | Err(ClientError::Api { status: 404, .. }) => Ok(Undone::Deleted(sid)),
        Err(ClientError::Api {
            status: 409, body, ..
        }) => Ok(Undone::TooLate {
            why: format!(
                "the cancel came too late: the fulfiller can no longer delete shipment {sid} ({})",
                body.message
            ),
            shipment_id: sid,
        }),
        Err(e) => Err(Step::Retry(format!(
            "deleting shipment {sid} at the fulfiller: {e}"
        ))),
    }
}

/// A request whose cancel was asked while it was still `creating`: reconcile first
/// (the shipment may exist: find it by reference), delete it at the fulfiller, then
/// mark the request deleted. Nothing is created.
async fn cancel(state: &Services, mut row: RequestRow) -> Step {
    let order: CreateFprShipment = match serde_json::from_str(&row.create_body) {
        Ok(b) => b,
        Err(e) => return Step::Retry(format!("stored create body: {e}")),
    };
    let (sid, note) = match undo_shipment(state, &row, Some(&order)).await {
        Ok(Undone::NothingOrdered) => (
            None,
            "cancelled by an admin before the shipment was created".to_owned(),
        ),
        Ok(Undone::Deleted(sid)) => {
            let note = format!("cancelled by an admin: shipment {sid} deleted at the fulfiller");
            (Some(sid), note)
        }
        Ok(Undone::TooLate { shipment_id, why }) => {
            row.shipment_id = Some(shipment_id);
            return fail(state, row, format!("{why}; the key will ship")).await;
        }
        Err(step) => return step,
    };
    row.shipment_id = sid;
    row.state = RequestState::Deleted;
    row.last_error = None;
    match state
        .store
        .update_request_if(&row, RequestState::Cancelling, &note)
        .await
    {
        Ok(true) => {}
        Ok(false) => return Step::Moved,
        Err(e) => return Step::Retry(e.to_string()),
    }
    for p in [Purpose::Pin, Purpose::ResponseKey] {
        if let Err(e) = state.store.delete_secret(&row.id, p).await {
            return Step::Retry(e.to_string());
        }
    }
    Step::Done(RequestState::Deleted)
}

/// Creates the shipment for a request in state `creating`, exactly once: before every
/// (re)try it looks for one created by an earlier attempt.
///
/// `fresh` is true only for the API's own first call right after recording the intent
/// (no earlier attempt can exist); the processor always looks first.
pub async fn create_shipment(
    state: &Services,
    row: RequestRow,
    fresh: bool,
) -> Result<RequestRow, CreateError> {
    let body: CreateFprShipment = serde_json::from_str(&row.create_body)
        .map_err(|e| CreateError::Internal(format!("stored create body: {e}")))?;
    let mut last = String::new();
    let mut asked = None;
    for attempt in 0..INLINE_ATTEMPTS {
        if !(fresh && attempt == 0) {
            match find_existing(state, &row, &body).await {
                Ok(Some(id)) => {
                    tracing::info!(request_id = %row.id, shipment_id = %id, "adopted the shipment an earlier attempt created");
                    return adopt(
                        state,
                        row,
                        id,
                        "found the shipment an earlier attempt created",
                    )
                    .await;
                }
                Ok(None) => {}
                Err(e) if e.is_transient() => {
                    last = e.to_string();
                    asked = e.retry_after();
                    match inline_backoff(attempt, asked) {
                        Some(d) => tokio::time::sleep(d).await,
                        None => break,
                    }
                    continue;
                }
                Err(e) => return Err(CreateError::Unavailable(e.to_string(), None)),
            }
        }
        match state.fulfiller.create_fpr_shipment(&body).await {
            Ok(s) => {
                crash_point(s.shipment_id.as_str()).await;
                let id = s.shipment_id.as_str().to_owned();
                tracing::info!(request_id = %row.id, shipment_id = %id, "shipment created");
                let mut row = row;
                row.fulfiller_state = Some(i64::from(s.shipment_state.shipment_state_id.id()));
                row.fulfiller_message = Some(s.shipment_state.shipment_state_message);
                return adopt(state, row, id, "shipment created at the fulfiller").await;
            }
            Err(ClientError::Api { status, body, .. })
                if (400..500).contains(&status) && status != 429 =>
            {
                return Err(CreateError::Refused {
                    code: code_of(&body),
                    message: body.message,
                });
            }
            Err(e) => {
                tracing::warn!(request_id = %row.id, error = %e, attempt, "creating the shipment failed; will look it up and retry");
                last = e.to_string();
                asked = e.retry_after();
                match inline_backoff(attempt, asked) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => break,
                }
            }
        }
    }
    let mut row = row;
    row.last_error = Some(format!("the fulfiller did not answer: {last}"));
    // Only while still `creating`: a cancel recorded meanwhile stays.
    let _ = state
        .store
        .update_request_if(&row, RequestState::Creating, "shipment creation deferred")
        .await;
    Err(CreateError::Unavailable(last, asked))
}

/// The outcome of one step of a request (shared with Okta mode).
pub(crate) enum Step {
    /// Terminal state reached (or one only an admin moves on from): the job is
    /// finished.
    Done(RequestState),
    /// The run's compare-and-set lost: an admin (or another writer) changed the request
    /// meanwhile. Nothing was overwritten; the request is read again and the step run
    /// on the state it has now.
    Moved,
    /// Still open: poll again later.
    Again,
    /// A transient fault: retry with backoff.
    Retry(String),
    /// A transient fault where the service said how long to wait (`Retry-After`,
    /// seconds): retry with backoff, no sooner than that.
    RetryAfter(String, u64),
}

/// Puts a request in the error state with `message` (what an admin reads), only if it
/// is still in the state the run read (`row.state`): a DELETE that landed meanwhile
/// stays.
pub(crate) async fn fail(state: &Services, row: RequestRow, message: String) -> Step {
    match state.store.apply(&row.failed(&message), &message).await {
        Ok(true) => {
            tracing::warn!(request_id = %row.id, error = %message, "request entered the error state");
            Step::Done(RequestState::Error)
        }
        Ok(false) => {
            tracing::info!(request_id = %row.id, error = %message, "the request changed meanwhile; not put in error");
            Step::Moved
        }
        Err(e) => Step::Retry(e.to_string()),
    }
}

#[tracing::instrument(skip_all, fields(request_id = %row.id, state = %row.state))]
pub(crate) async fn step(state: &Services, row: RequestRow) -> Step {
    if row.idp == Idp::Okta {
        return crate::okta::step(state, row).await;
    }
    if let Some(rider) = Rider::of(&row) {
        return rider_step(state, row, rider).await;
    }
    let leads = Rider::lead_of_several(&row);
    let id = row.id.clone();
    let from = row.state;
    let done = lead_step(state, row).await;
    // The keys riding in this shipment follow it: they run when it moved.
    if leads
        && let Ok(Some(now_row)) = state.store.get_request(&id).await
        && now_row.state != from
    {
        wake_riders(state, &id).await;
    }
    done
}

/// A key that rides in another request's shipment (a credential request's keys sharing
/// a shipment of several, [`crate::credreq`]): its create body names the request that
/// orders the shipment (the lead) and the key's place in it. It orders nothing itself;
/// it follows the lead's shipment, opens its own key's responses, registers its own
/// credential and delivers its own PIN.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rider {
    /// The request that orders the shipment.
    pub rider_of: String,
    /// The key's place in the shipment (1 the second key).
    pub index: usize,
}

impl Rider {
    /// The rider a request is, if it is one.
    pub fn of(row: &RequestRow) -> Option<Self> {
        if !row.create_body.contains("\"rider_of\"") {
            return None;
        }
        serde_json::from_str(&row.create_body).ok()
    }

    /// The create body that makes a request this rider.
    pub fn body(&self) -> String {
        serde_json::json!({"rider_of": self.rider_of, "index": self.index}).to_string()
    }

    /// Whether the request orders a shipment of several keys (it has riders).
    fn lead_of_several(row: &RequestRow) -> bool {
        // Almost every order is of one key: known without reading the whole body (it is
        // written by serde_json, compact) on this path, which every Entra step takes.
        if row.create_body.contains("\"product_quantity\":1,") {
            return false;
        }
        serde_json::from_str::<CreateFprShipment>(&row.create_body)
            .ok()
            .and_then(|b| b.shipment_items.first().map(|i| i.product_quantity > 1))
            .unwrap_or(false)
    }
}

/// Makes the jobs of the keys riding in `lead`'s shipment due now.
async fn wake_riders(state: &Services, lead: &str) {
    match crate::credreq::riders_of(state, lead).await {
        Ok(riders) => {
            for r in riders {
                if let Err(e) = state.store.schedule(&r, now()).await {
                    tracing::warn!(request_id = %r, error = %e, "could not wake a key riding in the shipment");
                }
            }
        }
        Err(e) => {
            tracing::warn!(lead, error = %e, "could not read the keys riding in the shipment")
        }
    }
}

/// The step of a rider: `creating` until the lead's shipment exists, then `open` (its
/// key's responses once the shipment has shipped), `pin_pending`, `complete`. A cancel
/// while `creating` deletes only the rider (the shipment is the lead's).
async fn rider_step(state: &Services, row: RequestRow, rider: Rider) -> Step {
    let lead = match state.store.get_request(&rider.rider_of).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            return fail(
                state,
                row,
                format!(
                    "the request {} that orders this key's shipment is gone",
                    rider.rider_of
                ),
            )
            .await;
        }
        Err(e) => return Step::Retry(e.to_string()),
    };
    match row.state {
        RequestState::Creating => {
            let (to, note) = match (&lead.shipment_id, lead.state) {
                (Some(sid), _) => (
                    RequestState::Open,
                    format!(
                        "rides in shipment {sid} (key {} of the shipment request {} orders)",
                        rider.index + 1,
                        lead.id
                    ),
                ),
                (None, RequestState::Deleted | RequestState::Cancelling) => (
                    RequestState::Deleted,
                    format!("the shipment was cancelled with request {}", lead.id),
                ),
                (None, RequestState::Error) => {
                    return fail(
                        state,
                        row,
                        format!(
                            "the shipment was not created: see request {} ({})",
                            lead.id,
                            lead.last_error.as_deref().unwrap_or("error")
                        ),
                    )
                    .await;
                }
                (None, _) => return Step::Again,
            };
            // Applied or not (an admin moved it meanwhile), the next run decides on the
            // state the request has now.
            match state.store.apply(&row.to(to), &note).await {
                Ok(_) => Step::Moved,
                Err(e) => Step::Retry(e.to_string()),
            }
        }
        RequestState::Open => {
            let Some(sid) = lead.shipment_id.clone() else {
                return fail(state, row, format!("request {} has no shipment", lead.id)).await;
            };
            let s = match state.fulfiller.get_fpr_shipment(&sid).await {
                Ok(s) => s,
                Err(ClientError::Api { status: 404, .. }) => {
                    let mut gone = row.to(RequestState::Deleted);
                    gone.row.last_error = Some(format!(
                        "shipment {sid} no longer exists at the fulfiller (deleted there)"
                    ));
                    return match state.store.apply(&gone, "deleted at the fulfiller").await {
                        Ok(_) => Step::Moved,
                        Err(e) => Step::Retry(e.to_string()),
                    };
                }
                Err(e) => {
                    return match client_err(e) {
                        StepError::Transient(m) => Step::Retry(m),
                        StepError::Permanent(m) => fail(state, row, m).await,
                        StepError::Moved => Step::Moved,
                    };
                }
            };
            let st = s.shipment_state.shipment_state_id;
            if st.is_error() {
                return fail(
                    state,
                    row,
                    format!(
                        "the fulfiller put shipment {sid} in error state {}: {}; correct it in the YubiEnterprise Console and retry",
                        st.id(),
                        s.shipment_state.shipment_state_message
                    ),
                )
                .await;
            }
            if !st.has_responses() {
                return Step::Again;
            }
            let body: CreateFprShipment = match serde_json::from_str(&lead.create_body) {
                Ok(b) => b,
                Err(e) => {
                    return fail(
                        state,
                        row,
                        format!("the shipment's order is unreadable: {e}"),
                    )
                    .await;
                }
            };
            let mut next = row.clone();
            next.tracking = s.tracking_link.clone();
            next.fulfiller_state = Some(i64::from(st.id()));
            next.fulfiller_message = Some(s.shipment_state.shipment_state_message.clone());
            match register_key(state, next, &body, rider.index, &s).await {
                Ok(_) => Step::Moved,
                Err(StepError::Transient(m)) => Step::Retry(m),
                Err(StepError::Permanent(m)) => fail(state, row, m).await,
                Err(StepError::Moved) => Step::Moved,
            }
        }
        RequestState::Cancelling => {
            let mut next = row.to(RequestState::Deleted);
            next.row.last_error = None;
            match state
                .store
                .apply(
                    &next,
                    "cancelled by an admin (the key's shipment is the lead's and stays)",
                )
                .await
            {
                Ok(_) => Step::Moved,
                Err(e) => Step::Retry(e.to_string()),
            }
        }
        _ => lead_step(state, row).await,
    }
}

/// The step of a request that orders its own shipment.
async fn lead_step(state: &Services, row: RequestRow) -> Step {
    let mut row = row;
    // Each state moves the request on as far as it can in one run.
    for _ in 0..4 {
        let next = match row.state {
            RequestState::Creating => match create_shipment(state, row.clone(), false).await {
                Ok(r) => r,
                Err(CreateError::Refused { code, message }) => {
                    return fail(state, row, format!("the fulfiller refused the shipment ({code}): {message}; fix the request and create it again")).await;
                }
                Err(CreateError::Unavailable(m, Some(after))) => {
                    return Step::RetryAfter(m, after);
                }
                Err(CreateError::Unavailable(m, None)) => return Step::Retry(m),
                Err(CreateError::Internal(m)) => return Step::Retry(m),
            },
            RequestState::Open => match poll(state, row.clone()).await {
                Ok(Some(r)) => r,
                Ok(None) => return Step::Again,
                Err(StepError::Transient(m)) => return Step::Retry(m),
                Err(StepError::Permanent(m)) => return fail(state, row, m).await,
                Err(StepError::Moved) => return Step::Moved,
            },
            RequestState::PinPending => match deliver(state, row.clone()).await {
                Ok(r) => r,
                Err(StepError::Transient(m)) => {
                    let mut r = row.clone();
                    r.last_error = Some(format!("PIN delivery failed, will retry: {m}"));
                    let _ = state
                        .store
                        .update_request_if(&r, RequestState::PinPending, "")
                        .await;
                    return Step::Retry(m);
                }
                Err(StepError::Permanent(m)) => return fail(state, row, m).await,
                Err(StepError::Moved) => return Step::Moved,
            },
            RequestState::Cancelling => return cancel(state, row).await,
            RequestState::Complete => return Step::Done(RequestState::Complete),
            RequestState::Deleted => return Step::Done(RequestState::Deleted),
            _ => return Step::Done(RequestState::Error),
        };
        row = next;
    }
    Step::Again
}

pub(crate) enum StepError {
    Transient(String),
    Permanent(String),
    /// The compare-and-set lost: see [`Step::Moved`].
    Moved,
}

/// Writes `row` only if the request is still `expected` (the state the run read):
/// `Err(StepError::Moved)` when an admin changed it meanwhile.
async fn write_if(
    state: &Services,
    row: &RequestRow,
    expected: RequestState,
    note: &str,
) -> Result<(), StepError> {
    match state.store.update_request_if(row, expected, note).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::info!(request_id = %row.id, expected = %expected, "the request changed meanwhile; this run's write is dropped");
            Err(StepError::Moved)
        }
        Err(e) => Err(StepError::Transient(e.to_string())),
    }
}

fn client_err(e: ClientError) -> StepError {
    if e.is_transient() {
        StepError::Transient(e.to_string())
    } else {
        StepError::Permanent(format!("the fulfiller answered {e}"))
    }
}

async fn poll(state: &Services, mut row: RequestRow) -> Result<Option<RequestRow>, StepError> {
    let sid = row.shipment_id.clone().unwrap_or_default();
    let s = match state.fulfiller.get_fpr_shipment(&sid).await {
        Ok(s) => s,
        Err(ClientError::Api { status: 404, .. }) => {
            row.state = RequestState::Deleted;
            row.last_error = Some(format!(
                "shipment {sid} no longer exists at the fulfiller (deleted there)"
            ));
            write_if(state, &row, RequestState::Open, "deleted at the fulfiller").await?;
            return Ok(Some(row));
        }
        Err(e) => return Err(client_err(e)),
    };
    let st = s.shipment_state.shipment_state_id;
    let changed = row.fulfiller_state != Some(i64::from(st.id()));
    row.fulfiller_state = Some(i64::from(st.id()));
    row.fulfiller_message = Some(s.shipment_state.shipment_state_message.clone());
    row.tracking = s.tracking_link.clone();
    if st.is_error() {
        return Err(StepError::Permanent(format!(
            "the fulfiller put shipment {sid} in error state {}: {}; correct it in the YubiEnterprise Console (or edit the shipment) and retry",
            st.id(),
            s.shipment_state.shipment_state_message
        )));
    }
    if !st.has_responses() {
        if let ShipmentState::Other(code) = st {
            tracing::warn!(shipment_id = %sid, code, "unknown fulfiller state; treating as open");
        }
        if changed {
            let note = format!("fulfiller state {}", st.id());
            write_if(state, &row, RequestState::Open, &note).await?;
        }
        return Ok(None);
    }
    register(state, row, &s).await.map(Some)
}

/// Opens both responses, registers the credential, keeps the PIN sealed.
async fn register(
    state: &Services,
    row: RequestRow,
    s: &FprShipment,
) -> Result<RequestRow, StepError> {
    let body: CreateFprShipment = serde_json::from_str(&row.create_body)
        .map_err(|e| StepError::Permanent(format!("stored create body unreadable: {e}")))?;
    register_key(state, row, &body, 0, s).await
}

/// Opens the responses of key `index` of the shipment (the order `body` sealed its
/// requests), registers its credential, keeps its PIN sealed.
async fn register_key(
    state: &Services,
    mut row: RequestRow,
    body: &CreateFprShipment,
    index: usize,
    s: &FprShipment,
) -> Result<RequestRow, StepError> {
    let Some(pd) = s
        .shipment_items
        .first()
        .and_then(|i| i.product_data.as_ref())
        .and_then(|d| d.get(index))
    else {
        return Err(StepError::Permanent(format!(
            "the shipment is shipped but carries no product_data for key {}",
            index + 1
        )));
    };
    let Some(custom) = body
        .shipment_items
        .first()
        .and_then(|i| i.product_customizations.get(index))
    else {
        return Err(StepError::Permanent(
            "stored create body has no sealed requests".into(),
        ));
    };
    let keys = [response_key(state, &row.id).await?];
    let Some(cred_req) = custom.fido_credential_requests.first() else {
        return Err(StepError::Permanent(
            "stored create body has no credential request".into(),
        ));
    };
    let Some(cred_resp) = pd.fido_credential_responses.first() else {
        return Err(StepError::Permanent("step open credential response: the shipment carries no credential response; nothing was registered".into()));
    };
    let (reg, signing) = open_credential(state, &keys, cred_req, cred_resp, pd).await?;
    let pin = if pd.fido_pin_response.is_empty() {
        None
    } else {
        let p = envelope::open_pin_response(
            &pd.fido_pin_response,
            &keys,
            &signing,
            &custom.fido_pin_request,
        )
        .map_err(|e| {
            StepError::Permanent(format!(
                "step open PIN response: {e}; nothing was registered — contact the fulfiller"
            ))
        })?;
        if p.serial != pd.serial_number {
            return Err(StepError::Permanent(
                "step compare serials: the PIN and credential responses name different serials; nothing was registered".into(),
            ));
        }
        Some(p)
    };
    // The PIN is sealed and stored before Graph is called: whatever happens to Graph's
    // answer, the PIN of a registered key is never lost.
    if let Some(p) = &pin {
        let sealed = state
            .master_key
            .seal(&row.id, Purpose::Pin, p.pin.expose().as_bytes())
            .map_err(|e| StepError::Transient(e.to_string()))?;
        state
            .store
            .put_secret(&row.id, Purpose::Pin, &sealed)
            .await
            .map_err(|e| StepError::Transient(e.to_string()))?;
    }
    register_with_graph(state, &row.user_id, &reg, &pd.serial_number).await?;
    row.serial = Some(pd.serial_number.clone());
    row.firmware = Some(pd.firmware_version.clone());
    if pin.is_some() {
        row.state = RequestState::PinPending;
        let written = write_if(
            state,
            &row,
            RequestState::Open,
            "credential registered in Entra; PIN sealed for delivery",
        )
        .await;
        if matches!(written, Err(StepError::Moved)) {
            // Deleted meanwhile: the PIN sealed above is not kept for it.
            if let Ok(Some(now_row)) = state.store.get_request(&row.id).await
                && now_row.state == RequestState::Deleted
            {
                let _ = state.store.delete_secret(&row.id, Purpose::Pin).await;
            }
        }
        written?;
    } else {
        row.state = RequestState::Complete;
        write_if(
            state,
            &row,
            RequestState::Open,
            "credential registered in Entra; no PIN requested",
        )
        .await?;
    }
    Ok(row)
}

/// The request's response key (sealed in the store): the private key its sealed
/// responses are opened with.
pub(crate) async fn response_key(state: &Services, id: &str) -> Result<PrivateJwk, StepError> {
    let sealed = state
        .store
        .get_secret(id, Purpose::ResponseKey)
        .await
        .map_err(|e| StepError::Transient(e.to_string()))?
        .ok_or_else(|| {
            StepError::Permanent(
                "the response key was purged; this request cannot be completed".into(),
            )
        })?;
    let key_json = state
        .master_key
        .open(id, Purpose::ResponseKey, &sealed)
        .map_err(|e| StepError::Permanent(format!("opening the stored response key: {e}")))?;
    let key_text = std::str::from_utf8(&key_json)
        .map_err(|_| StepError::Permanent("stored response key is not UTF-8".into()))?;
    PrivateJwk::parse(key_text)
        .map_err(|e| StepError::Permanent(format!("stored response key: {e}")))
}

/// Opens the credential response `cred_resp` to our request `cred_req` with `keys`:
/// its signature checked against the fulfiller's signing keys (read again once when the
/// cached set does not verify it: a rotation), its request hash against `cred_req`, its
/// serial against the shipment's. Returns the WebAuthn registration to hand Graph and
/// the signing keys that verified it (the same key's PIN response is opened with them).
pub(crate) async fn open_credential(
    state: &Services,
    keys: &[PrivateJwk],
    cred_req: &str,
    cred_resp: &str,
    pd: &yubienterprise::fpr::ProductData,
) -> Result<(webauthn::options::RegistrationResponse, envelope::Jwks), StepError> {
    let mut signing = state.signing_keys(false).await.map_err(client_err)?;
    let cred = match envelope::open_credential_response(cred_resp, keys, &signing, cred_req) {
        Ok(c) => c,
        Err(_) => {
            signing = state.signing_keys(true).await.map_err(client_err)?;
            envelope::open_credential_response(cred_resp, keys, &signing, cred_req).map_err(
                |e| {
                    StepError::Permanent(format!(
                        "step open credential response: {e}; nothing was registered — contact the fulfiller"
                    ))
                },
            )?
        }
    };
    if cred.serial != pd.serial_number {
        return Err(StepError::Permanent(format!(
            "step compare serials: the credential response names serial {} but the shipment {}; nothing was registered",
            cred.serial, pd.serial_number
        )));
    }
    let reg = serde_json::from_value(cred.credential.clone()).map_err(|e| {
        StepError::Permanent(format!("step read credential: {e}; nothing was registered"))
    })?;
    Ok((reg, signing))
}

/// Registers `reg` (the key with `serial`) as a passkey of Entra user `user_id`. When
/// Graph refuses, it may only mean that an earlier run registered it and lost Graph's
/// answer (the challenge is then used up): the user's passkeys are listed, and one with
/// our credential id (or our display name) is the registration done.
pub(crate) async fn register_with_graph(
    state: &Services,
    user_id: &str,
    reg: &webauthn::options::RegistrationResponse,
    serial: &str,
) -> Result<(), StepError> {
    let display = format!("YubiKey {serial} (pre-registered)");
    let method = graph::NewFido2Method::from_registration(Some(display.clone()), reg);
    let version = state.config.entra_fido_api_version;
    let e = match state
        .graph
        .register_fido2_method(version, user_id, &method)
        .await
    {
        Ok(m) => {
            tracing::info!(method_id = ?m.id, serial, "credential registered in Entra");
            return Ok(());
        }
        Err(e) if e.is_transient() => {
            return Err(StepError::Transient(format!("registering with Graph: {e}")));
        }
        Err(e) => e,
    };
    let ours = webauthn::b64::encode(&reg.id);
    match state.graph.list_fido2_methods(version, user_id).await {
        Ok(list)
            if list
                .iter()
                .any(|m| m.id == ours || m.display_name.as_deref() == Some(display.as_str())) =>
        {
            tracing::info!(
                serial,
                "Graph refused a second registration: the credential is already registered (an earlier answer was lost)"
            );
            Ok(())
        }
        Ok(_) => Err(StepError::Permanent(format!(
            "step register with Entra: Graph refused the credential: {e}; check the Passkey (FIDO2) policy"
        ))),
        Err(l) if l.is_transient() => Err(StepError::Transient(format!(
            "Graph refused the registration ({e}); looking for an earlier one failed: {l}"
        ))),
        Err(l) => Err(StepError::Permanent(format!(
            "step register with Entra: Graph refused the credential: {e} (and listing the user's passkeys failed: {l}); check the Passkey (FIDO2) policy"
        ))),
    }
}

async fn deliver(state: &Services, mut row: RequestRow) -> Result<RequestRow, StepError> {
    let Some(sealed) = state
        .store
        .get_secret(&row.id, Purpose::Pin)
        .await
        .map_err(|e| StepError::Transient(e.to_string()))?
    else {
        row.state = RequestState::Complete;
        write_if(
            state,
            &row,
            RequestState::PinPending,
            "PIN already delivered",
        )
        .await?;
        return Ok(row);
    };
    let pin = state
        .master_key
        .open(&row.id, Purpose::Pin, &sealed)
        .map_err(|e| StepError::Permanent(format!("opening the stored PIN: {e}")))?;
    let pin = std::str::from_utf8(&pin)
        .map_err(|_| StepError::Permanent("stored PIN is not UTF-8".into()))?;
    crate::pin::deliver(state, &row, pin)
        .await
        .map_err(|e| match e {
            crate::pin::DeliveryError::Transient(m) => StepError::Transient(m),
            crate::pin::DeliveryError::Permanent(m) => StepError::Permanent(m),
        })?;
    let at = now();
    let until = crate::pin::record_delivery(state, &row.id, at)
        .await
        .map_err(|e| StepError::Transient(e.to_string()))?;
    let note = match until {
        Some(u) => format!(
            "PIN delivered; held sealed for resends until {}",
            crate::pin::date(u)
        ),
        None => {
            crate::pin::purge(state, &row.id, at, "not_retained")
                .await
                .map_err(|e| StepError::Transient(e.to_string()))?;
            "PIN delivered and destroyed".to_owned()
        }
    };
    row.state = RequestState::Complete;
    row.last_error = None;
    write_if(state, &row, RequestState::PinPending, &note).await?;
    Ok(row)
}

/// Fault injection for the exactly-once tests, between "the fulfiller created the
/// shipment" and "the connector recorded it":
///
/// - `PREREG_FAULT_ABORT_AFTER_CREATE=1`: the process aborts (no cleanup).
/// - `PREREG_FAULT_PAUSE_AFTER_CREATE=1`: the process prints one JSON line
///   `{"fault":"paused_after_create","shipment_id":"..."}` on stdout and waits forever,
///   so a test can `kill -9` it from outside at exactly that point.
async fn crash_point(shipment_id: &str) {
    let on = |k: &str| std::env::var_os(k).is_some_and(|v| v == "1");
    if on("PREREG_FAULT_ABORT_AFTER_CREATE") {
        std::process::abort();
    }
    if on("PREREG_FAULT_PAUSE_AFTER_CREATE") {
        use std::io::Write;
        let line = serde_json::json!({"fault": "paused_after_create", "shipment_id": shipment_id});
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        std::future::pending::<()>().await;
    }
}
