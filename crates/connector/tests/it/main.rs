//! The connector's integration tests, one binary (one link of the dependency tree):
//! each module is one area, the shared worlds live in `common` (Entra mode),
//! `okta_common`, `console_common` and `pg` (a throwaway PostgreSQL database).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod common;
mod console_common;
mod okta_common;
mod pg;

mod api;
mod batch_csv;
mod console_browser;
mod console_http;
mod console_okta;
mod credential_requests;
mod depot;
mod engine;
mod entra_groups;
mod faults_batch;
mod flow;
mod hardening;
mod okta_batch;
mod okta_cancel;
mod okta_cards;
mod okta_config;
mod okta_flow;
mod okta_group_scale;
mod okta_table;
mod okta_triggers;
mod openapi;
mod pin_hold;
mod processing;
mod races;
mod reference;
mod retention;
mod rotation;
mod smtp;
mod store;
mod tls;
