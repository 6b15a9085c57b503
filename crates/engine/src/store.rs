//! Durable state: requests, their state history (audit trail), jobs, sealed secrets and
//! idempotency keys, in SQLite (default) or PostgreSQL.
//!
//! One [`Store`] trait; [`SqlStore`] implements it for both backends through sqlx's
//! `Any` driver with runtime-checked queries (no `DATABASE_URL` at build time). The SQL
//! is shared except for the schema's types and the job claim: PostgreSQL claims with
//! `FOR UPDATE SKIP LOCKED`, SQLite with one `UPDATE ... RETURNING` (SQLite serializes
//! writers). A claimed job carries a lease: a worker that dies leaves the lease to
//! expire, and the job is claimed again.

use crate::domain::{Idp, RequestState, Transition};
use crate::secrets::Purpose;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Row};
use std::time::Duration;

/// SQL built only from this module's constants (table names, column lists, the lock
/// clause), never from input: values are always bound parameters.
macro_rules! sql {
    ($($t:tt)*) => {
        sqlx::AssertSqlSafe(format!($($t)*))
    };
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A store error. The message never carries secrets (secrets are bound as parameters).
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct StoreError(String);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.to_string())
    }
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (WAL).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// One tracked request.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RequestRow {
    /// The connector's id (UUID).
    pub id: String,
    /// Which identity provider the request belongs to.
    #[sqlx(try_from = "String")]
    pub idp: Idp,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub state: RequestState,
    /// Entra object id.
    pub user_id: String,
    /// The user's UPN or display name, for messages.
    pub user_label: String,
    /// JSON array of e-mail addresses that receive the PIN.
    pub pin_contacts: String,
    /// The fulfiller create body (JSON; holds only sealed requests).
    pub create_body: String,
    /// The fulfiller's shipment id once known.
    pub shipment_id: Option<String>,
    /// The fulfiller's last state id.
    pub fulfiller_state: Option<i64>,
    /// Its text.
    pub fulfiller_message: Option<String>,
    /// The key's serial once shipped.
    pub serial: Option<String>,
    /// Its firmware.
    pub firmware: Option<String>,
    /// Carrier tracking link.
    pub tracking: Option<String>,
    /// What went wrong last, for the admin.
    pub last_error: Option<String>,
    /// Created, seconds.
    pub created_at: i64,
    /// Updated, seconds.
    pub updated_at: i64,
}

/// One entry of a request's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct HistoryRow {
    /// When, seconds.
    pub at: i64,
    /// The state entered.
    pub state: String,
    /// Why.
    pub note: String,
}

/// A claimed job: only the holder of its lease (`lease`) may renew, release or finish
/// it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// The request it processes.
    pub request_id: String,
    /// How many times it was claimed.
    pub attempts: i64,
    /// Consecutive transient failures so far (reset when a run makes progress).
    pub retries: i64,
    /// This holder's lease id.
    #[sqlx(rename = "lease_id")]
    pub lease: String,
}

/// How a job is given back ([`Store::release`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Waiting for the outside world (the fulfiller to ship): a cron tick or "process
    /// now" makes it due early.
    Wait,
    /// A transient failure: it waits out its backoff (a tick does not shorten it), and
    /// counts toward the attempt cap.
    Backoff,
}

/// A page of requests.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this state.
    pub state: Option<String>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only this identity provider (`entra`, `okta`).
    pub idp: Option<String>,
    /// Page size (1..=100).
    pub limit: i64,
    /// Skip.
    pub offset: i64,
}

/// What the connector keeps, whatever the database.
#[allow(async_fn_in_trait)]
pub trait Store: Send + Sync {
    /// Records a new request in state `creating` with its sealed response key and its
    /// job, all in one transaction; with an idempotency key, refuses a duplicate. The
    /// job is leased to the caller for `lease` (the caller creates the shipment now;
    /// nobody else may meanwhile) and returned; it is due as soon as it is released or
    /// its lease runs out.
    async fn insert_request(
        &self,
        row: &RequestRow,
        sealed_response_key: &[u8],
        idempotency: Option<(&str, &str)>,
        lease: Duration,
    ) -> Result<Job, StoreError>;
    /// The request a client's idempotency key already created, if any.
    async fn idempotent_request(
        &self,
        client: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Reads one request.
    async fn get_request(&self, id: &str) -> Result<Option<RequestRow>, StoreError>;
    /// Finds the request that owns a fulfiller shipment id.
    async fn by_shipment(&self, shipment_id: &str) -> Result<Option<RequestRow>, StoreError>;
    /// Lists requests, newest first.
    async fn list_requests(&self, f: &ListFilter) -> Result<(Vec<RequestRow>, i64), StoreError>;
    /// Writes a request's mutable fields and appends a history entry when the state
    /// changes.
    async fn update_request(&self, row: &RequestRow, note: &str) -> Result<(), StoreError>;
    /// [`Store::update_request`] only if the stored state is still `expected` (a
    /// compare-and-set, for transitions that race: the worker recording a shipment, an
    /// admin's cancel). Returns whether it applied; the history entry is written only
    /// then.
    async fn update_request_if(
        &self,
        row: &RequestRow,
        expected: RequestState,
        note: &str,
    ) -> Result<bool, StoreError>;
    /// Writes a [`Transition`] (a compare-and-set on the state it was read in): whether
    /// it applied.
    async fn apply(&self, t: &Transition, note: &str) -> Result<bool, StoreError> {
        self.update_request_if(&t.row, t.from, note).await
    }
    /// Removes a request that the fulfiller refused at creation (nothing stays written).
    async fn forget_request(&self, id: &str) -> Result<(), StoreError>;
    /// The audit trail, oldest first.
    async fn history(&self, id: &str) -> Result<Vec<HistoryRow>, StoreError>;
    /// Stores (or replaces) a sealed secret.
    async fn put_secret(&self, id: &str, purpose: Purpose, sealed: &[u8])
    -> Result<(), StoreError>;
    /// Reads a sealed secret.
    async fn get_secret(&self, id: &str, purpose: Purpose) -> Result<Option<Vec<u8>>, StoreError>;
    /// Destroys a sealed secret.
    async fn delete_secret(&self, id: &str, purpose: Purpose) -> Result<(), StoreError>;
    /// Ensures a request has a job, due at `run_at`, with no backoff and no retries
    /// counted (an admin's retry, a resend). A lease held on it stays.
    async fn schedule(&self, request_id: &str, run_at: i64) -> Result<(), StoreError>;
    /// Makes due now every job that is waiting for the outside world; with
    /// `with_backoff`, also those waiting out a retry backoff. The cron tick leaves
    /// backoffs alone; an admin's "process now" asks for everything.
    async fn make_due(&self, with_backoff: bool) -> Result<u64, StoreError>;
    /// The cron tick's part when it looked at the fulfiller's list itself: makes due
    /// every waiting job (not a backoff) except those of requests in `open` (waiting
    /// for the fulfiller), and of those only the requests in `open_due`.
    async fn make_due_seen(&self, open_due: &[String]) -> Result<u64, StoreError>;
    /// The requests in `open` whose job waits (not a backoff, not leased): (request
    /// id, shipment id).
    async fn waiting_for_fulfiller(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Renews the lease of a job its holder still holds: whether it does.
    async fn heartbeat(&self, job: &Job, lease: Duration) -> Result<bool, StoreError>;
    /// Claims one due job whose lease is free, leasing it for `lease`.
    async fn claim(&self, lease: Duration) -> Result<Option<Job>, StoreError> {
        self.claim_as_of(now(), lease).await
    }
    /// [`Store::claim`] as if the clock read `at` (tests of lease expiry).
    async fn claim_as_of(&self, at: i64, lease: Duration) -> Result<Option<Job>, StoreError>;
    /// Gives a job back to run again at `run_at`, only while `job`'s holder still holds
    /// it (whether it did).
    async fn release(
        &self,
        job: &Job,
        run_at: i64,
        error: Option<&str>,
        how: Release,
    ) -> Result<bool, StoreError>;
    /// Deletes a finished job, only while `job`'s holder still holds it (whether it
    /// did).
    async fn finish(&self, job: &Job) -> Result<bool, StoreError>;
    /// Deletes every secret of requests completed (or deleted) before `before`.
    async fn purge_completed(&self, before: i64) -> Result<u64, StoreError>;
}

/// The SQL store for both backends.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: one writer at a time, queued here in arrival order (see [`SqlStore::gate`]).
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction ([`SqlStore::begin_write`]): the connection (`&mut *tx` runs a
/// query on it) and, on SQLite, the writers' turn, held until it commits or is dropped.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// The schema, one folder of versioned migrations per dialect
/// (`crates/engine/migrations/`). On PostgreSQL sqlx runs them under an advisory lock,
/// so replicas starting together do not race.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const COLUMNS: &str = "id, idp, state, user_id, user_label, pin_contacts, create_body, shipment_id, \
    fulfiller_state, fulfiller_message, serial, firmware, tracking, last_error, created_at, updated_at";

/// Inserts a new request row, inside the caller's transaction.
pub(crate) async fn add_request(
    tx: &mut sqlx::AnyConnection,
    row: &RequestRow,
) -> Result<(), StoreError> {
    sqlx::query(sql!(
        "INSERT INTO requests ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)"
    ))
    .bind(&row.id)
    .bind(row.idp.as_str())
    .bind(row.state.as_str())
    .bind(&row.user_id)
    .bind(&row.user_label)
    .bind(&row.pin_contacts)
    .bind(&row.create_body)
    .bind(&row.shipment_id)
    .bind(row.fulfiller_state)
    .bind(&row.fulfiller_message)
    .bind(&row.serial)
    .bind(&row.firmware)
    .bind(&row.tracking)
    .bind(&row.last_error)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Writes a request's mutable fields at time `t`; with `expected`, only while its stored
/// state is still that (a compare-and-set). Whether a row was written.
async fn write_row(
    tx: &mut sqlx::AnyConnection,
    row: &RequestRow,
    t: i64,
    expected: Option<RequestState>,
) -> Result<bool, StoreError> {
    // One conditional UPDATE: on PostgreSQL a concurrent writer of the row makes it wait
    // and then re-check `state` against the committed row; SQLite serializes writers
    // (the transaction is immediate).
    let condition = if expected.is_some() {
        " AND state=$12"
    } else {
        ""
    };
    let q = sqlx::query(sql!(
        "UPDATE requests SET state=$2, shipment_id=$3, fulfiller_state=$4, fulfiller_message=$5, \
         serial=$6, firmware=$7, tracking=$8, last_error=$9, updated_at=$10, user_label=$11 \
         WHERE id=$1{condition}"
    ))
    .bind(&row.id)
    .bind(row.state.as_str())
    .bind(&row.shipment_id)
    .bind(row.fulfiller_state)
    .bind(&row.fulfiller_message)
    .bind(&row.serial)
    .bind(&row.firmware)
    .bind(&row.tracking)
    .bind(&row.last_error)
    .bind(t)
    .bind(&row.user_label);
    let q = match expected {
        Some(state) => q.bind(state.as_str()),
        None => q,
    };
    Ok(q.execute(&mut *tx).await?.rows_affected() > 0)
}

/// Appends an audit-trail entry, inside the caller's transaction.
pub async fn add_history(
    tx: &mut sqlx::AnyConnection,
    request_id: &str,
    at: i64,
    state: &str,
    note: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO request_history (request_id, at, state, note) VALUES ($1, $2, $3, $4)",
    )
    .bind(request_id)
    .bind(at)
    .bind(state)
    .bind(note)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Gives a new request its job, due at `run_at`, inside the caller's transaction; with
/// `lease` (id, until), already leased to the caller.
pub(crate) async fn add_job(
    tx: &mut sqlx::AnyConnection,
    request_id: &str,
    run_at: i64,
    lease: Option<(&str, i64)>,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO jobs (id, request_id, run_at, attempts, lease_id, locked_until, backoff, retries) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, 0)",
    )
    .bind(&id)
    .bind(request_id)
    .bind(run_at)
    .bind(i64::from(lease.is_some()))
    .bind(lease.map(|l| l.0))
    .bind(lease.map(|l| l.1))
    .execute(&mut *tx)
    .await?;
    Ok(id)
}

fn until(t: i64, lease: Duration) -> i64 {
    t + i64::try_from(lease.as_secs()).unwrap_or(i64::MAX / 2)
}

/// How often the WAL is checkpointed on SQLite.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// SQLite: copies the WAL's pages into the database every second, on a connection of its
/// own and without a writer's turn (a passive checkpoint waits for nobody and nobody
/// waits for it). SQLite's automatic checkpoint (every 1000 pages) is off: it ran inside
/// the commit that crossed the mark while that writer held its turn, and every writer
/// behind it waited (a stall of 100-230 ms every ~400 orders, docs/bench.md). Ends
/// within a second of the store's last clone being dropped (`alive`).
async fn checkpoints(pool: AnyPool, alive: std::sync::Weak<tokio::sync::Mutex<()>>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        every.tick().await;
        if alive.strong_count() == 0 {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "WAL checkpoint failed; the next one tries again");
        }
    }
}

impl SqlStore {
    /// Connects and runs the migrations. `sqlite://path` creates the file (WAL mode).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_sized(url, 8).await
    }

    /// [`SqlStore::connect`] with a PostgreSQL pool of `postgres_connections` (sized to
    /// the runner's workers; SQLite keeps 4, it serializes writers anyway).
    pub async fn connect_sized(url: &str, postgres_connections: u32) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite {
                4
            } else {
                postgres_connections.max(2)
            })
            // Opened at the start, not by the first burst of orders (a PostgreSQL
            // connection is a new server process: milliseconds each, all at once).
            .min_connections(if backend == Backend::Sqlite {
                4
            } else {
                postgres_connections.clamp(2, 16)
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        // Checkpoints run beside the writers ([`checkpoints`]), not
                        // inside the commit that crosses the WAL's mark.
                        sqlx::query("PRAGMA wal_autocheckpoint = 0")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        let store = Self {
            pool,
            backend,
            writer: std::sync::Arc::new(tokio::sync::Mutex::new(())),
        };
        store.migrate().await?;
        if backend == Backend::Sqlite {
            tokio::spawn(checkpoints(
                store.pool.clone(),
                std::sync::Arc::downgrade(&store.writer),
            ));
        }
        Ok(store)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&self.pool)
                .await?;
        }
        // A database of the first release (schema_version 1) lacks `requests.idp`: add it
        // before the migrations (which create only what is missing) run.
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .execute(&self.pool)
            .await?;
        let v: Option<i64> =
            sqlx::query_scalar("SELECT CAST(MAX(version) AS BIGINT) AS v FROM schema_version")
                .fetch_one(&self.pool)
                .await?;
        if v == Some(1) {
            sqlx::query("ALTER TABLE requests ADD COLUMN idp TEXT NOT NULL DEFAULT 'entra'")
                .execute(&self.pool)
                .await?;
            sqlx::query("UPDATE schema_version SET version = 2")
                .execute(&self.pool)
                .await?;
        }
        let migrations = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrations
            .run(&self.pool)
            .await
            .map_err(|e| StoreError(format!("migrating the schema: {e}")))?;
        if v.is_none() {
            sqlx::query("INSERT INTO schema_version (version) VALUES (2)")
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads first and writes later cannot wait
    /// for another writer (SQLite answers "database is locked" at the upgrade, without
    /// the busy timeout), so every transaction here that writes starts immediate.
    ///
    /// On SQLite the transaction also waits for its turn among this process's writers
    /// ([`SqlStore::gate`]).
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let turn = self.gate().await?;
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx { tx, _turn: turn })
    }

    /// On SQLite, this process's turn to write (`None` on PostgreSQL, whose writers do
    /// not wait for each other). SQLite takes one writer at a time; a writer that finds
    /// the lock taken sleeps in SQLite's busy handler, in steps of up to 100 ms, and
    /// does not learn when the lock frees: under load that is most of a write's wait
    /// (the intake's slowest answers). Queued here instead, each writer starts the
    /// moment the one before it ends. Another process on the same file still meets the
    /// busy handler. A turn not given within the busy timeout (10 s) is an error, as
    /// SQLite's own would be.
    pub async fn gate(&self) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        tokio::time::timeout(Duration::from_secs(10), self.writer.clone().lock_owned())
            .await
            .map(Some)
            .map_err(|_| StoreError("database is locked (no write turn within 10 s)".into()))
    }

    /// The connection pool, for modules that keep their own tables (Okta mode, the
    /// console). Queries bind every value as a parameter.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store for SqlStore {
    async fn insert_request(
        &self,
        row: &RequestRow,
        sealed_response_key: &[u8],
        idempotency: Option<(&str, &str)>,
        lease: Duration,
    ) -> Result<Job, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some((client, key)) = idempotency {
            sqlx::query("INSERT INTO idempotency_keys (client, key, request_id, created_at) VALUES ($1, $2, $3, $4)")
                .bind(client)
                .bind(key)
                .bind(&row.id)
                .bind(row.created_at)
                .execute(&mut *tx)
                .await?;
        }
        add_request(&mut tx, row).await?;
        sqlx::query("INSERT INTO sealed_secrets (request_id, purpose, sealed) VALUES ($1, $2, $3)")
            .bind(&row.id)
            .bind(Purpose::ResponseKey.as_str())
            .bind(sealed_response_key.to_vec())
            .execute(&mut *tx)
            .await?;
        add_history(
            &mut tx,
            &row.id,
            row.created_at,
            row.state.as_str(),
            "request accepted; shipment about to be created at the fulfiller",
        )
        .await?;
        let lease_id = uuid::Uuid::new_v4().to_string();
        let id = add_job(
            &mut tx,
            &row.id,
            row.created_at,
            Some((&lease_id, until(row.created_at, lease))),
        )
        .await?;
        tx.commit().await?;
        Ok(Job {
            id,
            request_id: row.id.clone(),
            attempts: 1,
            retries: 0,
            lease: lease_id,
        })
    }

    async fn idempotent_request(
        &self,
        client: &str,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let r =
            sqlx::query("SELECT request_id FROM idempotency_keys WHERE client = $1 AND key = $2")
                .bind(client)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match r {
            Some(r) => Some(r.try_get("request_id")?),
            None => None,
        })
    }

    async fn get_request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        Ok(
            sqlx::query_as(sql!("SELECT {COLUMNS} FROM requests WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn by_shipment(&self, shipment_id: &str) -> Result<Option<RequestRow>, StoreError> {
        Ok(sqlx::query_as(sql!(
            "SELECT {COLUMNS} FROM requests WHERE shipment_id = $1"
        ))
        .bind(shipment_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn list_requests(&self, f: &ListFilter) -> Result<(Vec<RequestRow>, i64), StoreError> {
        let state = f.state.clone().unwrap_or_default();
        let user = f.user_id.clone().unwrap_or_default();
        let idp = f.idp.clone().unwrap_or_default();
        let filter =
            "($1 = '' OR state = $1) AND ($2 = '' OR user_id = $2) AND ($3 = '' OR idp = $3)";
        let total: i64 = sqlx::query(sql!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM requests WHERE {filter}"
        ))
        .bind(&state)
        .bind(&user)
        .bind(&idp)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?;
        let rows = sqlx::query_as(sql!(
            "SELECT {COLUMNS} FROM requests WHERE {filter} ORDER BY created_at DESC, id LIMIT $4 OFFSET $5"
        ))
        .bind(&state)
        .bind(&user)
        .bind(&idp)
        .bind(f.limit.clamp(1, 100))
        .bind(f.offset.max(0))
        .fetch_all(&self.pool)
        .await?;
        Ok((rows, total))
    }

    async fn update_request(&self, row: &RequestRow, note: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let old: Option<String> = sqlx::query("SELECT state FROM requests WHERE id = $1")
            .bind(&row.id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("state"))
            .transpose()?;
        let t = now();
        write_row(&mut tx, row, t, None).await?;
        if old.as_deref() != Some(row.state.as_str()) || !note.is_empty() {
            add_history(&mut tx, &row.id, t, row.state.as_str(), note).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn update_request_if(
        &self,
        row: &RequestRow,
        expected: RequestState,
        note: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let t = now();
        let applied = write_row(&mut tx, row, t, Some(expected)).await?;
        if !applied {
            tx.rollback().await?;
            return Ok(false);
        }
        if expected != row.state || !note.is_empty() {
            add_history(&mut tx, &row.id, t, row.state.as_str(), note).await?;
        }
        if row.idp == Idp::Okta
            && matches!(row.state, RequestState::Complete | RequestState::Deleted)
        {
            // The person's open-request lock ends with the request, in the same write.
            sqlx::query("DELETE FROM okta_open_users WHERE request_id = $1")
                .bind(&row.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn forget_request(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for table in [
            "requests",
            "request_history",
            "jobs",
            "sealed_secrets",
            "idempotency_keys",
        ] {
            let col = if table == "requests" {
                "id"
            } else {
                "request_id"
            };
            sqlx::query(sql!("DELETE FROM {table} WHERE {col} = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn history(&self, id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, state, note FROM request_history WHERE request_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn put_secret(
        &self,
        id: &str,
        purpose: Purpose,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sealed_secrets WHERE request_id = $1 AND purpose = $2")
            .bind(id)
            .bind(purpose.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO sealed_secrets (request_id, purpose, sealed) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(purpose.as_str())
            .bind(sealed.to_vec())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_secret(&self, id: &str, purpose: Purpose) -> Result<Option<Vec<u8>>, StoreError> {
        let r =
            sqlx::query("SELECT sealed FROM sealed_secrets WHERE request_id = $1 AND purpose = $2")
                .bind(id)
                .bind(purpose.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(match r {
            Some(r) => Some(r.try_get("sealed")?),
            None => None,
        })
    }

    async fn delete_secret(&self, id: &str, purpose: Purpose) -> Result<(), StoreError> {
        let _turn = self.gate().await?;
        sqlx::query("DELETE FROM sealed_secrets WHERE request_id = $1 AND purpose = $2")
            .bind(id)
            .bind(purpose.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn schedule(&self, request_id: &str, run_at: i64) -> Result<(), StoreError> {
        let turn = self.gate().await?;
        let updated = sqlx::query(
            "UPDATE jobs SET run_at = $2, backoff = 0, retries = 0 WHERE request_id = $1",
        )
        .bind(request_id)
        .bind(run_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        // The transaction below takes its own turn.
        drop(turn);
        if updated == 0 {
            let mut tx = self.begin_write().await?;
            // Two schedulers may race to add the job: the second insert is a no-op.
            let exists: Option<String> =
                sqlx::query_scalar("SELECT id FROM jobs WHERE request_id = $1")
                    .bind(request_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                add_job(&mut tx, request_id, run_at, None).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    async fn make_due(&self, with_backoff: bool) -> Result<u64, StoreError> {
        let _turn = self.gate().await?;
        Ok(
            sqlx::query("UPDATE jobs SET run_at = $1 WHERE run_at > $1 AND (backoff = 0 OR $2)")
                .bind(now())
                .bind(with_backoff)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn make_due_seen(&self, open_due: &[String]) -> Result<u64, StoreError> {
        let t = now();
        let mut tx = self.begin_write().await?;
        let mut n = sqlx::query(
            "UPDATE jobs SET run_at = $1 WHERE run_at > $1 AND backoff = 0 AND request_id NOT IN \
             (SELECT id FROM requests WHERE state = $2)",
        )
        .bind(t)
        .bind(RequestState::Open.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for id in open_due {
            n += sqlx::query(
                "UPDATE jobs SET run_at = $1 WHERE request_id = $2 AND run_at > $1 AND backoff = 0",
            )
            .bind(t)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn waiting_for_fulfiller(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.shipment_id FROM requests r JOIN jobs j ON j.request_id = r.id \
             WHERE r.state = $1 AND r.shipment_id IS NOT NULL AND j.backoff = 0 \
             AND j.run_at > $2 AND (j.locked_until IS NULL OR j.locked_until < $2)",
        )
        .bind(RequestState::Open.as_str())
        .bind(now())
        .fetch_all(&self.pool)
        .await?)
    }

    async fn heartbeat(&self, job: &Job, lease: Duration) -> Result<bool, StoreError> {
        let _turn = self.gate().await?;
        Ok(
            sqlx::query("UPDATE jobs SET locked_until = $3 WHERE id = $1 AND lease_id = $2")
                .bind(&job.id)
                .bind(&job.lease)
                .bind(until(now(), lease))
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn claim_as_of(&self, t: i64, lease: Duration) -> Result<Option<Job>, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // A new lease id per claim: a holder whose lease ran out and was taken over can
        // no longer renew, release or finish the job.
        let _turn = self.gate().await?;
        Ok(sqlx::query_as(sql!(
            "UPDATE jobs SET locked_until = $1, attempts = attempts + 1, lease_id = $3 WHERE id = (\
               SELECT id FROM jobs WHERE run_at <= $2 AND (locked_until IS NULL OR locked_until < $2) \
               ORDER BY run_at, id LIMIT 1{lock}) \
             RETURNING id, request_id, CAST(attempts AS BIGINT) AS attempts, \
               CAST(retries AS BIGINT) AS retries, lease_id"
        ))
        .bind(until(t, lease))
        .bind(t)
        .bind(uuid::Uuid::new_v4().to_string())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn release(
        &self,
        job: &Job,
        run_at: i64,
        error: Option<&str>,
        how: Release,
    ) -> Result<bool, StoreError> {
        let (backoff, retries) = match how {
            Release::Wait => (0i64, 0i64),
            Release::Backoff => (1, job.retries + 1),
        };
        let _turn = self.gate().await?;
        Ok(sqlx::query(
            "UPDATE jobs SET locked_until = NULL, lease_id = NULL, run_at = $3, last_error = $4, \
             backoff = $5, retries = $6 WHERE id = $1 AND lease_id = $2",
        )
        .bind(&job.id)
        .bind(&job.lease)
        .bind(run_at)
        .bind(error)
        .bind(backoff)
        .bind(retries)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    async fn finish(&self, job: &Job) -> Result<bool, StoreError> {
        let _turn = self.gate().await?;
        Ok(
            sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_id = $2")
                .bind(&job.id)
                .bind(&job.lease)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    async fn purge_completed(&self, before: i64) -> Result<u64, StoreError> {
        let _turn = self.gate().await?;
        Ok(sqlx::query(
            "DELETE FROM sealed_secrets WHERE request_id IN (\
               SELECT id FROM requests WHERE state IN ('complete', 'deleted') AND updated_at < $1)",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
