//! Okta mode's HTTP surface ([`api`]: the event hook, batch, reconcile, the shipments
//! table, the approval gate) and the Okta Workflows action cards ([`cards`]), in front of
//! the engine's Okta mode (re-exported here: [`engine::okta`]).

pub mod api;
pub mod cards;

pub use engine::okta::*;

/// The Okta-mode routes (merged into the API router).
pub fn router(state: std::sync::Arc<crate::AppState>) -> axum::Router {
    api::routes(state)
}
