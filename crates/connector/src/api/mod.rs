//! The HTTP API: one module per endpoint group, each returning [`error::ApiError`].

pub mod auth;
pub mod create;
pub mod error;
pub mod shipments;
pub mod status;

use crate::app::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use std::sync::Arc;

/// The router with every route (the API, Okta mode, the cards, the console), and on all
/// of them the body limit and the client's address ([`crate::edge`]).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/readyz", get(status::readyz))
        .route("/metrics", get(status::metrics))
        .route("/openapi.json", get(status::openapi))
        .route("/v1/status", get(status::status))
        .route("/v1/fprRequest", post(create::fpr_request))
        .route(
            "/v1/fpr/shipments",
            post(create::fpr_shipments).get(shipments::list),
        )
        .route("/v1/fpr/shipments/process", post(shipments::process))
        .route(
            "/v1/fpr/shipments/{id}",
            get(shipments::get_one).delete(shipments::delete),
        )
        .route("/v1/fpr/shipments/{id}/retry", post(shipments::retry))
        .route(
            "/v1/fpr/shipments/{id}/resend-pin",
            post(shipments::resend_pin),
        )
        .route(
            "/v1/fpr/shipments/{id}/pin-acknowledged",
            post(shipments::pin_acknowledged),
        )
        .with_state(state.clone())
        .merge(crate::okta::router(state.clone()))
        .merge(crate::okta::cards::router(state.clone()))
        .merge(crate::console::router(state.clone()))
        .layer(from_fn_with_state(state.clone(), crate::edge::client_info))
        // The edge's limit (`max_body_bytes`, up to 10 MiB) replaces the extractors' own
        // (2 MiB): one limit, one answer (413).
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(state, crate::edge::body_limit))
}
