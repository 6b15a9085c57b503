//! The admin console: server-rendered pages over every request the connector tracks,
//! across identity providers, served by `prereg serve` under `/console`.
//!
//! - [`auth`]: sign-in (a local admin account and/or OIDC authorization code with PKCE
//!   against the configured issuer), sessions (random id in an HttpOnly cookie, stored
//!   hashed), CSRF tokens.
//! - [`query`]: the console's own SQL over the shared `requests` table (filters, search,
//!   sort, pages; every value bound).
//! - [`pages`]: the pages and the actions (the engine's admin actions,
//!   [`engine::admin`], as the API calls them).
//! - [`throttle`]: sign-in throttling (failed attempts per user name and per client
//!   address, kept in the database).
//!
//! Templates live in `crates/connector/templates/console/` (askama, checked at compile
//! time); the stylesheet and the vendored htmx in `crates/connector/static/`, compiled
//! into the binary.

// Handlers return early with a complete HTTP answer (`Result<_, Response>`); boxing it
// would only add noise.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod pages;
pub mod query;
pub mod throttle;

use crate::app::AppState;
use axum::routing::{get, post};
use std::sync::Arc;

pub use engine::config::console::{ConsoleConfig, KEYS, OidcConfig};

/// A `[console]` TOML section for `prereg sandbox --connector-config`: sign-in at the
/// Entra sandbox (authorization code + PKCE, the connector app as the console's client)
/// for the tenant's first seeded user, allowed by object id (the sandbox password is in
/// the ready line as `entra.user_password`). No local admin (its password would have to
/// be written in clear). Empty when the ready line has no Entra sandbox. Append it after
/// the top-level keys (it opens a table).
pub fn sandbox_section(ready: &serde_json::Value) -> String {
    let e = &ready["entra"];
    let (Some(issuer), Some(id), Some(secret), Some(user)) = (
        e["issuer"].as_str(),
        e["connector_app"]["client_id"].as_str(),
        e["connector_app"]["client_secret"].as_str(),
        e["users"][0].as_str(),
    ) else {
        return String::new();
    };
    let Some(oid) = e["user_ids"][user].as_str() else {
        return String::new();
    };
    let q = |v: &str| serde_json::Value::from(v).to_string();
    format!(
        "\n# The admin console (http://127.0.0.1:8080/console): sign in at the Entra sandbox as\n# {user} with the sandbox password (ready line: entra.user_password); allowed by\n# object id (oid).\n[console]\noidc_issuer = {}\noidc_client_id = {}\noidc_client_secret = {}\noidc_allowed_users = [{}]\n",
        q(issuer),
        q(id),
        q(secret),
        q(oid)
    )
}

const HTMX: &str = include_str!("../../static/htmx.min.js");
const CSS: &str = include_str!("../../static/console.css");

fn asset(kind: &'static str, body: &'static str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (axum::http::header::CONTENT_TYPE, kind),
            (axum::http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The console's routes (merged into the API router). Without a `[console]` section,
/// nothing is served under `/console`.
pub fn router(state: Arc<AppState>) -> axum::Router {
    if state.config.console.is_none() {
        return axum::Router::new();
    }
    axum::Router::new()
        .route(
            "/console/static/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX) }),
        )
        .route(
            "/console/static/console.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route(
            "/console/login",
            get(auth::login_page).post(auth::login_local),
        )
        .route("/console/logout", post(auth::logout))
        .route("/console/oidc/start", get(auth::oidc_start))
        .route("/console/oidc/callback", get(auth::oidc_callback))
        .route("/console/shipments", get(pages::shipments))
        .route("/console/shipments/process", post(pages::process_now))
        .route("/console/shipments/{id}", get(pages::details))
        .route("/console/shipments/{id}/edit", post(pages::edit))
        // retry, resend-pin, delete, approve (`edit` above takes precedence).
        .route("/console/shipments/{id}/{action}", post(pages::action))
        .route("/console/settings", get(pages::settings))
        .layer(axum::middleware::from_fn(auth::security_headers))
        .with_state(state)
}
