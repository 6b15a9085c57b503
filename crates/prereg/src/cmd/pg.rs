//! A throwaway PostgreSQL database for the commands that measure (`bench`, `chaos`):
//! made on a server the role may create databases on, dropped at the end.

use anyhow::Context;

/// A throwaway PostgreSQL database, `prereg_<what>_<pid>_<random>`.
pub(crate) struct PgDatabase {
    server: String,
    name: String,
    /// Its URL, for the connector's `database_url`.
    pub(crate) url: String,
}

impl PgDatabase {
    /// Makes `prereg_<what>_<pid>_<random>` on `server` (a URL without a database).
    pub(crate) async fn create(server: &str, what: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("prereg_{what}_{}_{nanos:x}", std::process::id());
        Self::admin(server, &format!("CREATE DATABASE {name}")).await?;
        let url = format!("{server}/{name}");
        Ok(Self {
            server: server.to_owned(),
            name,
            url,
        })
    }

    /// Drops the database, closing whatever is still connected to it.
    pub(crate) async fn drop_db(self) -> anyhow::Result<()> {
        Self::admin(
            &self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
    }

    async fn admin(server: &str, sql: &str) -> anyhow::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("connecting to PostgreSQL at {server} (is it running?)"))?;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .with_context(|| format!("PostgreSQL: {sql}"))?;
        let _ = conn.close().await;
        Ok(())
    }
}

impl PgDatabase {
    /// Every value of every column of every table in the `public` schema as text
    /// (`bytea` unescaped), one per line: what a search for a secret in the database
    /// reads.
    pub(crate) async fn text_dump(&self) -> anyhow::Result<Vec<u8>> {
        use sqlx::{Connection, Row};
        let mut conn = sqlx::PgConnection::connect(&self.url)
            .await
            .with_context(|| format!("connecting to {}", self.name))?;
        let columns = sqlx::query(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .context("listing the database's columns")?;
        let quote = |id: &str| format!("\"{}\"", id.replace('"', "\"\""));
        let mut out = Vec::new();
        for c in columns {
            let table: String = c.try_get(0).context("a column's table")?;
            let column: String = c.try_get(1).context("a column's name")?;
            let ty: String = c.try_get(2).context("a column's type")?;
            let expr = if ty == "bytea" {
                format!("encode({}, 'escape')", quote(&column))
            } else {
                format!("{}::text", quote(&column))
            };
            // Identifiers from the database's own catalog, quoted.
            let sql = format!("SELECT {expr} FROM {}", quote(&table));
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(&mut conn)
                .await
                .with_context(|| format!("PostgreSQL: {sql}"))?;
            for r in rows {
                if let Ok(Some(v)) = r.try_get::<Option<String>, _>(0) {
                    out.extend_from_slice(v.as_bytes());
                    out.push(b'\n');
                }
            }
        }
        let _ = conn.close().await;
        Ok(out)
    }
}
