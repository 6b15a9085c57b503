//! The connector in Entra mode (`prereg serve`): the API an IT admin deploys, durable
//! tracking of each request, scheduled processing against the fulfiller and Microsoft
//! Graph, and PIN delivery.
//!
//! Lives here: configuration ([`config`]), secrets at rest ([`secrets`]), the store
//! ([`store`]). Does not live here: wire types and clients (crates `yubienterprise`,
//! `graph`), the envelope (crate `envelope`).
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod console;
pub mod domain;
pub mod okta;
pub mod pin;
pub mod process;
pub mod runner;
pub mod sandbox_config;
pub mod secrets;
pub mod store;

pub use app::{AppState, Application};
pub use config::Config;
