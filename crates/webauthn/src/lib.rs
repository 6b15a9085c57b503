//! WebAuthn data handling for relying parties: clientDataJSON, WebAuthn options and
//! response JSON, authenticator data, COSE keys, packed attestation and assertion
//! verification.
//!
//! Does not live here: any I/O, clocks, or authenticator-side behaviour. Callers
//! pass everything a check needs (challenge, origins, trust roots, the time).
#![forbid(unsafe_code)]

pub mod attestation;
pub mod auth_data;
pub mod b64;
mod cbor;
pub mod client_data;
pub mod cose;
mod error;
pub mod options;
mod verify;
mod x509;

pub use attestation::{AttestationObject, AttestationPolicy, AttestationType, TrustRoots};
pub use auth_data::{AttestedCredential, AuthenticatorData, AuthenticatorExtensions, Flags};
pub use client_data::ClientData;
pub use cose::CoseKey;
pub use error::Error;
pub use verify::{
    AssertionExpectations, AssertionOutcome, RegisteredCredential, RegistrationExpectations,
    verify_assertion, verify_registration,
};

/// Upper bound on any single input (clientDataJSON, attestation object,
/// authenticator data, options JSON). Entra's challenge alone is ~7 KB.
pub const MAX_INPUT: usize = 64 * 1024;
