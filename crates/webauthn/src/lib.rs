//! WebAuthn data handling for relying parties: clientDataJSON, WebAuthn options and
//! response JSON, authenticator data, COSE keys, packed attestation and assertion
//! verification.
//!
//! Does not live here: any I/O, clocks, or authenticator-side behaviour. Callers
//! pass everything a check needs (challenge, origins, trust roots, the time).
#![forbid(unsafe_code)]

pub mod b64;
pub mod client_data;
mod error;
pub mod options;

pub use client_data::ClientData;
pub use error::Error;

/// Upper bound on any single input (clientDataJSON, attestation object,
/// authenticator data, options JSON). Entra's challenge alone is ~7 KB.
pub const MAX_INPUT: usize = 64 * 1024;
