//! The `prereg` command's integration tests, one binary: each module runs the built
//! binary (or its services) the way a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

pub mod common;

mod batch_cli;
mod bench_cmd;
mod chaos_cmd;
mod cli_envelope;
mod cli_key;
mod cli_webauthn;
mod demo;
mod deploy;
mod depot_cmd;
mod okta_cli;
mod sandbox_cmd;
mod sandbox_entra;
mod sandbox_okta;
mod secrets_cmd;
mod serve_cmd;
mod serve_secrecy;
mod yubico_cli;
