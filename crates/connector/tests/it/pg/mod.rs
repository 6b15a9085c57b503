//! A throwaway PostgreSQL database on 127.0.0.1:5432 (trust auth; `scripts/test` starts
//! the server) for the tests that run on both backends.
#![allow(dead_code)]

/// A fresh database, dropped by [`TestDb::drop_db`].
pub struct TestDb {
    /// A pool on the server's `postgres` database (to create, watch and drop).
    pub admin: sqlx::AnyPool,
    pub name: String,
    /// The connector's `database_url` for it.
    pub url: String,
}

impl TestDb {
    /// Creates `<prefix>_<random>`.
    pub async fn create(prefix: &str) -> Self {
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (scripts/test starts it)");
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Self { admin, name, url }
    }

    /// Drops the database, closing whatever is still connected to it.
    pub async fn drop_db(self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}
