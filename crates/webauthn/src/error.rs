//! One error type naming the check that failed.

/// Why WebAuthn data was refused. Each variant names one check, so callers and
/// tests can match on it; the message tells an admin what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{what} is larger than the {max}-byte limit")]
    TooLarge { what: &'static str, max: usize },
    #[error("{what} is not valid base64url")]
    Base64 { what: &'static str },
    #[error("clientDataJSON is not the expected JSON object: {0}")]
    ClientDataJson(String),
    #[error("WebAuthn options JSON is malformed: {0}")]
    OptionsJson(String),
    #[error("clientData type is {found:?}, expected {expected:?}")]
    ClientDataType {
        expected: &'static str,
        found: String,
    },
    #[error(
        "clientData challenge is not the challenge that was issued (stale, replayed, or made for another request)"
    )]
    ChallengeMismatch,
    #[error(
        "clientData origin {found:?} is not an allowed origin; pass the origin the client used (default https://<rp-id>)"
    )]
    OriginMismatch { found: String },
    #[error("clientData crossOrigin is true; cross-origin ceremonies are not allowed")]
    CrossOrigin,
    #[error("CBOR in {what} is malformed: {detail}")]
    Cbor { what: &'static str, detail: String },
    #[error("{what} is truncated")]
    Truncated { what: &'static str },
    #[error("{what} has {count} unexpected trailing bytes")]
    TrailingBytes { what: &'static str, count: usize },
    #[error(
        "authenticator data rpIdHash is not SHA-256 of the RP id: the credential was made for another RP id"
    )]
    RpIdHashMismatch,
    #[error("the user-present (UP) flag is clear")]
    UserPresenceRequired,
    #[error("user verification is required but the UV flag is clear")]
    UserVerificationRequired,
    #[error("backup-state (BS) is set while backup-eligible (BE) is clear")]
    InvalidBackupFlags,
    #[error("registration has no attested credential data (AT flag clear)")]
    MissingCredentialData,
    #[error("assertion authenticator data unexpectedly carries attested credential data")]
    UnexpectedCredentialData,
    #[error("the ED flag and the presence of extensions disagree")]
    ExtensionFlagMismatch,
    #[error("COSE key is invalid: {0}")]
    CoseKey(String),
    #[error("COSE algorithm {0} is not supported or not allowed")]
    UnsupportedAlgorithm(i64),
    #[error("assertion signature does not verify with the credential public key")]
    AssertionSignature,
    #[error("attestation format {0:?} is not supported")]
    UnsupportedFormat(String),
    #[error("attestation statement is malformed: {0}")]
    AttestationStatement(String),
    #[error("attestation alg {stmt} does not match the key's algorithm {key}")]
    AttestationAlgMismatch { stmt: i64, key: i64 },
    #[error("attestation signature does not verify")]
    AttestationSignature,
    #[error("attestation certificate is malformed or unsupported: {0}")]
    Certificate(String),
    #[error("attestation leaf certificate breaks WebAuthn §8.2.1: {0}")]
    LeafRequirements(String),
    #[error("certificate {index} in x5c is not validly signed by {issuer}")]
    ChainSignature { index: usize, issuer: String },
    #[error("certificate {index} in x5c is outside its validity period at the given time")]
    CertificateExpired { index: usize },
    #[error(
        "the attestation chain does not reach a configured trust root; add the vendor's attestation root (e.g. from FIDO MDS) or check that the key is genuine"
    )]
    UntrustedChain,
    #[error(
        "attestation is required but the authenticator sent {0}; use a key that returns packed attestation with a certificate chain, or relax the attestation policy"
    )]
    AttestationRequired(String),
    #[error("AAGUID in the attestation certificate does not match authenticator data")]
    AaguidMismatch,
    #[error("AAGUID {0} is not in the allowed list")]
    AaguidNotAllowed(uuid::Uuid),
    #[error(
        "sign count did not increase ({stored} stored, {received} received): possible cloned authenticator"
    )]
    SignCountNotIncreased { stored: u32, received: u32 },
    #[error("trust root PEM is invalid: {0}")]
    TrustRoot(String),
}
