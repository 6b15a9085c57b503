//! The connector's core, without the HTTP layer: the typed domain ([`domain`]), the
//! store and its migrations ([`store`]), secrets at rest ([`secrets`]) and master-key
//! rotation ([`rotation`]), the per-IdP flows (Entra mode in [`process`], Okta mode in
//! [`okta`]), PIN delivery ([`pin`]), retention of personal data ([`retention`]), the
//! runner that carries every request to its end ([`runner`]), the admin actions
//! ([`admin`]), Entra mode's intake of an order ([`intake`]), the CSV batch of both
//! modes ([`batch`]), credential requests of several keys and identity providers
//! ([`credreq`]) and the services they share ([`services`]). `axum` is not a dependency:
//! the HTTP API and the console (crate `connector`) call these services.
#![forbid(unsafe_code)]

pub mod admin;
pub mod batch;
pub mod config;
pub mod credreq;
pub mod domain;
pub mod entra_groups;
pub mod error;
pub mod groups;
pub mod intake;
pub mod metrics;
pub mod okta;
pub mod pin;
pub mod process;
pub mod retention;
pub mod rotation;
pub mod runner;
pub mod secrets;
pub mod services;
pub mod store;

pub use config::Config;
pub use error::ServiceError;
pub use services::{JwksCache, Services, StartError};
