//! The pre-registration envelope, profile v1 (`shared/spec/envelope.md`, `docs/envelope.md`).
//!
//! Lives here: P-384 JWKs and JWKS, compact JWE (`ECDH-ES+A256KW` / `A256GCM`), compact
//! JWS (`ES384`), the four message types and `request_hash` binding.
//! Does not live here: any I/O, clocks or key storage. Callers bring bytes and keys.
#![forbid(unsafe_code)]

mod b64;
mod error;
mod json;
mod jwk;

pub use error::{Error, Result};
pub use jwk::{Jwks, KeyUse, PrivateJwk, PublicJwk};

/// The most any token or key document may be: 256 KiB. Larger inputs are refused before
/// parsing.
pub const MAX_INPUT: usize = 256 * 1024;
