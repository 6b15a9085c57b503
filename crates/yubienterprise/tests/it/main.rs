//! The client crate's integration tests, one binary: `validate` (every documented field
//! rule) and `wire` (the wire types against the spec's JSON examples in `tests/fixtures`).
#![allow(clippy::unwrap_used)]

mod validate;
mod wire;
