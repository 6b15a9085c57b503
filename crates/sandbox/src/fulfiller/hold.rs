//! A pause point for race tests: hold the answer to the next read of one shipment.
//!
//! `PUT /sandbox/v1/holds/{id}` arms a hold: the next `GET /v1/fpr/shipments/{id}` reads
//! the shipment as it is, then waits before answering, so that the caller acts on what
//! it read while the test changes the world (an admin's DELETE, a retry).
//! `GET /sandbox/v1/holds/{id}` tells whether a read is waiting; `DELETE
//! /sandbox/v1/holds/{id}` sends the held answer (or disarms a hold no read took yet).
//! Later reads are not held. Sandbox-only; nothing else is held.
//!
//! The id [`CREATE`] holds the next `POST /v1/fpr/shipments` before the shipment is
//! created (a slow fulfiller): the create waits, then is carried out when released.

use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

/// The hold id that holds the next create (before it is carried out).
pub const CREATE: &str = "create";

/// Where a hold on one shipment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Armed: the next read is held.
    Armed,
    /// A read took the hold and waits for its release.
    Waiting,
    /// No hold.
    None,
}

#[derive(Debug)]
struct Hold {
    waiting: bool,
    release: Arc<Notify>,
}

/// The holds of one fulfiller, by shipment id.
#[derive(Debug, Default)]
pub struct Holds(Mutex<HashMap<String, Hold>>);

impl Holds {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Hold>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Arms a hold on the next read of `id` (an armed or waiting hold stays as it is).
    pub fn arm(&self, id: &str) -> HoldState {
        self.lock().entry(id.to_owned()).or_insert_with(|| Hold {
            waiting: false,
            release: Arc::new(Notify::new()),
        });
        self.state(id)
    }

    /// Where the hold on `id` stands.
    pub fn state(&self, id: &str) -> HoldState {
        match self.lock().get(id) {
            Some(h) if h.waiting => HoldState::Waiting,
            Some(_) => HoldState::Armed,
            None => HoldState::None,
        }
    }

    /// Releases a waiting read of `id`, or disarms the hold. Returns what it was.
    pub fn release(&self, id: &str) -> HoldState {
        let Some(h) = self.lock().remove(id) else {
            return HoldState::None;
        };
        // `notify_one` keeps a permit when the read has not started waiting yet.
        h.release.notify_one();
        if h.waiting {
            HoldState::Waiting
        } else {
            HoldState::Armed
        }
    }

    /// Called by a read of `id` once it has its answer: waits while a hold is armed.
    pub async fn pause(&self, id: &str) {
        let release = {
            let mut holds = self.lock();
            match holds.get_mut(id) {
                Some(h) if !h.waiting => {
                    h.waiting = true;
                    Some(h.release.clone())
                }
                _ => None,
            }
        };
        if let Some(r) = release {
            tracing::debug!(shipment = %id, "holding the answer until the test releases it");
            r.notified().await;
        }
    }
}
