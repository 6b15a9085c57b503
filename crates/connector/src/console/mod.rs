//! The admin console: server-rendered pages over every request the connector tracks,
//! across identity providers, served by `prereg serve` under `/console`.

use crate::app::AppState;
use crate::config::{ConfigError, Section};
use crate::store::Backend;
use std::sync::Arc;

/// Console settings, from the `[console]` table of the configuration file (environment
/// variables `CONSOLE_<KEY>`). Absent table: the console is off.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {}

impl ConsoleConfig {
    /// Parses the `[console]` section; every invalid value names its key.
    pub fn parse(_section: &Section) -> Result<Self, ConfigError> {
        Ok(Self {})
    }
}

/// The statements that create the console's tables (sessions), run by the store's
/// migration; each must be idempotent.
pub fn schema(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Sqlite => &[],
        Backend::Postgres => &[],
    }
}

/// The console's routes (merged into the API router).
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new().with_state(state)
}
