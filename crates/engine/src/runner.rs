//! The runner: every piece of processing goes through it (the cron tick, a trigger,
//! `POST /v1/fpr/shipments/process`, the console's "Process now", `prereg okta
//! --process`). The crates.io background worker is the model:
//!
//! - **Claims**: one dispatcher claims due jobs (`FOR UPDATE SKIP LOCKED` on
//!   PostgreSQL, one `UPDATE ... RETURNING` on SQLite) while fewer than
//!   `processing_workers` run, and runs each as its own task. Several replicas on one
//!   database share the work the same way.
//! - **Leases**: a claimed job is leased to its run for `job_lease_seconds` (default
//!   [`LEASE`]); a heartbeat renews the lease every third of that while the step runs.
//!   Only the lease holder may renew, release or finish the job; a run that loses its lease (the database was out of
//!   reach longer than the lease) is stopped, and whoever holds the job now carries on.
//! - **Panics**: a step that panics is caught (its task ends, the runner does not), the
//!   panic is recorded in the request's audit trail, and the job is retried with backoff.
//! - **Backoff**: a transient failure waits `retry_base_seconds` doubling per failure up
//!   to `retry_max_seconds` (at least what the service asked with `Retry-After`); a
//!   cron tick does not shorten it ([`Release::Backoff`]). After `max_attempts`
//!   consecutive transient failures the request goes to `error` naming the last one.
//! - **Waiting**: a request waiting for the outside world (the fulfiller to ship) is
//!   polled again at the next cron tick that finds its shipment moved in the
//!   fulfiller's list ([`tick`]), at "process now", or a day later at the latest
//!   ([`Release::Wait`]).

use crate::domain::RequestState;
use crate::process::{RunSummary, Step};
use crate::services::Services;
use crate::store::{Job, Release, Store, StoreError, now};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

/// How long a claimed job is leased to its run by default (`job_lease_seconds`): also
/// how long a job whose holder died (a crash, `kill -9`) waits before it is taken over.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often the dispatcher looks for due jobs when nobody kicks it (jobs whose
/// backoff ran out, work of other replicas).
const POLL: Duration = Duration::from_secs(2);
/// A request waiting for the fulfiller is looked at again after this long at the
/// latest (the cron tick usually comes first).
const WAIT: i64 = 24 * 3600;

/// The runner's handle, shared through [`Services`].
#[derive(Debug)]
pub struct Runner {
    kick: Notify,
    done: Notify,
    kicks: AtomicU64,
    idle: watch::Sender<u64>,
    totals: std::sync::Mutex<RunSummary>,
    /// When the dispatcher last went round its loop (unix seconds; 0: not started).
    last_loop: std::sync::atomic::AtomicI64,
    /// Requests whose next step panics (feature `test-hooks`: the panic isolation test).
    #[cfg(feature = "test-hooks")]
    panic_next: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Default for Runner {
    fn default() -> Self {
        Self {
            kick: Notify::new(),
            done: Notify::new(),
            kicks: AtomicU64::new(0),
            idle: watch::Sender::new(0),
            totals: std::sync::Mutex::new(RunSummary::default()),
            last_loop: std::sync::atomic::AtomicI64::new(0),
            #[cfg(feature = "test-hooks")]
            panic_next: std::sync::Mutex::default(),
        }
    }
}

impl Runner {
    /// Wakes the dispatcher to look for due jobs now. Returns the kick's number.
    pub fn kick(&self) -> u64 {
        let n = self.kicks.fetch_add(1, Ordering::SeqCst) + 1;
        self.kick.notify_one();
        n
    }

    /// Tests only (feature `test-hooks`): the next step of `request_id` panics, once.
    #[cfg(feature = "test-hooks")]
    pub fn panic_next(&self, request_id: &str) {
        self.panic_next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(request_id.to_owned());
    }

    /// Seconds since the dispatcher last went round its loop (it does at least every
    /// poll interval, 2 s, while it lives); `None` before it started.
    pub fn idle_for(&self) -> Option<i64> {
        match self.last_loop.load(Ordering::Relaxed) {
            0 => None,
            t => Some(now() - t),
        }
    }

    /// What the runner did since it started.
    pub fn totals(&self) -> RunSummary {
        self.totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn count(&self, outcome: &Step) {
        let mut t = self
            .totals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.processed += 1;
        match outcome {
            Step::Done(RequestState::Complete) => t.completed += 1,
            Step::Done(RequestState::Error) => t.errors += 1,
            Step::Retry(_) | Step::RetryAfter(..) => t.retries += 1,
            _ => {}
        }
    }

    /// Kicks the dispatcher and waits until it has found nothing due and nothing
    /// running after the kick (every job that was due has run as far as it can now),
    /// or `limit` passed. Whether it went idle. The work itself runs in the runner,
    /// never in the caller: a caller that goes away stops nothing.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let n = self.kick();
        let mut rx = self.idle.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|seen| *seen >= n))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// The cron tick: makes due what waits for the outside world, not what waits out a
/// retry backoff, and kicks the runner. How many jobs it made due.
///
/// Requests waiting for the fulfiller are not polled one `GET` each: the tick reads the
/// fulfiller's list of FIDO Pre-reg shipments in the states a request acts on (shipped
/// or delivered: the responses are there; an error state), 100 a page, and makes due
/// only the requests whose shipment is in it ([`sweep`]). When that would take more
/// calls than there are waiting requests, or a list call fails, each is polled as
/// before. A request not seen in the list is still polled once a day (its `Wait`), which
/// notices a shipment deleted at the fulfiller.
pub async fn tick(state: &Services) -> Result<u64, StoreError> {
    let waiting = state.store.waiting_for_fulfiller().await?;
    let n = if waiting.len() <= ACTIONABLE.len() {
        state.store.make_due(false).await?
    } else {
        match sweep(state).await {
            Ok(seen) => {
                let due: Vec<String> = waiting
                    .into_iter()
                    .filter(|(_, sid)| seen.contains(sid))
                    .map(|(id, _)| id)
                    .collect();
                state.store.make_due_seen(&due).await?
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing the fulfiller's shipments failed; polling each waiting request");
                state.store.make_due(false).await?
            }
        }
    };
    state.runner.kick();
    Ok(n)
}

/// The fulfiller states a waiting request acts on: the responses are there, or the
/// fulfiller put the shipment in error.
const ACTIONABLE: [yubienterprise::ShipmentState; 10] = {
    use yubienterprise::ShipmentState as S;
    [
        S::Shipped,
        S::Delivered,
        S::IncompleteRequest,
        S::Incomplete,
        S::AddressUndeliverable,
        S::ProcessingError,
        S::DplMatch,
        S::ShippingError,
        S::Lost,
        S::DeliveryException,
    ]
};

/// The ids of the fulfiller's FIDO Pre-reg shipments in an actionable state (`ACTIONABLE`)
/// (`GET /v1/shipments_exact?shipment_type=AUTO FIDO PRE-REG&shipment_state_id=N`, 100
/// a page).
pub async fn sweep(
    state: &Services,
) -> Result<std::collections::HashSet<String>, yubienterprise::ClientError> {
    let mut seen = std::collections::HashSet::new();
    for st in ACTIONABLE {
        let mut offset = 0u64;
        loop {
            let q = yubienterprise::ListQuery {
                limit: Some(100),
                offset: Some(offset),
                shipment_type: Some(yubienterprise::ShipmentType::AutoFidoPreReg),
                shipment_state_id: Some(st),
                ..Default::default()
            };
            let page = state.fulfiller.list_shipments_exact(&q).await?;
            let got = page.shipments.len() as u64;
            seen.extend(
                page.shipments
                    .into_iter()
                    .map(|s| s.shipment_id.to_string()),
            );
            offset += got;
            if got == 0 || offset >= page.total_count {
                break;
            }
        }
    }
    Ok(seen)
}

/// An admin's "process now" (`POST /v1/fpr/shipments/process`, the console): makes
/// every job due, backoffs included, and kicks the runner.
pub async fn process_now(state: &Services) -> Result<u64, StoreError> {
    let n = state.store.make_due(true).await?;
    state.runner.kick();
    Ok(n)
}

/// What an admin's "process now" came to ([`process_and_wait`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Processed {
    /// Jobs made due.
    pub queued: u64,
    /// Whether the runner went idle within the limit (everything due has run as far as
    /// it goes now).
    pub idle: bool,
    /// Job runs meanwhile.
    pub processed: u64,
    /// Requests that completed meanwhile.
    pub completed: u64,
    /// Requests that entered the error state meanwhile.
    pub errors: u64,
}

/// [`process_now`], then waits (at most `limit`) until the runner has run everything
/// due as far as it goes; what it did meanwhile (other work the runner did in that
/// time is counted too). The work runs in the runner: the caller only waits.
pub async fn process_and_wait(state: &Services, limit: Duration) -> Result<Processed, StoreError> {
    let before = state.runner.totals();
    let queued = process_now(state).await?;
    let idle = state.runner.wait_idle(limit).await;
    let done = state.runner.totals().since(&before);
    Ok(Processed {
        queued,
        idle,
        processed: done.processed,
        completed: done.completed,
        errors: done.errors,
    })
}

/// For commands that serve nothing (`prereg okta --process`): runs the runner until
/// every job due now has run as far as it goes (at most `limit`), then stops it. What
/// it did.
pub async fn run_until_idle(state: Arc<Services>, limit: Duration) -> RunSummary {
    let before = state.runner.totals();
    let task = tokio::spawn(run(state.clone()));
    state.runner.wait_idle(limit).await;
    task.abort();
    state.runner.totals().since(&before)
}

/// Runs the dispatcher until the task is aborted.
pub async fn run(state: Arc<Services>) {
    let workers = state.config.processing.workers;
    let slots = Arc::new(Semaphore::new(workers));
    loop {
        state.runner.last_loop.store(now(), Ordering::Relaxed);
        let seen = state.runner.kicks.load(Ordering::SeqCst);
        let mut claimed = false;
        loop {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                break;
            };
            match state.store.claim(state.config.processing.lease()).await {
                Ok(Some(job)) => {
                    claimed = true;
                    let s = state.clone();
                    tokio::spawn(async move {
                        run_job(&s, job).await;
                        drop(permit);
                        s.runner.done.notify_one();
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed");
                    break;
                }
            }
        }
        if !claimed && slots.available_permits() == workers {
            state.runner.idle.send_if_modified(|v| {
                let newer = seen > *v;
                if newer {
                    *v = seen;
                }
                newer
            });
        }
        tokio::select! {
            () = state.runner.kick.notified() => {}
            () = state.runner.done.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Runs one claimed job: its step (in a task of its own, so a panic is caught) with the
/// lease renewed meanwhile, then gives the job back or finishes it.
async fn run_job(state: &Arc<Services>, job: Job) {
    let s = state.clone();
    let request_id = job.request_id.clone();
    let mut work = tokio::spawn(async move { steps(&s, &request_id).await });
    let Some(outcome) = holding(state, &job, &mut work).await else {
        work.abort();
        return;
    };
    let outcome = match outcome {
        Ok(Ok(step)) => step,
        Ok(Err(e)) => Step::Retry(e.to_string()),
        Err(e) => {
            let what = if e.is_panic() {
                panic_text(e.into_panic())
            } else {
                "the step was cancelled".to_owned()
            };
            tracing::error!(request_id = %job.request_id, panic = %what, "a processing step panicked; retrying with backoff");
            let why = format!("processing failed unexpectedly ({what}); it is retried");
            if let Err(e) = note(state, &job.request_id, &why).await {
                tracing::warn!(request_id = %job.request_id, error = %e, "recording the panic failed");
            }
            Step::Retry(why)
        }
    };
    if let Err(e) = settle(state, &job, outcome).await {
        // The lease runs out and the job is claimed again.
        tracing::warn!(request_id = %job.request_id, error = %e, "giving the job back failed");
    }
}

/// Runs `work` while renewing `job`'s lease every third of the lease. `None` when the lease
/// was lost (someone else holds the job now): `work` is dropped unfinished.
pub async fn holding<F: std::future::Future>(
    state: &Services,
    job: &Job,
    work: F,
) -> Option<F::Output> {
    tokio::pin!(work);
    let lease = state.config.processing.lease();
    let mut beat = tokio::time::interval(lease / 3);
    beat.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            _ = beat.tick() => match state.store.heartbeat(job, lease).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(request_id = %job.request_id, "lost the job's lease; stopping this run (the holder carries on)");
                    return None;
                }
                // The database is out of reach: the lease may still run out.
                Err(e) => tracing::warn!(request_id = %job.request_id, error = %e, "renewing the job's lease failed"),
            },
        }
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// Appends a note to a request's audit trail (its state unchanged).
async fn note(state: &Services, request_id: &str, text: &str) -> Result<(), StoreError> {
    if let Some(row) = state.store.get_request(request_id).await? {
        state.store.update_request_if(&row, row.state, text).await?;
    }
    Ok(())
}

/// The request's steps: as far as it goes in one run. A run whose write lost to an
/// admin reads the request again and decides again.
async fn steps(state: &Services, request_id: &str) -> Result<Step, StoreError> {
    let mut outcome = Step::Done(RequestState::Deleted);
    for _ in 0..5 {
        let Some(row) = state.store.get_request(request_id).await? else {
            return Ok(Step::Done(RequestState::Deleted));
        };
        #[cfg(feature = "test-hooks")]
        if state
            .runner
            .panic_next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(request_id)
        {
            panic!("a panic injected by a test");
        }
        outcome = traced_step(state, row).await;
        if !matches!(outcome, Step::Moved) {
            break;
        }
    }
    Ok(outcome)
}

/// One step inside a `job_step` span: the request id, identity provider and state it
/// started in, then its outcome and duration. The vendor calls it makes (`vendor_call`
/// spans of the clients) nest inside. No PIN, secret or personal data in any field.
async fn traced_step(state: &Services, row: crate::store::RequestRow) -> Step {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "job_step",
        request_id = %row.id,
        idp = row.idp.as_str(),
        state = row.state.as_str(),
        outcome = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let outcome = crate::process::step(state, row)
        .instrument(span.clone())
        .await;
    let name = match &outcome {
        Step::Done(s) => s.as_str(),
        Step::Moved => "moved",
        Step::Again => "waiting",
        Step::Retry(_) | Step::RetryAfter(..) => "retry",
    };
    span.record("outcome", name);
    span.record(
        "duration_ms",
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    );
    span.in_scope(|| tracing::info!("job step finished"));
    outcome
}

/// The backoff before retry number `retries + 1`: base doubling, capped, at least what
/// the service asked.
pub fn backoff(p: &crate::config::Processing, retries: i64, asked: Option<u64>) -> i64 {
    let shift = u32::try_from(retries.clamp(0, 30)).unwrap_or(30);
    let secs = p
        .retry_base_seconds
        .saturating_mul(1u64 << shift)
        .min(p.retry_max_seconds)
        .max(asked.unwrap_or(0));
    i64::try_from(secs).unwrap_or(i64::MAX / 4)
}

async fn settle(state: &Services, job: &Job, outcome: Step) -> Result<(), StoreError> {
    let p = state.config.processing;
    let outcome = match outcome {
        Step::Retry(why) | Step::RetryAfter(why, _)
            if job.retries + 1 >= i64::from(p.max_attempts) =>
        {
            give_up(state, job, &why).await?
        }
        o => o,
    };
    state.runner.count(&outcome);
    match outcome {
        Step::Done(_) => {
            state.store.finish(job).await?;
            // An admin's retry (or resend) that landed after this run's last write
            // scheduled the job this `finish` removed: give the request one again.
            if let Some(now_row) = state.store.get_request(&job.request_id).await?
                && now_row.state.is_active()
            {
                state.store.schedule(&now_row.id, now()).await?;
            }
        }
        Step::Moved => {
            state.store.release(job, now(), None, Release::Wait).await?;
        }
        Step::Again => {
            state
                .store
                .release(job, now() + WAIT, None, Release::Wait)
                .await?;
        }
        Step::Retry(why) => retry_later(state, job, &why, None).await?,
        Step::RetryAfter(why, asked) => retry_later(state, job, &why, Some(asked)).await?,
    }
    Ok(())
}

/// Gives the job back to wait out its backoff (at least `asked`, the service's
/// `Retry-After`).
async fn retry_later(
    state: &Services,
    job: &Job,
    why: &str,
    asked: Option<u64>,
) -> Result<(), StoreError> {
    let delay = backoff(&state.config.processing, job.retries, asked);
    state
        .store
        .release(job, now() + delay, Some(why), Release::Backoff)
        .await?;
    Ok(())
}

/// The attempt cap is reached: the request goes to `error` naming the last failure
/// (as a compare-and-set: an admin's change meanwhile stays). What came of it.
async fn give_up(state: &Services, job: &Job, why: &str) -> Result<Step, StoreError> {
    let message = format!(
        "gave up after {} attempts in a row failed; the last: {why}. Fix the cause, then retry the request",
        job.retries + 1
    );
    Ok(match state.store.get_request(&job.request_id).await? {
        Some(row) => crate::process::fail(state, row, message).await,
        None => Step::Done(RequestState::Deleted),
    })
}
