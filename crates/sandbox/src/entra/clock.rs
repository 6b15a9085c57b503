//! The Entra sandbox's clock: wall time plus an offset that only moves forward
//! (`POST /sandbox/v1/clock/advance`), so tests expire challenges without waiting.
//!
//! It rules what WebAuthn challenges and `createdDateTime` see. Access tokens keep wall
//! time, because the connector validates the test client's tokens against its own
//! clock; expire them with `POST /sandbox/v1/tokens/revoke` instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicU64>,
}

impl Clock {
    /// Seconds since the epoch, as the sandbox sees them.
    pub fn now(&self) -> u64 {
        crate::time::now().saturating_add(self.offset.load(Ordering::SeqCst))
    }

    /// Moves the clock forward.
    pub fn advance(&self, secs: u64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// How far ahead of wall time the clock runs.
    pub fn offset(&self) -> u64 {
        self.offset.load(Ordering::SeqCst)
    }
}
