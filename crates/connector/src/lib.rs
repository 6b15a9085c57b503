//! The connector's HTTP layer (`prereg serve`): the API an IT admin deploys (the
//! guide's Entra-mode API and Okta mode's routes and action cards), the admin console,
//! and [`Application`], which binds and runs them in front of the services of crate
//! `engine` (the store, the flows, the runner).
//!
//! The engine's modules are re-exported under their own names (`connector::store`,
//! `connector::runner`, ...), so callers of the connector need only this crate. Does
//! not live here: the core (crate `engine`), wire types and clients (crates
//! `yubienterprise`, `graph`, `okta`), the envelope (crate `envelope`).
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod console;
pub mod edge;
pub mod okta;
pub mod sandbox_config;
pub mod trace;

pub use app::{AppState, Application};
pub use engine::{
    Config, ServiceError, Services, StartError, admin, batch, config, domain, entra_groups, groups,
    intake, pin, process, retention, rotation, runner, secrets, services, store,
};
