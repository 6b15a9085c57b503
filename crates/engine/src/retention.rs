//! Retention (`retention_days`): the personal data of requests that ended (complete or
//! deleted) more than N days ago is removed, and the audit trail stays without it.
//!
//! Removed: the user's name or login (`user_label`), the PIN recipients
//! (`pin_contacts`, and the addresses in the record of PIN deliveries), the fulfiller
//! order with the recipient's name, e-mail, telephone and mailing address
//! (`create_body`), the carrier tracking link, the Okta login and the recipient and
//! address fields a CSV batch row gave an Okta-mode request, and every occurrence of
//! those values in the audit trail's notes and the last error.
//!
//! Kept: the request id, identity provider, state, timestamps, shipment id, the key's
//! serial and firmware, the audit trail's entries (their notes with the personal values
//! replaced by `[removed]`), and the identity provider's opaque user id (Okta mode's
//! reconciliation needs it to know who already had a key; it is no name or address).
//!
//! A PIN still held for resends is purged with the rest (no recipient is left to send
//! it to), as is the sealed response key.
//!
//! Each request is rewritten in its own transaction, guarded by its state and by
//! `personal_data_removed_at` still being unset, so a run is idempotent, safe to
//! interrupt, and safe beside other replicas doing the same.

use crate::store::{SqlStore, StoreError, add_history};
use sqlx::Row;

/// What replaces a removed value, in rows and in notes.
pub const REMOVED: &str = "[removed]";

/// The audit-trail note written when a request's personal data is removed.
pub const NOTE: &str = "personal data removed (retention_days)";

/// The shortest value replaced inside notes: shorter ones (a 2-letter country or
/// region code) identify nobody and would mangle unrelated words.
const MIN_REPLACED: usize = 4;

/// The address fields of the fulfiller's flat order shape.
const ADDRESS: &[&str] = &[
    "street_line1",
    "street_line2",
    "street_line3",
    "city",
    "region",
    "postal_code",
];

/// Removes the personal data of requests complete or deleted before `at - days` days.
/// `days == 0` keeps everything (returns 0). Returns how many requests were cleaned.
pub async fn apply(store: &SqlStore, days: u32, at: i64) -> Result<u64, StoreError> {
    if days == 0 {
        return Ok(0);
    }
    let before = at - i64::from(days) * 86_400;
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM requests WHERE state IN ('complete', 'deleted') AND updated_at < $1 \
         AND personal_data_removed_at IS NULL ORDER BY updated_at, id",
    )
    .bind(before)
    .fetch_all(store.pool())
    .await?;
    let mut n = 0;
    for id in ids {
        if remove_one(store, &id, before, at).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Removes one request's personal data if it is still due (in one transaction).
async fn remove_one(store: &SqlStore, id: &str, before: i64, at: i64) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let row = sqlx::query(
        "SELECT state, user_label, pin_contacts, create_body, tracking FROM requests \
         WHERE id = $1 AND state IN ('complete', 'deleted') AND updated_at < $2 \
         AND personal_data_removed_at IS NULL",
    )
    .bind(id)
    .bind(before)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        tx.rollback().await?;
        return Ok(false);
    };
    let state: String = row.try_get("state")?;
    let mut values = vec![row.try_get::<String, _>("user_label")?];
    let contacts: String = row.try_get("pin_contacts")?;
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&contacts) {
        strings(&v, &mut values);
    }
    let body: String = row.try_get("create_body")?;
    if let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(&body) {
        // The nested shape (`recipient`, `mailing_address`) and the flat one
        // (`recipient_*`, the address fields at the top).
        for (k, v) in &o {
            if k == "mailing_address" || k.starts_with("recipient") || ADDRESS.contains(&k.as_str())
            {
                strings(v, &mut values);
            }
        }
    }
    if let Some(t) = row.try_get::<Option<String>, _>("tracking")? {
        values.push(t);
    }
    let okta =
        sqlx::query("SELECT login, shipping_overrides FROM okta_requests WHERE request_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(o) = okta {
        values.push(o.try_get::<String, _>("login")?);
        if let Some(Ok(v)) = o
            .try_get::<Option<String>, _>("shipping_overrides")?
            .map(|s| serde_json::from_str::<serde_json::Value>(&s))
        {
            strings(&v, &mut values);
        }
    }
    let recipients: Vec<String> =
        sqlx::query_scalar("SELECT recipient FROM pin_deliveries WHERE request_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    values.extend(recipients.iter().cloned());
    // Longest first, so a value containing another is replaced whole.
    values.retain(|v| v.chars().count() >= MIN_REPLACED && v != REMOVED);
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    let scrub = |text: &str| {
        values
            .iter()
            .fold(text.to_owned(), |t, v| t.replace(v.as_str(), REMOVED))
    };

    let last: (Option<String>, Option<String>) = {
        let r = sqlx::query("SELECT last_error, fulfiller_message FROM requests WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        (r.try_get("last_error")?, r.try_get("fulfiller_message")?)
    };
    sqlx::query(
        "UPDATE requests SET user_label = $2, pin_contacts = '[]', create_body = '{}', \
         tracking = NULL, last_error = $3, fulfiller_message = $4, personal_data_removed_at = $5 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(REMOVED)
    .bind(last.0.as_deref().map(scrub))
    .bind(last.1.as_deref().map(scrub))
    .bind(at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE okta_requests SET login = $2, shipping_overrides = NULL WHERE request_id = $1",
    )
    .bind(id)
    .bind(REMOVED)
    .execute(&mut *tx)
    .await?;
    for (i, r) in recipients.iter().enumerate() {
        sqlx::query(
            "UPDATE pin_deliveries SET recipient = $3 WHERE request_id = $1 AND recipient = $2",
        )
        .bind(id)
        .bind(r)
        .bind(format!("{REMOVED} {}", i + 1))
        .execute(&mut *tx)
        .await?;
    }
    let notes = sqlx::query("SELECT seq, note FROM request_history WHERE request_id = $1")
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
    for r in notes {
        let seq: i64 = r.try_get("seq")?;
        let note: String = r.try_get("note")?;
        let clean = scrub(&note);
        if clean != note {
            sqlx::query("UPDATE request_history SET note = $2 WHERE seq = $1")
                .bind(seq)
                .bind(clean)
                .execute(&mut *tx)
                .await?;
        }
    }
    let jobs: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id, last_error FROM jobs WHERE request_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    for (job, err) in jobs {
        if let Some(e) = err {
            sqlx::query("UPDATE jobs SET last_error = $2 WHERE id = $1")
                .bind(job)
                .bind(scrub(&e))
                .execute(&mut *tx)
                .await?;
        }
    }
    // No recipient is left to resend a held PIN to: it goes too (as the data cleanup
    // purges it), and the sealed response key with it.
    sqlx::query("DELETE FROM sealed_secrets WHERE request_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE pin_holds SET held_until = NULL, purged_at = $2, purge_reason = 'cleanup' \
         WHERE request_id = $1 AND purged_at IS NULL",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    add_history(&mut tx, id, at, &state, NOTE).await?;
    tx.commit().await?;
    Ok(true)
}

/// Every string inside a JSON value.
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// When a request's personal data was removed, if it was.
pub async fn removed_at(store: &SqlStore, id: &str) -> Result<Option<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(personal_data_removed_at AS BIGINT) FROM requests WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?
    .flatten())
}
