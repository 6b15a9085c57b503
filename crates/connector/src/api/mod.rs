//! The HTTP API: one module per endpoint group, each returning [`error::ApiError`].
//! The routes are collected in a utoipa [`OpenApiRouter`] ([`routes()`]), which also
//! makes the OpenAPI document ([`openapi`]): what is served is what is documented.

pub mod auth;
pub mod batch;
pub mod create;
pub mod credential_requests;
pub mod error;
pub mod groups;
pub mod openapi;
pub mod shipments;
pub mod status;

use crate::app::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every documented route (both modes, the cards, monitoring), not yet given the state;
/// [`openapi::document`] is made from the same.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(status::healthz))
        .routes(routes!(status::readyz))
        .routes(routes!(status::metrics))
        .routes(routes!(openapi::openapi))
        .routes(routes!(status::status))
        .routes(routes!(create::fpr_request))
        .routes(routes!(batch::csv_batch))
        .routes(routes!(groups::entra_reconcile))
        .routes(routes!(credential_requests::create))
        .routes(routes!(
            credential_requests::get_one,
            credential_requests::delete
        ))
        .routes(routes!(create::fpr_shipments, shipments::list))
        .routes(routes!(shipments::process))
        .routes(routes!(shipments::get_one, shipments::delete))
        .routes(routes!(shipments::retry))
        .routes(routes!(shipments::resend_pin))
        .routes(routes!(shipments::pin_acknowledged))
        .merge(crate::okta::routes())
        .merge(crate::okta::cards::routes())
}

/// The router with every route (the documented API and the console, which is HTML and
/// not in the document), and on all of them the body limit and the client's address
/// ([`crate::edge`]).
pub fn router(state: Arc<AppState>) -> Router {
    let (api, _) = routes().split_for_parts();
    api.with_state(state.clone())
        .merge(crate::console::router(state.clone()))
        .layer(from_fn_with_state(state.clone(), crate::edge::client_info))
        // The edge's limit (`max_body_bytes`, up to 10 MiB) replaces the extractors' own
        // (2 MiB): one limit, one answer (413).
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(state, crate::edge::body_limit))
}
