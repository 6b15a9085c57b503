//! Errors: [`CtapError`] is what a real key answers (CTAP 2.1 status codes, named as the
//! spec names them); [`Error`] adds what can go wrong around the key (its state file,
//! the relying party's options, the host).

use thiserror::Error as ThisError;

/// A CTAP 2.1 status code, as the authenticator returns it. `Display` gives the spec's
/// name, the code and what the user can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum CtapError {
    /// CTAP1_ERR_INVALID_COMMAND (0x01).
    #[error("CTAP1_ERR_INVALID_COMMAND (0x01): this firmware does not support the command")]
    InvalidCommand,
    /// CTAP1_ERR_INVALID_PARAMETER (0x02).
    #[error("CTAP1_ERR_INVALID_PARAMETER (0x02): a parameter is invalid")]
    InvalidParameter,
    /// CTAP2_ERR_MISSING_PARAMETER (0x14).
    #[error("CTAP2_ERR_MISSING_PARAMETER (0x14): a required parameter is missing")]
    MissingParameter,
    /// CTAP2_ERR_CREDENTIAL_EXCLUDED (0x19).
    #[error(
        "CTAP2_ERR_CREDENTIAL_EXCLUDED (0x19): the key already holds a credential in the \
         excludeCredentials list"
    )]
    CredentialExcluded,
    /// CTAP2_ERR_UNSUPPORTED_ALGORITHM (0x26).
    #[error(
        "CTAP2_ERR_UNSUPPORTED_ALGORITHM (0x26): none of pubKeyCredParams is supported (the key \
         supports ES256, alg -7)"
    )]
    UnsupportedAlgorithm,
    /// CTAP2_ERR_KEY_STORE_FULL (0x28).
    #[error("CTAP2_ERR_KEY_STORE_FULL (0x28): no room for another discoverable credential")]
    KeyStoreFull,
    /// CTAP2_ERR_UNSUPPORTED_OPTION (0x2B).
    #[error("CTAP2_ERR_UNSUPPORTED_OPTION (0x2B): the key does not support a requested option")]
    UnsupportedOption,
    /// CTAP2_ERR_NO_CREDENTIALS (0x2E).
    #[error("CTAP2_ERR_NO_CREDENTIALS (0x2E): the key holds no usable credential for this RP")]
    NoCredentials,
    /// CTAP2_ERR_NOT_ALLOWED (0x30).
    #[error("CTAP2_ERR_NOT_ALLOWED (0x30): {0}")]
    NotAllowed(&'static str),
    /// CTAP2_ERR_PIN_INVALID (0x31): wrong PIN; `retries` attempts are left in total.
    #[error("CTAP2_ERR_PIN_INVALID (0x31): wrong PIN, {retries} attempts left")]
    PinInvalid {
        /// Attempts left before the PIN blocks (out of 8).
        retries: u8,
    },
    /// CTAP2_ERR_PIN_BLOCKED (0x32).
    #[error(
        "CTAP2_ERR_PIN_BLOCKED (0x32): no PIN attempts left; only a reset (which erases every \
         credential) makes the key usable again"
    )]
    PinBlocked,
    /// CTAP2_ERR_PIN_AUTH_INVALID (0x33).
    #[error("CTAP2_ERR_PIN_AUTH_INVALID (0x33): the PIN token does not allow this operation")]
    PinAuthInvalid,
    /// CTAP2_ERR_PIN_AUTH_BLOCKED (0x34): three wrong PINs since the key was inserted.
    #[error(
        "CTAP2_ERR_PIN_AUTH_BLOCKED (0x34): three wrong PINs since the key was inserted; remove \
         and reinsert the key to try again ({retries} attempts left)"
    )]
    PinAuthBlocked {
        /// Attempts left before the PIN blocks (out of 8).
        retries: u8,
    },
    /// CTAP2_ERR_PIN_NOT_SET (0x35).
    #[error("CTAP2_ERR_PIN_NOT_SET (0x35): the key has no PIN; set one first")]
    PinNotSet,
    /// CTAP2_ERR_PUAT_REQUIRED (0x36), called PIN_REQUIRED in CTAP 2.0.
    #[error("CTAP2_ERR_PUAT_REQUIRED (0x36): this operation needs user verification; give the PIN")]
    PinRequired,
    /// CTAP2_ERR_PIN_POLICY_VIOLATION (0x37).
    #[error("CTAP2_ERR_PIN_POLICY_VIOLATION (0x37): {0}")]
    PinPolicyViolation(&'static str),
}

impl CtapError {
    /// The one-byte CTAP status code.
    pub fn code(&self) -> u8 {
        match self {
            Self::InvalidCommand => 0x01,
            Self::InvalidParameter => 0x02,
            Self::MissingParameter => 0x14,
            Self::CredentialExcluded => 0x19,
            Self::UnsupportedAlgorithm => 0x26,
            Self::KeyStoreFull => 0x28,
            Self::UnsupportedOption => 0x2B,
            Self::NoCredentials => 0x2E,
            Self::NotAllowed(_) => 0x30,
            Self::PinInvalid { .. } => 0x31,
            Self::PinBlocked => 0x32,
            Self::PinAuthInvalid => 0x33,
            Self::PinAuthBlocked { .. } => 0x34,
            Self::PinNotSet => 0x35,
            Self::PinRequired => 0x36,
            Self::PinPolicyViolation(_) => 0x37,
        }
    }

    /// The spec's name, e.g. `CTAP2_ERR_PIN_INVALID`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidCommand => "CTAP1_ERR_INVALID_COMMAND",
            Self::InvalidParameter => "CTAP1_ERR_INVALID_PARAMETER",
            Self::MissingParameter => "CTAP2_ERR_MISSING_PARAMETER",
            Self::CredentialExcluded => "CTAP2_ERR_CREDENTIAL_EXCLUDED",
            Self::UnsupportedAlgorithm => "CTAP2_ERR_UNSUPPORTED_ALGORITHM",
            Self::KeyStoreFull => "CTAP2_ERR_KEY_STORE_FULL",
            Self::UnsupportedOption => "CTAP2_ERR_UNSUPPORTED_OPTION",
            Self::NoCredentials => "CTAP2_ERR_NO_CREDENTIALS",
            Self::NotAllowed(_) => "CTAP2_ERR_NOT_ALLOWED",
            Self::PinInvalid { .. } => "CTAP2_ERR_PIN_INVALID",
            Self::PinBlocked => "CTAP2_ERR_PIN_BLOCKED",
            Self::PinAuthInvalid => "CTAP2_ERR_PIN_AUTH_INVALID",
            Self::PinAuthBlocked { .. } => "CTAP2_ERR_PIN_AUTH_BLOCKED",
            Self::PinNotSet => "CTAP2_ERR_PIN_NOT_SET",
            Self::PinRequired => "CTAP2_ERR_PUAT_REQUIRED",
            Self::PinPolicyViolation(_) => "CTAP2_ERR_PIN_POLICY_VIOLATION",
        }
    }
}

/// Everything a [`crate::KeyProgrammer`] call can fail with.
#[derive(Debug, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// The key refused the command.
    #[error(transparent)]
    Ctap(#[from] CtapError),
    /// The model or firmware is not one this crate knows an AAGUID for.
    #[error("{0}")]
    UnknownIdentity(String),
    /// The relying party's options (or the client data) cannot be used as given.
    #[error("invalid WebAuthn request: {0}")]
    Request(String),
    /// The key state file is malformed or of another format version.
    #[error("key state: {0}")]
    State(String),
    /// The host could not produce randomness.
    #[error("the system random number generator failed")]
    Rng,
    /// A real key (over USB) could not be reached, or failed in a way its library
    /// reports only as text.
    #[error("the key: {0}")]
    Device(String),
    /// Building a certificate or signature failed (a bug, or a corrupt key).
    #[error("crypto: {0}")]
    Crypto(String),
    /// Reading or writing the state file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
