//! The sandbox's integration tests, one binary (one link of the dependency tree): each
//! module is one area, the shared worlds live in `common` (the fulfiller sandbox),
//! `entra_common` (fulfiller + Entra) and `okta_common` (the whole sandbox).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod entra_common;
mod okta_common;

mod entra_authorize;
mod entra_directory;
mod entra_registration;
mod entra_signin;
mod entra_tokens;
mod entra_vendor;
mod faults;
mod fulfiller_api;
mod fulfiller_lifecycle;
mod fulfiller_list;
mod fulfiller_vendor;
mod fulfilment_e2e;
mod fulfilment_envelope;
mod mail_catcher;
mod okta_directory;
mod okta_e2e;
mod okta_prereg;
mod okta_sdk;
mod okta_vendor;
mod seed;
