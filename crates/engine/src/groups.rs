//! What the group triggers of both modes share: a mapped group's order line (`[[okta.groups]]`,
//! `[[entra.groups]]`) and what a reconciliation of mapped groups' members did.

use crate::config::{ConfigError, Section};

/// A mapped group: members get this order line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMapping {
    /// The group's id at the identity provider (Okta `00g...`, an Entra object id).
    pub group_id: String,
    /// Fulfiller product id.
    pub product_id: u32,
    /// Fulfiller inventory product id.
    pub inventory_product_id: u32,
    /// Fulfiller customization id.
    pub customization_id: String,
}

/// The `groups` key of a section: from the environment (`<SECTION>_GROUPS`) or a string
/// in the file, a JSON array; in the file, an array of tables (`[[okta.groups]]`).
/// Every mapping needs a group id and a customization id.
pub fn mappings(s: &Section, section: &str) -> Result<Vec<GroupMapping>, ConfigError> {
    let groups: Vec<GroupMapping> = match s.get("groups") {
        Ok(Some(v)) if v.trim().is_empty() => Vec::new(),
        Ok(Some(v)) => serde_json::from_str(&v).map_err(|e| {
            s.err(
                "groups",
                format!(
                    "must be a JSON array of {{group_id, product_id, inventory_product_id, customization_id}}: {e}"
                ),
            )
        })?,
        Ok(None) => Vec::new(),
        Err(_) => s
            .table()
            .get("groups")
            .cloned()
            .unwrap_or(toml::Value::Array(Vec::new()))
            .try_into()
            .map_err(|e: toml::de::Error| {
                s.err(
                    "groups",
                    format!(
                        "must be an array of tables [[{section}.groups]] with group_id, product_id, inventory_product_id, customization_id: {}",
                        e.message()
                    ),
                )
            })?,
    };
    for g in &groups {
        if g.group_id.trim().is_empty() || g.customization_id.trim().is_empty() {
            return Err(s.err(
                "groups",
                "every mapping needs a group_id and a customization_id",
            ));
        }
    }
    Ok(groups)
}

/// Why a reconciliation of mapped groups' members stopped (a member that could not be
/// ordered does not stop it: it is in [`ReconcileSummary::failed`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReconcileError {
    /// The trigger is off (no mapped groups, or the mode is off).
    #[error("{0}")]
    Off(String),
    /// The identity provider would not list a group's members.
    #[error("{0}")]
    Idp(String),
    /// The database did not answer.
    #[error("{0}")]
    Store(String),
}

/// What a reconciliation of mapped groups' members did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReconcileSummary {
    /// Members looked at.
    pub checked: u64,
    /// Requests started (ids).
    pub started: Vec<String>,
    /// Members that could not be started, with why.
    pub failed: Vec<String>,
}

/// Runs a reconciliation (`run`) every `every` seconds (0: never), logging what each run
/// did under `what` ("Entra group reconciliation"), and wakes the runner after a run
/// that started requests: the group triggers' periodic safety net, so a member whose
/// event was missed still gets a key.
pub async fn reconcile_every<F, Fut>(
    state: &crate::services::Services,
    every: u64,
    what: &str,
    run: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<ReconcileSummary, ReconcileError>>,
{
    if every == 0 {
        return;
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(every)).await;
        match run().await {
            Ok(s) => {
                tracing::info!(
                    checked = s.checked,
                    started = s.started.len(),
                    failed = s.failed.len(),
                    "{what}"
                );
                if !s.started.is_empty() {
                    state.runner.kick();
                }
            }
            Err(e) => tracing::warn!(error = %e, "{what} failed"),
        }
    }
}
