//! The Graph client's integration tests, one binary: `client` (against a scripted Graph
//! on 127.0.0.1) and `wire` (the wire types against the examples in `tests/fixtures`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod wire;
