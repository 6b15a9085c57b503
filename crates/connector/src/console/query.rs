//! The console's SQL over the shared `requests` table: filters, free-text search, sort
//! and pages. The statement text is built only from this module's constants (column
//! names from a fixed list, numbered placeholders); every value is a bound parameter.

use crate::store::StoreError;
use sqlx::{AnyPool, Row};

/// What to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Created (default, newest first).
    #[default]
    Created,
    /// Updated.
    Updated,
    /// The user.
    User,
    /// Our state.
    State,
    /// The fulfiller's state.
    Fulfiller,
    /// The serial.
    Serial,
    /// The identity provider.
    Idp,
}

impl Sort {
    /// From the query string (`created`, `updated`, `user`, `state`, `fulfiller`,
    /// `serial`, `idp`); anything else sorts by created.
    pub fn parse(s: &str) -> Self {
        match s {
            "updated" => Self::Updated,
            "user" => Self::User,
            "state" => Self::State,
            "fulfiller" => Self::Fulfiller,
            "serial" => Self::Serial,
            "idp" => Self::Idp,
            _ => Self::Created,
        }
    }

    /// The query-string name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::User => "user",
            Self::State => "state",
            Self::Fulfiller => "fulfiller",
            Self::Serial => "serial",
            Self::Idp => "idp",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Created => "created_at",
            Self::Updated => "updated_at",
            Self::User => "LOWER(user_label)",
            Self::State => "state",
            Self::Fulfiller => "fulfiller_state",
            Self::Serial => "serial",
            Self::Idp => "idp",
        }
    }
}

/// A list query.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this state of ours.
    pub state: Option<String>,
    /// Only this identity provider.
    pub idp: Option<String>,
    /// Only this fulfiller state id.
    pub fulfiller_state: Option<i64>,
    /// Only FIDO pre-reg shipments (`Some(true)`), or only other types (`Some(false)`:
    /// the connector orders nothing else, so none).
    pub fpr: Option<bool>,
    /// Created at or after (seconds).
    pub from: Option<i64>,
    /// Created before (seconds).
    pub to: Option<i64>,
    /// Free text: user, e-mail, shipment id, request id, serial.
    pub q: Option<String>,
    /// Sort.
    pub sort: Sort,
    /// Descending.
    pub desc: bool,
    /// Page size.
    pub limit: i64,
    /// Skip.
    pub offset: i64,
}

/// One line of the list.
#[derive(Debug, Clone)]
pub struct Line {
    /// Request id.
    pub id: String,
    /// `entra` / `okta`.
    pub idp: String,
    /// Our state.
    pub state: String,
    /// The user's label.
    pub user: String,
    /// The user's id at the IdP.
    pub user_id: String,
    /// The fulfiller's shipment id.
    pub shipment_id: Option<String>,
    /// Fulfiller state id.
    pub fulfiller_state: Option<i64>,
    /// Its text.
    pub fulfiller_message: Option<String>,
    /// Serial.
    pub serial: Option<String>,
    /// Created (seconds).
    pub created_at: i64,
    /// The last audit entry.
    pub last_event: Option<String>,
    /// When.
    pub last_event_at: Option<i64>,
}

enum Bind {
    S(String),
    I(i64),
}

/// Escapes `%`, `_` and `\` for `LIKE ... ESCAPE '\'`.
fn like(s: &str) -> String {
    let mut out = String::from("%");
    for c in s.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn where_clause(f: &Filter) -> (String, Vec<Bind>) {
    let mut sql = String::from(" WHERE 1=1");
    let mut binds = Vec::new();
    let mut next = |sql: &mut String, b: Bind, expr: &str| {
        binds.push(b);
        sql.push_str(&expr.replace("{}", &format!("${}", binds.len())));
    };
    if let Some(s) = &f.state {
        next(&mut sql, Bind::S(s.clone()), " AND state = {}");
    }
    if let Some(s) = &f.idp {
        next(&mut sql, Bind::S(s.clone()), " AND idp = {}");
    }
    if let Some(n) = f.fulfiller_state {
        next(&mut sql, Bind::I(n), " AND fulfiller_state = {}");
    }
    if f.fpr == Some(false) {
        sql.push_str(" AND 1=0");
    }
    if let Some(t) = f.from {
        next(&mut sql, Bind::I(t), " AND created_at >= {}");
    }
    if let Some(t) = f.to {
        next(&mut sql, Bind::I(t), " AND created_at < {}");
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let p = like(q);
        let mut cols = vec![
            "LOWER(user_label)",
            "LOWER(user_id)",
            "LOWER(id)",
            "LOWER(COALESCE(shipment_id, ''))",
            "LOWER(COALESCE(serial, ''))",
            "LOWER(pin_contacts)",
        ];
        // An e-mail address may be the recipient's (in the stored create body, which
        // holds no secret in clear); only looked for when the text is an address.
        if q.contains('@') {
            cols.push("LOWER(create_body)");
        }
        sql.push_str(" AND (");
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            next(
                &mut sql,
                Bind::S(p.clone()),
                &format!("{c} LIKE {{}} ESCAPE '\\'"),
            );
        }
        sql.push(')');
    }
    (sql, binds)
}

/// A page of the list and the total that matches.
pub async fn list(pool: &AnyPool, f: &Filter) -> Result<(Vec<Line>, i64), StoreError> {
    let (w, binds) = where_clause(f);
    let count_sql = format!("SELECT COUNT(*) AS n FROM requests{w}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(count_sql));
    for b in &binds {
        q = match b {
            Bind::S(s) => q.bind(s.clone()),
            Bind::I(i) => q.bind(*i),
        };
    }
    let total: i64 = q.fetch_one(pool).await?.try_get("n")?;
    let dir = if f.desc { "DESC" } else { "ASC" };
    let n = binds.len();
    let sql = format!(
        "SELECT id, idp, state, user_label, user_id, shipment_id, fulfiller_state, fulfiller_message, serial, created_at, \
         (SELECT h.note FROM request_history h WHERE h.request_id = requests.id ORDER BY h.seq DESC LIMIT 1) AS last_event, \
         (SELECT h.at FROM request_history h WHERE h.request_id = requests.id ORDER BY h.seq DESC LIMIT 1) AS last_event_at \
         FROM requests{w} ORDER BY {} {dir}, id {dir} LIMIT ${} OFFSET ${}",
        f.sort.column(),
        n + 1,
        n + 2
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Bind::S(s) => q.bind(s),
            Bind::I(i) => q.bind(i),
        };
    }
    let rows = q.bind(f.limit).bind(f.offset).fetch_all(pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(Line {
            id: r.try_get("id")?,
            idp: r.try_get("idp")?,
            state: r.try_get("state")?,
            user: r.try_get("user_label")?,
            user_id: r.try_get("user_id")?,
            shipment_id: r.try_get("shipment_id")?,
            fulfiller_state: r.try_get("fulfiller_state")?,
            fulfiller_message: r.try_get("fulfiller_message")?,
            serial: r.try_get("serial")?,
            created_at: r.try_get("created_at")?,
            last_event: r.try_get("last_event")?,
            last_event_at: r.try_get("last_event_at")?,
        });
    }
    Ok((out, total))
}

/// Replaces a request's stored create body after an admin's edit and records the edit
/// in its audit trail (same state).
pub async fn record_edit(
    pool: &AnyPool,
    id: &str,
    state: &str,
    create_body: &str,
    note: &str,
) -> Result<(), StoreError> {
    let now = crate::store::now();
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE requests SET create_body = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(create_body)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    crate::store::add_history(&mut tx, id, now, state, note).await?;
    tx.commit().await?;
    Ok(())
}

/// The (product, inventory product, customization) triples the connector has ordered,
/// with how many requests used each (from the stored create bodies, newest 1000).
pub async fn product_usage(pool: &AnyPool) -> Result<Vec<(u32, u32, String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT create_body FROM requests WHERE state <> 'deleted' ORDER BY created_at DESC LIMIT 1000",
    )
    .fetch_all(pool)
    .await?;
    let mut m: std::collections::BTreeMap<(u32, u32, String), i64> = Default::default();
    for r in rows {
        let body: String = r.try_get("create_body")?;
        if let Ok(b) = serde_json::from_str::<yubienterprise::fpr::CreateFprShipment>(&body) {
            for it in b.shipment_items {
                *m.entry((it.product_id, it.inventory_product_id, it.customization_id))
                    .or_default() += 1;
            }
        }
    }
    Ok(m.into_iter().map(|((a, b, c), n)| (a, b, c, n)).collect())
}
