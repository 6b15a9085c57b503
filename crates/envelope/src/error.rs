//! The one error type. Each variant names the step that failed; none carries plaintext or
//! key material, only names of header parameters, key ids and fixed descriptions.

/// Why an envelope operation failed. Every failure on attacker-controlled input ends up
/// here; nothing in this crate panics on input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is over [`crate::MAX_INPUT`] bytes; nothing was parsed.
    #[error("input is larger than {max} bytes")]
    TooLarge {
        /// The cap that was exceeded.
        max: usize,
    },
    /// The token or document is not well formed (wrong number of parts, bad base64url,
    /// not JSON, wrong field lengths).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which structure: "JWE", "JWS", "JWK", "JWKS", "header", ...
        what: &'static str,
        /// What is wrong with it.
        detail: &'static str,
    },
    /// A header parameter names an algorithm, encryption, curve or feature outside the
    /// profile (`none`, `dir`, `ECDH-ES`, RSA, HMAC, `A128KW`, `zip`, `crit`, ...).
    #[error("unsupported {which} {value:?}: the profile allows only {allowed}")]
    UnsupportedAlgorithm {
        /// The header parameter (`alg`, `enc`, `crv`, `zip`, ...).
        which: &'static str,
        /// The value found (truncated; header values are public).
        value: String,
        /// What the profile accepts there.
        allowed: &'static str,
    },
    /// A protected header is missing a parameter, carries one the profile does not know,
    /// or has the wrong value for `cty`/`typ`.
    #[error("header: {0}")]
    Header(String),
    /// A key (JWK) is not a valid P-384 key of the profile: wrong `kty`/`crv`, a point
    /// off the curve, a private scalar that does not match its public point, wrong `use`.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The recipient `kid` names no key held by the caller.
    #[error("no key with kid {kid:?} is held here")]
    UnknownKid {
        /// The `kid` from the header.
        kid: String,
    },
    /// The ephemeral public key (`epk`) is not a valid P-384 point (off the curve, the
    /// identity, or coordinates of the wrong size), so no key agreement is possible.
    #[error("key agreement failed: epk is not a valid P-384 point")]
    KeyAgreement,
    /// AES key unwrap failed: the content key was not wrapped for this key.
    #[error("key unwrap failed: the content key was not wrapped for this recipient key")]
    Unwrap,
    /// AES-GCM authentication failed: ciphertext, IV, tag or header was altered.
    #[error("decryption failed: ciphertext or header was altered")]
    Decrypt,
    /// The JWS signature does not verify with the key its `kid` names.
    #[error("signature does not verify")]
    Signature,
    /// The JWS `kid` is not in the trusted signing JWKS.
    #[error("signer {kid:?} is not in the trusted signing JWKS")]
    UntrustedSigner {
        /// The `kid` from the JWS header.
        kid: String,
    },
    /// The payload's `typ` is not the message type expected here.
    #[error("wrong message type: expected {expected}, found {found:?}")]
    WrongMessageType {
        /// The `typ` the caller expected.
        expected: &'static str,
        /// The `typ` found (truncated).
        found: String,
    },
    /// The response's `request_hash` does not match the request it is opened against.
    #[error("request_hash does not match the request: this response answers another request")]
    RequestHashMismatch,
    /// The credential and PIN responses for one key carry different serials.
    #[error("credential and PIN responses name different key serials")]
    SerialMismatch,
    /// The payload is not a valid message of its type. The detail names the field or
    /// rule, never a value.
    #[error("payload: {0}")]
    Payload(String),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// Signing or encryption failed inside the primitive (should not happen).
    #[error("cryptographic primitive failed: {0}")]
    Crypto(&'static str),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortens an attacker-chosen but public string (a header value) for an error message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

/// Describes a `serde_json` error without its text, which may quote payload values.
pub(crate) fn json_error(what: &str, e: &serde_json::Error) -> Error {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "could not be read",
        Category::Syntax => "is not valid JSON",
        Category::Eof => "is truncated JSON",
        Category::Data => "does not have the expected fields or types",
    };
    if e.line() == 0 {
        Error::Payload(format!("{what} {kind}"))
    } else {
        Error::Payload(format!(
            "{what} {kind} (line {}, column {})",
            e.line(),
            e.column()
        ))
    }
}
