//! Okta mode's own tables.

use crate::store::Backend;

/// The statements that create Okta mode's tables (run by the store's migration, after
/// the shared tables; each must be idempotent: `CREATE ... IF NOT EXISTS`).
pub fn schema(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Sqlite => &[],
        Backend::Postgres => &[],
    }
}
