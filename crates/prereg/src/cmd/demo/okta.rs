//! The Okta half of `prereg demo`: waits for the connector's Okta mode.

use super::progress::Progress;
use super::{Outcome, World};

/// Whether the connector's Okta mode can run the demo.
pub fn available() -> bool {
    false
}

/// The Okta org the sandbox starts with.
pub fn org(_n: usize) -> anyhow::Result<sandbox::okta::OrgSeed> {
    Ok(sandbox::okta::OrgSeed::default())
}

/// The connector's `[okta]` section for the sandbox org.
pub fn connector_toml(_ready: &serde_json::Value) -> String {
    String::new()
}

/// Runs the Okta half for `n` users.
pub async fn run(_w: &World, _n: usize, _progress: &Progress) -> anyhow::Result<Vec<Outcome>> {
    Ok(Vec::new())
}
