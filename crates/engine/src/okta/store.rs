//! Okta mode's own tables: what a request needs beyond the shared `requests` row, the
//! one-open-request-per-user lock, and the event ids already handled.
//!
//! - `okta_requests`: per request, the Okta user, the order line (product, inventory,
//!   customization), what started it, the enrollment ids Okta returned, whether the
//!   factor was activated, and whether the next retry must start over.
//! - `okta_open_users`: one row per user with a request that is not finished
//!   (`complete` or `deleted`); its primary key makes "one pre-registered request at a
//!   time per user" hold across workers and processes.
//! - `okta_events`: event ids (the System Log `uuid`) already handled, so a redelivered
//!   event is ignored.

use crate::store::{RequestRow, SqlStore, StoreError};
use sqlx::{AnyPool, Row};

/// Okta mode's part of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaRequest {
    /// The shared request's id.
    pub request_id: String,
    /// Okta user id (`00u...`).
    pub okta_user_id: String,
    /// The user's login.
    pub login: String,
    /// The mapped group that ordered it, if a group did.
    pub group_id: Option<String>,
    /// Fulfiller product id.
    pub product_id: i64,
    /// Fulfiller inventory product id.
    pub inventory_product_id: i64,
    /// Fulfiller customization id.
    pub customization_id: String,
    /// What started it: `group_add`, `mfa_initiated`, `batch`, `reconcile`.
    pub source: String,
    /// The enrollment (factor) ids Okta returned, once enrolled.
    pub enrollment_ids: Vec<String>,
    /// Okta activated the factor.
    pub activated: bool,
    /// The next retry starts over (new enrollment, new shipment).
    pub restart: bool,
    /// Recipient and address fields given with the order (a CSV batch row), by the
    /// fulfiller's field name (`street_line1`, `recipient_telephone`, ...): they win over
    /// the Okta profile and the HR file.
    pub shipping_overrides: std::collections::BTreeMap<String, String>,
    /// What a credential request (API v2) adds to the key (default: nothing).
    pub key: KeyOptions,
}

/// What a credential request (API v2, [`crate::credreq`]) adds to an Okta-mode key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// The key's slot in the user's open-request lock: `None` is the user's one lock (a
    /// trigger for a user with this key open orders nothing); a second key of the same
    /// order (a backup) takes its label's slot.
    pub slot: Option<String>,
    /// The relying parties to enroll for (empty: `okta.rp_ids`).
    pub rp_ids: Vec<String>,
    /// The key is registered at Entra too, for this user (object id).
    pub entra_user_id: Option<String>,
    /// Graph has registered that credential.
    pub entra_registered: bool,
}

/// The name under which `okta_user_id` holds its open-request lock for a key in `slot`.
pub fn lock_name(okta_user_id: &str, slot: Option<&str>) -> String {
    match slot {
        None => okta_user_id.to_owned(),
        Some(s) => format!("{okta_user_id}#{s}"),
    }
}

fn row(r: &sqlx::any::AnyRow) -> Result<OktaRequest, StoreError> {
    let ids: Option<String> = r.try_get("enrollment_ids")?;
    let activated: i64 = r.try_get("activated")?;
    let restart: i64 = r.try_get("restart")?;
    let entra_registered: i64 = r.try_get("entra_registered")?;
    Ok(OktaRequest {
        request_id: r.try_get("request_id")?,
        okta_user_id: r.try_get("okta_user_id")?,
        login: r.try_get("login")?,
        group_id: r.try_get("group_id")?,
        product_id: r.try_get("product_id")?,
        inventory_product_id: r.try_get("inventory_product_id")?,
        customization_id: r.try_get("customization_id")?,
        source: r.try_get("source")?,
        enrollment_ids: ids
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        activated: activated != 0,
        restart: restart != 0,
        shipping_overrides: r
            .try_get::<Option<String>, _>("shipping_overrides")?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        key: KeyOptions {
            slot: r.try_get("lock_slot")?,
            rp_ids: r
                .try_get::<Option<String>, _>("rp_ids")?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default(),
            entra_user_id: r.try_get("entra_user_id")?,
            entra_registered: entra_registered != 0,
        },
    })
}

const COLS: &str = "request_id, okta_user_id, login, group_id, CAST(product_id AS BIGINT) AS product_id, \
    CAST(inventory_product_id AS BIGINT) AS inventory_product_id, customization_id, source, enrollment_ids, \
    CAST(activated AS BIGINT) AS activated, CAST(restart AS BIGINT) AS restart, shipping_overrides, \
    lock_slot, rp_ids, entra_user_id, CAST(entra_registered AS BIGINT) AS entra_registered";

/// Reads Okta mode's part of a request.
pub async fn get(pool: &AnyPool, request_id: &str) -> Result<Option<OktaRequest>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM okta_requests WHERE request_id = $1"
    )))
    .bind(request_id)
    .fetch_optional(pool)
    .await?;
    r.as_ref().map(row).transpose()
}

/// Writes the mutable parts (enrollment ids, activated, restart, the Entra credential
/// registered).
pub async fn update(pool: &AnyPool, o: &OktaRequest) -> Result<(), StoreError> {
    let ids = (!o.enrollment_ids.is_empty())
        .then(|| serde_json::Value::from(o.enrollment_ids.clone()).to_string());
    sqlx::query(
        "UPDATE okta_requests SET enrollment_ids = $2, activated = $3, restart = $4, entra_registered = $5 \
         WHERE request_id = $1",
    )
    .bind(&o.request_id)
    .bind(ids)
    .bind(i64::from(o.activated))
    .bind(i64::from(o.restart))
    .bind(i64::from(o.key.entra_registered))
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets the shared row's create body (the fulfiller order with the sealed requests).
pub async fn set_create_body(
    pool: &AnyPool,
    request_id: &str,
    body: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE requests SET create_body = $2 WHERE id = $1")
        .bind(request_id)
        .bind(body)
        .execute(pool)
        .await?;
    Ok(())
}

/// Takes the user's open-request lock for `request_id` (a request already recorded).
/// `Ok(None)`: taken; `Ok(Some(id))`: the user already has open request `id`.
pub async fn lock_user(
    pool: &AnyPool,
    okta_user_id: &str,
    request_id: &str,
) -> Result<Option<String>, StoreError> {
    let mut conn = pool.acquire().await?;
    lock_with(&mut conn, okta_user_id, request_id).await
}

/// [`lock_user`] on one connection (a transaction's, so that a new request and its lock
/// are written together). A lock row is only ever written with its request, or for a
/// request already recorded, so a lock whose request is missing, finished or withdrawn
/// is stale at once. (Earlier the lock was taken before the request was written, and a
/// crash in between left a lock naming no request that kept the user out for two
/// minutes: a trigger repeated meanwhile was answered "already open" for a request that
/// never existed, and the person got no key. Found by `prereg chaos`.)
async fn lock_with(
    conn: &mut sqlx::AnyConnection,
    okta_user_id: &str,
    request_id: &str,
) -> Result<Option<String>, StoreError> {
    for _ in 0..3 {
        let inserted = sqlx::query(
            "INSERT INTO okta_open_users (okta_user_id, request_id, locked_at) VALUES ($1, $2, $3) ON CONFLICT (okta_user_id) DO NOTHING",
        )
        .bind(okta_user_id)
        .bind(request_id)
        .bind(crate::store::now())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        let held = sqlx::query("SELECT request_id FROM okta_open_users WHERE okta_user_id = $1")
            .bind(okta_user_id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(held) = held else { continue };
        let holder: String = held.try_get("request_id")?;
        if holder == request_id {
            return Ok(None);
        }
        let state: Option<String> = sqlx::query("SELECT state FROM requests WHERE id = $1")
            .bind(&holder)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get("state"))
            .transpose()?;
        if matches!(state.as_deref(), Some(s) if s != "complete" && s != "deleted") {
            return Ok(Some(holder));
        }
        sqlx::query("DELETE FROM okta_open_users WHERE okta_user_id = $1 AND request_id = $2")
            .bind(okta_user_id)
            .bind(&holder)
            .execute(&mut *conn)
            .await?;
    }
    Err(StoreError::from(sqlx::Error::Protocol(
        "the user's open-request lock keeps changing".into(),
    )))
}

/// Records the Okta id and login of a request's user, read by its job (the request was
/// recorded while Okta did not answer, under the name it was given). Its lock under
/// that name stays until the request ends (it keeps a second start for the same name
/// out too).
pub async fn resolve_user(
    store: &SqlStore,
    request_id: &str,
    okta_user_id: &str,
    login: &str,
) -> Result<(), StoreError> {
    let mut tx = store.begin_write().await?;
    sqlx::query("UPDATE okta_requests SET okta_user_id = $2, login = $3 WHERE request_id = $1")
        .bind(request_id)
        .bind(okta_user_id)
        .bind(login)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE requests SET user_id = $2, user_label = $3 WHERE id = $1")
        .bind(request_id)
        .bind(okta_user_id)
        .bind(login)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Releases the user's lock if `request_id` holds it.
pub async fn unlock_user(pool: &AnyPool, request_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM okta_open_users WHERE request_id = $1")
        .bind(request_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records a new Okta-mode request in one transaction: the user's open-request lock,
/// the caller's idempotency key (`(client, key)`, when given), the shared `requests`
/// row (state `creating`, `idp = 'okta'`), Okta mode's part, the first audit-trail entry
/// (`note`: which trigger, which group or batch) and the request's job, due at once.
/// Either all of it is written or nothing is: a crash or a failed insert leaves neither
/// a half-made request whose job could order a key nor a lock naming no request.
/// `Ok(Some(id))`: the user already has open request `id`; nothing was written.
pub async fn insert_request(
    store: &SqlStore,
    row: &RequestRow,
    part: &OktaRequest,
    note: &str,
    idempotency: Option<(&str, &str)>,
) -> Result<Option<String>, StoreError> {
    let mut tx = store.begin_write().await?;
    let lock = lock_name(&part.okta_user_id, part.key.slot.as_deref());
    if let Some(holder) = lock_with(&mut tx, &lock, &row.id).await? {
        tx.rollback().await?;
        return Ok(Some(holder));
    }
    if let Some((client, key)) = idempotency {
        sqlx::query("INSERT INTO idempotency_keys (client, key, request_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(client)
            .bind(key)
            .bind(&row.id)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
    }
    crate::store::add_request(&mut tx, row).await?;
    sqlx::query(
        "INSERT INTO okta_requests (request_id, okta_user_id, login, group_id, product_id, \
         inventory_product_id, customization_id, source, enrollment_ids, activated, restart, created_at, \
         shipping_overrides, lock_slot, rp_ids, entra_user_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0, 0, $9, $10, $11, $12, $13)",
    )
    .bind(&part.request_id)
    .bind(&part.okta_user_id)
    .bind(&part.login)
    .bind(&part.group_id)
    .bind(part.product_id)
    .bind(part.inventory_product_id)
    .bind(&part.customization_id)
    .bind(&part.source)
    .bind(row.created_at)
    .bind((!part.shipping_overrides.is_empty()).then(|| {
        serde_json::Value::Object(
            part.shipping_overrides
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
                .collect(),
        )
        .to_string()
    }))
    .bind(&part.key.slot)
    .bind((!part.key.rp_ids.is_empty()).then(|| serde_json::Value::from(part.key.rp_ids.clone()).to_string()))
    .bind(&part.key.entra_user_id)
    .execute(&mut *tx)
    .await?;
    crate::store::add_history(&mut tx, &row.id, row.created_at, row.state.as_str(), note).await?;
    crate::store::add_job(&mut tx, &row.id, row.created_at, None).await?;
    tx.commit().await?;
    Ok(None)
}

/// Records what Okta `enroll` returned, in one transaction: the order to send the
/// fulfiller (`create_body`, with Okta's sealed PIN and credential requests), the
/// enrollment ids and an audit-trail entry. The request's state is not touched (an
/// admin may have cancelled it while Okta answered: the enrollment is recorded all the
/// same, so the cancel can delete it); the state read under the same write lock is
/// returned.
pub async fn record_enrollment(
    store: &SqlStore,
    request_id: &str,
    create_body: &str,
    enrollment_ids: &[String],
    note: &str,
) -> Result<String, StoreError> {
    let mut tx = store.begin_write().await?;
    let t = crate::store::now();
    // The UPDATE first: on PostgreSQL it locks the row, so the state read next cannot
    // change before the commit (SQLite's immediate transaction holds the write lock).
    sqlx::query(
        "UPDATE requests SET create_body = $2, last_error = NULL, updated_at = $3 WHERE id = $1",
    )
    .bind(request_id)
    .bind(create_body)
    .bind(t)
    .execute(&mut *tx)
    .await?;
    let state: String = sqlx::query("SELECT state FROM requests WHERE id = $1")
        .bind(request_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("state")?;
    sqlx::query("UPDATE okta_requests SET enrollment_ids = $2 WHERE request_id = $1")
        .bind(request_id)
        .bind(serde_json::Value::from(enrollment_ids.to_vec()).to_string())
        .execute(&mut *tx)
        .await?;
    crate::store::add_history(&mut tx, request_id, t, &state, note).await?;
    tx.commit().await?;
    Ok(state)
}

/// Whether the user has any Okta-mode request that was not deleted (reconciliation
/// orders only for members who never had one).
pub async fn user_has_request(pool: &AnyPool, okta_user_id: &str) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM okta_requests o JOIN requests r ON r.id = o.request_id \
         WHERE o.okta_user_id = $1 AND r.state <> 'deleted'",
    )
    .bind(okta_user_id)
    .fetch_one(pool)
    .await?
    .try_get("n")?;
    Ok(n > 0)
}

/// Records an event id; `false` when it was seen before.
pub async fn first_sight(pool: &AnyPool, event_id: &str, at: i64) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "INSERT INTO okta_events (event_id, received_at) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(at)
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Whether an event id was already acted on (see [`first_sight`]).
pub async fn event_seen(pool: &AnyPool, event_id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT 1 FROM okta_events WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(pool)
        .await?
        .is_some())
}

/// Forgets an event id (its handling failed, so a redelivery should be handled).
pub async fn forget_event(pool: &AnyPool, event_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM okta_events WHERE event_id = $1")
        .bind(event_id)
        .execute(pool)
        .await?;
    Ok(())
}
