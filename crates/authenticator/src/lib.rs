//! The key in your hand: a [`KeyProgrammer`] trait and [`VirtualYubiKey`], a software
//! CTAP 2.1 authenticator that behaves like a YubiKey 5 for pre-registration.
//!
//! What lives here: the key's identity (model, firmware, serial, the AAGUID real keys of
//! that model report), its PIN rules (8 attempts, 3 per insertion, minimum length,
//! forcePINChange), resident credentials with credProtect and hmac-secret, packed
//! attestation under the committed **sandbox** CA ([`sandbox_attestation_root_pem`]), the
//! authenticator-side encodings (authData, COSE_Key, attestation object), the JSON key
//! file, and [`client`], the platform half that turns an IdP's creation options into
//! WebAuthn response JSON.
//!
//! What does not: verifying anything as a relying party (that is the `webauthn` crate),
//! and real USB keys (a later `usb` feature behind the same trait).
#![forbid(unsafe_code)]

mod attestation;
pub mod b64;
pub mod cbor;
pub mod client;
mod crypto;
mod device;
mod error;
pub mod identity;
mod pin;
mod secret;

pub use attestation::{
    GeneratedCa, OID_FIDO_AAGUID, SANDBOX_ORG, generate_sandbox_ca,
    sandbox_attestation_intermediate_pem, sandbox_attestation_root_der,
    sandbox_attestation_root_pem,
};
pub use device::{
    AuthenticatorInfo, CredentialSummary, GetAssertionRequest, GetAssertionResponse,
    KEY_FILE_FORMAT, KeyProgrammer, KeySummary, MakeCredentialRequest, MakeCredentialResponse,
    RelyingParty, SANDBOX_WARNING, User, VirtualYubiKey,
};
pub use error::{CtapError, Error, Result};
pub use identity::{Firmware, Identity, Model};
pub use pin::{DEFAULT_MIN_PIN_LENGTH, MAX_FAILURES_PER_INSERTION, MAX_PIN_RETRIES};
pub use secret::{Pin, SecretBytes};

/// Writes `bytes` to `path` atomically, readable by its owner only: a temporary file
/// beside it (mode 0600 on Unix), flushed to disk, then renamed over `path`. For files
/// that hold secrets: a key's state file, a depot's keys and shipments.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
