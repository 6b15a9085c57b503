//! A gate in front of one vendor service (the fulfiller, Graph, Okta), shared by every
//! caller of that service in the process: at most `limit` calls in flight, and once the
//! service has answered 429 with `Retry-After`, no call before that time, by any caller
//! (not only the one that was told). The vendor clients enter it around each request.
//!
//! Lives here: the concurrency limit and the shared pause. Does not live here: retries
//! (each client decides), HTTP.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The longest pause a `Retry-After` can impose.
pub const MAX_PAUSE: Duration = Duration::from_secs(300);

/// One service's gate (clones share it).
#[derive(Debug, Clone)]
pub struct Gate(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    slots: Arc<Semaphore>,
    limit: usize,
    not_before: Mutex<Option<Instant>>,
    stats: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    pauses: AtomicU64,
    finished: AtomicU64,
    micros: AtomicU64,
}

/// What went through a gate since it was made (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Calls let through.
    pub calls: u64,
    /// `Retry-After` answers that paused the service (429s).
    pub pauses: u64,
    /// Calls finished (their permit dropped).
    pub finished: u64,
    /// Their time in the gate's hands, from entering to the permit's drop, summed.
    pub seconds: f64,
    /// Calls in flight now.
    pub in_flight: usize,
}

/// A place in the gate: the call may go; dropping it frees the place and records how
/// long the call took.
#[derive(Debug)]
pub struct Permit {
    _place: Option<OwnedSemaphorePermit>,
    gate: Arc<Inner>,
    since: Instant,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let micros = u64::try_from(self.since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.gate.stats.micros.fetch_add(micros, Ordering::Relaxed);
        self.gate.stats.finished.fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for Gate {
    /// No limit and no pause until one is asked.
    fn default() -> Self {
        Self::new(Semaphore::MAX_PERMITS)
    }
}

impl Gate {
    /// At most `limit` calls in flight (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self(Arc::new(Inner {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            not_before: Mutex::new(None),
            stats: Counters::default(),
        }))
    }

    /// Waits for a place, then until a pause the service asked for is over.
    pub async fn enter(&self) -> Permit {
        // `slots` is never closed, so this is always `Ok`; were it closed, the call
        // would go without a place rather than never.
        let place = self.0.slots.clone().acquire_owned().await.ok();
        loop {
            let until = *self
                .0
                .not_before
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => {
                    self.0.stats.calls.fetch_add(1, Ordering::Relaxed);
                    return Permit {
                        _place: place,
                        gate: self.0.clone(),
                        since: Instant::now(),
                    };
                }
            }
        }
    }

    /// The service said "retry after `secs` seconds": nobody calls it before then
    /// (capped at [`MAX_PAUSE`]; a longer pause already set stays).
    pub fn pause(&self, secs: u64) {
        self.0.stats.pauses.fetch_add(1, Ordering::Relaxed);
        let until = Instant::now() + Duration::from_secs(secs).min(MAX_PAUSE);
        let mut g = self
            .0
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if g.is_none_or(|t| t < until) {
            *g = Some(until);
        }
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.0.limit - self.0.slots.available_permits()
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.0.limit
    }

    /// What went through it so far.
    pub fn stats(&self) -> Stats {
        let c = &self.0.stats;
        Stats {
            calls: c.calls.load(Ordering::Relaxed),
            pauses: c.pauses.load(Ordering::Relaxed),
            finished: c.finished.load(Ordering::Relaxed),
            seconds: c.micros.load(Ordering::Relaxed) as f64 / 1e6,
            in_flight: self.in_flight(),
        }
    }
}

/// What a log may show of a vendor call's URL: the path only (no host, no query), with
/// every segment that looks like a user's id (an `@`, three digits or more, or more than
/// 24 characters) shown as `{id}`, e.g. `/api/v1/users/{id}/factors`.
pub fn route_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/')
        .map(|seg| {
            let digits = seg.bytes().filter(u8::is_ascii_digit).count();
            if seg.len() > 24 || digits >= 3 || seg.contains('@') {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_lets_the_next_call_in_when_a_place_frees() {
        let g = Gate::new(2);
        let a = g.enter().await;
        let _b = g.enter().await;
        assert_eq!(g.in_flight(), 2);
        let g2 = g.clone();
        let third = tokio::spawn(async move { g2.enter().await });
        tokio::task::yield_now().await;
        assert!(!third.is_finished(), "no place free");
        drop(a);
        let _c = third.await.unwrap();
        assert_eq!(g.in_flight(), 2);
    }

    // The clock is the runtime's paused test clock: nothing here waits for real.
    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller_until_it_is_over() {
        let g = Gate::new(4);
        g.pause(30);
        let early = tokio::time::timeout(Duration::from_secs(29), g.enter()).await;
        assert!(early.is_err(), "no call during the pause");
        let _p = g.enter().await;
        // A pause beyond MAX_PAUSE is cut to it.
        g.pause(1_000_000);
        let capped = tokio::time::timeout(MAX_PAUSE + Duration::from_secs(1), g.enter()).await;
        assert!(capped.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_stats_count_calls_pauses_and_time_in_flight() {
        let g = Gate::new(4);
        let a = g.enter().await;
        tokio::time::advance(Duration::from_secs(2)).await;
        drop(a);
        let _b = g.enter().await;
        g.pause(1);
        let s = g.stats();
        assert_eq!((s.calls, s.finished, s.pauses, s.in_flight), (2, 1, 1, 1));
        assert!((2.0..2.1).contains(&s.seconds), "{s:?}");
    }

    #[test]
    fn a_vendor_route_shows_no_id_host_or_query() {
        assert_eq!(
            route_of("https://api.example.com/v1/fpr/shipments/4kQpZ2mXbT?x=1"),
            "/v1/fpr/shipments/4kQpZ2mXbT"
        );
        assert_eq!(
            route_of(
                "http://127.0.0.1:9/v1.0/users/72a3e904-0789-594c-8f2b-3fe9bedff6ac/authentication/fido2Methods"
            ),
            "/v1.0/users/{id}/authentication/fido2Methods"
        );
        assert_eq!(
            route_of("https://graph.example/beta/users/AlexW@contoso.example"),
            "/beta/users/{id}"
        );
        assert_eq!(
            route_of("https://org.okta.example/api/v1/users/00u1abcd9/factors"),
            "/api/v1/users/{id}/factors"
        );
    }
}
