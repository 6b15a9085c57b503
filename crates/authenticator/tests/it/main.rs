//! The authenticator crate's integration tests: one test binary, one module per area.

mod findings;
mod interop_fido2;
mod make_credential;
mod pin_rules;
mod props;
mod redaction;
mod verify_webauthn;
