//! The webauthn crate's integration tests: one test binary, one module per area.

mod auth_data_cose;
mod interop_fido2;
mod options;
mod proptest_mutation;
mod vectors;
