//! The sandboxes: real HTTP servers that play the remote services prereg talks to, speak
//! their wire formats, keep their own state, check what they receive and can inject
//! faults. They are product (an admin can point any orchestration at them) as much as
//! test doubles.
//!
//! Lives here: [`fulfiller`] (YubiEnterprise Delivery with FIDO Pre-reg), [`entra`]
//! (Microsoft Entra ID: token service, Graph, passkey sign-in), the shared [`faults`]
//! layer, and [`App`], which binds and runs the servers (port 0 in tests).
//! [`okta`] (an Okta org: management API, OAuth, event hooks, the WebAuthn
//! Preregistration API, sign-in) and [`mail`] (the SMTP mail catcher and sender).
//! [`signin`]: the person's side of a passkey sign-in at either IdP sandbox.
//! [`depot`]: the same fulfiller service for a desk that programs keys itself (no clock,
//! keys and shipments kept in a state directory); product, not a double.
//! Does not live here: wire types (crate `yubienterprise`), envelope cryptography (crate
//! `envelope`), the virtual key (crate `authenticator`), the command line (`prereg
//! sandbox`).
#![forbid(unsafe_code)]

mod app;
pub mod depot;
pub mod entra;
pub mod faults;
pub mod fulfiller;
pub mod mail;
pub mod okta;
mod rng;
pub mod signin;
mod time;

pub use app::{App, Config, StartError, default_programmer};
