//! Master-key rotation (`prereg secrets rotate`): every sealed value in the database is
//! re-sealed with the current master key ([`crate::secrets`]).
//!
//! Each value is rewritten on its own with a compare-and-set on the sealed bytes read
//! (a value changed or deleted meanwhile, by a worker sealing a PIN or the cleanup, is
//! left to its writer, who sealed it with the current key already). A run can be
//! interrupted at any point and run again: what is already under the current key is
//! skipped.

use crate::secrets::{MasterKey, Purpose};
use crate::store::{SqlStore, StoreError};

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rotation {
    /// The current key's id: every re-sealed value carries it.
    pub key_id: String,
    /// Values re-sealed with the current key.
    pub resealed: u64,
    /// Values already under the current key.
    pub current: u64,
    /// Values changed or removed by someone else meanwhile (left to them).
    pub skipped: u64,
    /// Values that did not open: `request id/purpose: why` (the why names key ids,
    /// never a secret).
    pub failed: Vec<String>,
}

/// Re-seals every sealed value not yet under the current key of `keys`.
pub async fn rotate(store: &SqlStore, keys: &MasterKey) -> Result<Rotation, StoreError> {
    let mut out = Rotation {
        key_id: keys.key_id(),
        ..Rotation::default()
    };
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT request_id, purpose FROM sealed_secrets ORDER BY request_id, purpose",
    )
    .fetch_all(store.pool())
    .await?;
    for (id, purpose_name) in rows {
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT sealed FROM sealed_secrets WHERE request_id = $1 AND purpose = $2",
        )
        .bind(&id)
        .bind(&purpose_name)
        .fetch_optional(store.pool())
        .await?;
        let Some(sealed) = sealed else {
            out.skipped += 1;
            continue;
        };
        if keys.is_current(&sealed) {
            out.current += 1;
            continue;
        }
        let Some(purpose) = Purpose::parse(&purpose_name) else {
            out.failed
                .push(format!("{id}/{purpose_name}: unknown purpose"));
            continue;
        };
        let fresh = match keys
            .open(&id, purpose, &sealed)
            .and_then(|plain| keys.seal(&id, purpose, &plain))
        {
            Ok(f) => f,
            Err(e) => {
                out.failed.push(format!("{id}/{purpose_name}: {e}"));
                continue;
            }
        };
        let n = sqlx::query(
            "UPDATE sealed_secrets SET sealed = $4 WHERE request_id = $1 AND purpose = $2 \
             AND sealed = $3",
        )
        .bind(&id)
        .bind(&purpose_name)
        .bind(sealed)
        .bind(fresh)
        .execute(store.pool())
        .await?
        .rows_affected();
        if n == 1 {
            out.resealed += 1;
        } else {
            out.skipped += 1;
        }
    }
    Ok(out)
}

/// How many sealed values are not under the current key (0 after a complete rotation:
/// the old keys can go).
pub async fn not_current(store: &SqlStore, keys: &MasterKey) -> Result<u64, StoreError> {
    let all: Vec<Vec<u8>> = sqlx::query_scalar("SELECT sealed FROM sealed_secrets")
        .fetch_all(store.pool())
        .await?;
    Ok(all.iter().filter(|s| !keys.is_current(s)).count() as u64)
}
