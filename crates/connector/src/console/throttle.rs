//! Sign-in throttling: after `signin_max_failures` failed sign-ins for one user name
//! within `signin_lockout_minutes`, or four times as many from one client address, further
//! attempts are refused (429) without checking the password, until enough failures
//! have left the window.
//!
//! The failures live in the database (table `console_signin_failures`, next to the
//! sessions), so every connector process sharing the database counts the same ones. A
//! row holds only a SHA-256 of what it counts (the user name as typed, lower-cased, or
//! the client address), never the name itself (a password typed into the user field
//! must not sit in the database), and the time.
//!
//! An attempt is recorded *before* the password is checked, then counted: concurrent
//! guesses see each other's rows, so a burst cannot slip more guesses through than the
//! limit allows (it is refused instead). A refused attempt removes its rows again (it
//! does not extend the lock); a successful one removes its rows and resets the user
//! name's count.

use super::auth::{internal, random_token, sha256_b64};
use crate::app::AppState;
use axum::response::Response;
use sqlx::Row;
use std::net::IpAddr;

/// Addresses may fail this many times the per-user limit (several admins behind one
/// proxy or NAT, each mistyping now and then).
pub const ADDRESS_FACTOR: u32 = 4;

/// The table on SQLite (idempotent).
pub const TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS console_signin_failures (
    key_hash TEXT NOT NULL, attempt TEXT NOT NULL, at INTEGER NOT NULL)";

/// The table on PostgreSQL (idempotent).
pub const TABLE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS console_signin_failures (
    key_hash TEXT NOT NULL, attempt TEXT NOT NULL, at BIGINT NOT NULL)";

/// Its index, on both (idempotent).
pub const INDEX: &str = "CREATE INDEX IF NOT EXISTS console_signin_failures_key
    ON console_signin_failures (key_hash, at)";

/// When attempts are allowed again (Unix seconds), given the times of the earlier
/// failures counted under one key: `None` while fewer than `limit` of them are younger
/// than `window` seconds at `now`; otherwise the moment the oldest of the last `limit`
/// leaves the window.
pub fn blocked_until(failures: &[i64], now: i64, limit: u32, window: i64) -> Option<i64> {
    let mut recent: Vec<i64> = failures
        .iter()
        .copied()
        .filter(|t| *t > now - window)
        .collect();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX).max(1);
    if recent.len() < limit {
        return None;
    }
    recent.sort_unstable();
    Some(recent[recent.len() - limit] + window)
}

/// What is counted: a user name and/or a client address, each with its limit.
struct Key {
    hash: String,
    limit: u32,
    user: bool,
}

/// Why an attempt is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// When to try again (Unix seconds).
    pub until: i64,
    /// `true`: the user name's failures; `false`: the client address's.
    pub user: bool,
}

/// A sign-in attempt in progress, already counted as a failure until
/// [`Attempt::succeeded`].
pub struct Attempt {
    id: String,
    keys: Vec<Key>,
}

fn user_key(user: &str) -> String {
    sha256_b64(&[
        b"prereg console sign-in user\0",
        user.trim().to_lowercase().as_bytes(),
    ])
}

fn address_key(addr: IpAddr) -> String {
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; count it as a.b.c.d.
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    sha256_b64(&[
        b"prereg console sign-in address\0",
        addr.to_string().as_bytes(),
    ])
}

fn db(e: sqlx::Error) -> Response {
    internal(&format!("database: {e}"))
}

impl Attempt {
    /// Records an attempt for `user` (local sign-in; `None` for OIDC, where the identity
    /// provider checks the password) from `addr` (when known), and counts the earlier
    /// failures. `Ok(Err(_))`: refused, nothing is left recorded.
    pub async fn begin(
        s: &AppState,
        user: Option<&str>,
        addr: Option<IpAddr>,
    ) -> Result<Result<Self, Refused>, Response> {
        let Some(c) = s.config.console.as_ref() else {
            return Err(internal("sign-in throttling without a [console] section"));
        };
        let (max, window) = (c.signin_max_failures, c.lockout_seconds());
        let mut keys = Vec::new();
        if let Some(u) = user {
            keys.push(Key {
                hash: user_key(u),
                limit: max,
                user: true,
            });
        }
        if let Some(a) = addr {
            keys.push(Key {
                hash: address_key(a),
                limit: max.saturating_mul(ADDRESS_FACTOR),
                user: false,
            });
        }
        let attempt = Self {
            id: random_token()?,
            keys,
        };
        let pool = s.store.pool();
        let now = crate::store::now();
        // Old failures go whenever anyone tries.
        sqlx::query("DELETE FROM console_signin_failures WHERE at <= $1")
            .bind(now - window)
            .execute(pool)
            .await
            .map_err(db)?;
        for k in &attempt.keys {
            sqlx::query(
                "INSERT INTO console_signin_failures (key_hash, attempt, at) VALUES ($1, $2, $3)",
            )
            .bind(&k.hash)
            .bind(&attempt.id)
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?;
        }
        let mut refused: Option<Refused> = None;
        for k in &attempt.keys {
            let rows = sqlx::query(
                "SELECT at FROM console_signin_failures WHERE key_hash = $1 AND attempt <> $2 AND at > $3",
            )
            .bind(&k.hash)
            .bind(&attempt.id)
            .bind(now - window)
            .fetch_all(pool)
            .await
            .map_err(db)?;
            let times = rows
                .iter()
                .map(|r| r.try_get::<i64, _>("at"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(db)?;
            if let Some(until) = blocked_until(&times, now, k.limit, window)
                && refused.as_ref().is_none_or(|r| until > r.until)
            {
                refused = Some(Refused {
                    until,
                    user: k.user,
                });
            }
        }
        match refused {
            Some(r) => {
                attempt.forget(s).await?;
                Ok(Err(r))
            }
            None => Ok(Ok(attempt)),
        }
    }

    /// The password was right (or the identity provider's sign-in finished): this
    /// attempt's rows go, and so do the user name's earlier failures.
    pub async fn succeeded(self, s: &AppState) -> Result<(), Response> {
        for k in self.keys.iter().filter(|k| k.user) {
            sqlx::query("DELETE FROM console_signin_failures WHERE key_hash = $1")
                .bind(&k.hash)
                .execute(s.store.pool())
                .await
                .map_err(db)?;
        }
        self.forget(s).await
    }

    /// Removes this attempt's rows.
    async fn forget(&self, s: &AppState) -> Result<(), Response> {
        sqlx::query("DELETE FROM console_signin_failures WHERE attempt = $1")
            .bind(&self.id)
            .execute(s.store.pool())
            .await
            .map_err(db)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WINDOW: i64 = 15 * 60;

    #[test]
    fn five_failures_within_the_window_block_until_the_oldest_leaves_it() {
        let now = 10_000;
        let four = [now - 800, now - 600, now - 400, now - 10];
        assert_eq!(blocked_until(&four, now, 5, WINDOW), None);
        let five = [now - 800, now - 600, now - 400, now - 10, now - 1];
        assert_eq!(
            blocked_until(&five, now, 5, WINDOW),
            Some(now - 800 + WINDOW)
        );
        // At that moment the oldest is out of the window: allowed again.
        assert_eq!(blocked_until(&five, now - 800 + WINDOW, 5, WINDOW), None);
        // Failures older than the window do not count.
        let old = [now - WINDOW, now - 2000, now - 600, now - 400, now - 10];
        assert_eq!(blocked_until(&old, now, 5, WINDOW), None);
    }

    #[test]
    fn with_more_failures_than_the_limit_the_wait_is_until_enough_have_left() {
        let now = 10_000;
        let seven = [
            now - 10,
            now - 900,
            now - 20,
            now - 800,
            now - 30,
            now - 700,
            now - 40,
        ];
        // Sorted: -900 -800 -700 -40 -30 -20 -10; five must remain: the third oldest.
        assert_eq!(
            blocked_until(&seven, now, 5, WINDOW),
            Some(now - 700 + WINDOW)
        );
    }

    #[test]
    fn an_ipv4_client_counts_the_same_on_a_dual_stack_socket() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), address_key(mapped));
        assert_ne!(user_key("Admin "), address_key(v4));
        assert_eq!(user_key("Admin "), user_key("admin"));
    }
}
