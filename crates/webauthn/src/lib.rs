//! WebAuthn data handling for relying parties: clientDataJSON, authenticator data,
//! COSE keys, packed attestation and assertion verification.
//!
//! Does not live here: any I/O, clocks, or authenticator-side behaviour.
#![forbid(unsafe_code)]
