//! WebAuthn data handling for relying parties: clientDataJSON, WebAuthn options and
//! response JSON, authenticator data, COSE keys, packed attestation and assertion
//! verification.
//!
//! Does not live here: any I/O, clocks, or authenticator-side behaviour. Callers
//! pass everything a check needs (challenge, origins, trust roots, the time).
//!
//! - [`b64`]: base64url (no padding out, lenient in), Entra credential-id readings.
//! - [`client_data`]: build, parse and hash clientDataJSON.
//! - [`options`]: creation/request options and registration/assertion response JSON.
//! - [`auth_data`], [`cose`], [`attestation`]: the binary structures, parsed strictly.
//! - [`verify_registration`] / [`verify_assertion`]: the RP ceremonies (WebAuthn §7.1,
//!   §7.2); every refusal is an [`Error`] variant naming the failed check.
//!
//! Inputs are capped at [`MAX_INPUT`] bytes and no input makes this crate panic.
//!
//! ```no_run
//! use webauthn::{AttestationPolicy, RegistrationExpectations, TrustRoots, verify_registration};
//!
//! # fn run(root_pem: &str, challenge: &str, client_data_json: &[u8], attestation_object: &[u8])
//! # -> Result<(), webauthn::Error> {
//! let roots = TrustRoots::from_pem(root_pem)?;
//! let mut exp = RegistrationExpectations::new(
//!     "login.microsoft.com",              // origin defaults to https://login.microsoft.com
//!     challenge,                          // exactly as the IdP issued it
//!     AttestationPolicy::Required(roots), // packed + x5c chaining to a root
//! );
//! exp.require_uv = true;
//! let cred = verify_registration(&exp, client_data_json, attestation_object)?;
//! println!("{} {}", cred.aaguid, webauthn::b64::encode(&cred.credential_id));
//! # Ok(()) }
//! ```
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
