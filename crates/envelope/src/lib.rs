//! The pre-registration envelope, profile v1 (`shared/spec/envelope.md`).
//!
//! Lives here: P-384 JWKs and JWKS, compact JWE (`ECDH-ES+A256KW` / `A256GCM`), compact
//! JWS (`ES384`), the four message types and `request_hash` binding.
//! Does not live here: any I/O, clocks or key storage. Callers bring bytes and keys.
#![forbid(unsafe_code)]
