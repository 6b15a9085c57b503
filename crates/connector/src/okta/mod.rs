//! Okta mode's HTTP surface ([`api`]: the event hook, batch, reconcile, the shipments
//! table, the approval gate) and the Okta Workflows action cards ([`cards`]), in front of
//! the engine's Okta mode (re-exported here: [`engine::okta`]).

pub mod api;
pub mod cards;

pub use engine::okta::*;

/// The Okta-mode routes, documented (merged into the API's router and document).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<std::sync::Arc<crate::AppState>> {
    api::routes()
}
