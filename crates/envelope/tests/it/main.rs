//! The envelope crate's integration tests: one test binary, one module per area.

mod interop;
mod jwk;
mod kdf;
mod pin_length;
mod roundtrip;
mod tamper;
mod vectors;
