//! The YubiEnterprise Delivery sandbox with FIDO Pre-reg (issue #4).
//!
//! Routes (wire shapes in crate `yubienterprise`):
//! - no token: `GET /.well-known/yubico-transport-keys.jwks`, `GET /.well-known/yubico-sign.jwks`
//! - bearer token: `POST /v1/fpr/shipments`, `GET|PUT|DELETE /v1/fpr/shipments/{id}`,
//!   `GET|POST /v1/shipments_exact`, `GET /v1/shipments_exact/search-description`,
//!   `GET|PUT|DELETE /v1/shipments_exact/{id}`, `GET /v1/products`,
//!   `GET /v1/products/{id}`, `GET /v1/inventory`, `POST /v1/validate-address`
//! - sandbox-only, bearer token, never faulted: `POST /sandbox/v1/advance`,
//!   `GET|PUT /sandbox/v1/faults`, `POST /sandbox/v1/keys/rotate`,
//!   `GET /sandbox/v1/shipments/{id}/key`, `GET /sandbox/v1/state`,
//!   `GET|PUT|DELETE /sandbox/v1/holds/{id}` ([`hold`])
//!
//! Errors are `{"code","message","field"?}` ([`yubienterprise::ApiError`]).

pub(crate) mod auth;
mod certs;
pub mod fulfil;
pub mod hold;
pub mod key_steps;
pub mod keys;
pub mod program;
pub(crate) mod routes;
pub mod seed;
pub mod store;
pub mod virtual_key;

use crate::faults::{self, Faults};
use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use std::sync::Arc;

pub use fulfil::{EnvelopeProgrammer, KeyFactory, KeySpec, MadeKey};
pub use key_steps::{program_fido_key, require_fresh};
pub use program::{Order, ProgramError, Programmed, Programmer, Unavailable};
pub use seed::Seed;
pub use store::Store;
pub use virtual_key::VirtualKeys;

/// What the handlers share.
#[derive(Clone)]
pub struct Fulfiller {
    /// The state.
    pub store: Arc<Store>,
    /// The live fault setting.
    pub faults: Faults,
}

/// The fulfiller's router: the service ([`service_routes`]), the sandbox-only routes,
/// and the documented 404 for anything else.
pub fn router(state: Fulfiller) -> Router {
    use routes::admin;
    let sandbox = Router::new()
        .route("/sandbox/v1/advance", post(admin::advance))
        .route(
            "/sandbox/v1/faults",
            get(admin::get_faults).put(admin::set_faults),
        )
        .route("/sandbox/v1/keys/rotate", post(admin::rotate))
        .route("/sandbox/v1/shipments/{id}/key", get(admin::parcel))
        .route("/sandbox/v1/state", get(admin::state))
        .route(
            "/sandbox/v1/holds/{id}",
            get(admin::hold_state)
                .put(admin::arm_hold)
                .delete(admin::release_hold),
        )
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    service_routes(state.clone())
        .merge(sandbox)
        .fallback(routes::not_found)
        .with_state(state)
}

/// The YubiEnterprise service alone: the bearer-token API and the published key sets,
/// behind the fault layer; no sandbox-only route and no fallback. A depot
/// ([`crate::depot`]) serves this with its desk's routes.
pub fn service_routes(state: Fulfiller) -> Router<Fulfiller> {
    use routes::{catalogue, exact, fpr, well_known};
    let authed = Router::new()
        .route("/v1/fpr/shipments", post(fpr::create))
        .route(
            "/v1/fpr/shipments/{id}",
            get(fpr::get).put(fpr::update).delete(fpr::delete),
        )
        .route("/v1/shipments_exact", get(exact::list).post(exact::create))
        .route(
            "/v1/shipments_exact/search-description",
            get(exact::search_description),
        )
        .route(
            "/v1/shipments_exact/{id}",
            get(exact::get).put(exact::update).delete(exact::delete),
        )
        .route("/v1/products", get(catalogue::products))
        .route("/v1/products/{id}", get(catalogue::product))
        .route("/v1/inventory", get(catalogue::inventory))
        .route("/v1/validate-address", post(catalogue::validate_address))
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    let public = Router::new()
        .route(
            "/.well-known/yubico-transport-keys.jwks",
            get(well_known::transport),
        )
        .route("/.well-known/yubico-sign.jwks", get(well_known::signing));
    authed
        .merge(public)
        .layer(from_fn_with_state(state.faults.clone(), faults::inject))
}

/// What a requester needs to know about a fulfiller at `base` (the `fulfiller` member
/// of `prereg sandbox`'s and `prereg depot serve`'s ready lines): the API and key set
/// URLs, the tokens, the organisation, its products, inventory and customizations.
pub fn ready_info(store: &Store, base: &str) -> serde_json::Value {
    let seed = store.seed();
    serde_json::json!({
        "base_url": base,
        "api_base_url": format!("{base}/v1"),
        "transport_jwks_url": format!("{base}/.well-known/yubico-transport-keys.jwks"),
        "signing_jwks_url": format!("{base}/.well-known/yubico-sign.jwks"),
        "tokens": seed.tokens,
        "organization_id": seed.organization_id,
        "products": seed.products.iter().map(|p| serde_json::json!({
            "product_id": p.product_id,
            "product_name": p.product_name,
            "fido_prereg": p.fido_prereg,
        })).collect::<Vec<_>>(),
        "inventory": store.inventory().organization_product_inventory,
        "customizations": seed.customizations.iter().map(|c| &c.customization_id).collect::<Vec<_>>(),
    })
}
