//! WebAuthn options and responses in their JSON form (WebAuthn L3 §5.1, §5.4, §5.5
//! JSON serialization), shaped to what Microsoft Graph returns (entra.md §1) and
//! what it accepts back (entra.md §2).
//!
//! Every type tolerates unknown members (Graph adds `@odata.type` annotations).
//! Binary members are base64url without padding on output and lenient on input;
//! `challenge` stays a string because it goes into clientDataJSON verbatim, and
//! credential descriptor ids stay strings because Entra sends them in three
//! encodings (see [`crate::b64::credential_id_candidates`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::b64;

/// COSE algorithm -7: ECDSA with SHA-256 (P-256).
pub const ALG_ES256: i64 = -7;
/// COSE algorithm -35: ECDSA with SHA-384 (P-384).
pub const ALG_ES384: i64 = -35;
/// COSE algorithm -257: RSASSA-PKCS1-v1_5 with SHA-256.
pub const ALG_RS256: i64 = -257;

/// Graph's `creationOptions` body: `{ "challengeTimeoutDateTime", "publicKey" }`
/// (not wrapped in `value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationOptionsResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_timeout_date_time: Option<String>,
    pub public_key: PublicKeyCredentialCreationOptions,
}

/// `PublicKeyCredentialCreationOptionsJSON`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyCredentialCreationOptions {
    pub rp: RelyingParty,
    pub user: User,
    /// Used verbatim as clientData `challenge`.
    pub challenge: String,
    #[serde(default)]
    pub pub_key_cred_params: Vec<PubKeyCredParam>,
    /// Milliseconds; Graph has sent 0 and 60000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub exclude_credentials: Vec<CredentialDescriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_selection: Option<AuthenticatorSelection>,
    /// `none`, `indirect`, `direct` or `enterprise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<CreationExtensions>,
}

impl PublicKeyCredentialCreationOptions {
    /// Parse either Graph's wrapper (`{"publicKey": {...}}`) or bare options.
    pub fn from_json(bytes: &[u8]) -> Result<Self, crate::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Wrapped(Box<CreationOptionsResponse>),
            Bare(Box<PublicKeyCredentialCreationOptions>),
        }
        if bytes.len() > crate::MAX_INPUT {
            return Err(crate::Error::TooLarge {
                what: "creation options",
                max: crate::MAX_INPUT,
            });
        }
        match serde_json::from_slice::<Either>(bytes) {
            Ok(Either::Wrapped(w)) => Ok(w.public_key),
            Ok(Either::Bare(b)) => Ok(*b),
            Err(e) => Err(crate::Error::OptionsJson(e.to_string())),
        }
    }

    /// The RP id: `rp.id`, which Entra always sends.
    pub fn rp_id(&self) -> Option<&str> {
        self.rp.id.as_deref()
    }

    /// Whether the options ask for user verification (`userVerification: required`).
    pub fn requires_uv(&self) -> bool {
        self.authenticator_selection
            .as_ref()
            .and_then(|s| s.user_verification.as_deref())
            == Some("required")
    }
}

/// `PublicKeyCredentialRpEntity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingParty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: String,
}

/// `PublicKeyCredentialUserEntityJSON`: `id` is the user handle (base64url bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(with = "b64::serde_bytes")]
    pub id: Vec<u8>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub display_name: String,
}

/// `PublicKeyCredentialParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubKeyCredParam {
    #[serde(rename = "type")]
    pub typ: String,
    pub alg: i64,
}

/// `PublicKeyCredentialDescriptorJSON`. `id` is kept as sent; decode it with
/// [`CredentialDescriptor::id_candidates`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialDescriptor {
    #[serde(rename = "type", default = "public_key")]
    pub typ: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<String>,
}

impl CredentialDescriptor {
    /// A descriptor for credential id bytes (base64url, no padding).
    pub fn new(id: &[u8]) -> Self {
        Self {
            typ: public_key(),
            id: b64::encode(id),
            transports: Vec::new(),
        }
    }

    /// Every plausible byte reading of `id` (see [`b64::credential_id_candidates`]).
    pub fn id_candidates(&self) -> Vec<Vec<u8>> {
        b64::credential_id_candidates(&self.id)
    }

    /// Whether `credential_id` is one of the readings of `id`.
    pub fn matches(&self, credential_id: &[u8]) -> bool {
        self.id_candidates().iter().any(|c| c == credential_id)
    }
}

fn public_key() -> String {
    "public-key".to_owned()
}

/// `AuthenticatorSelectionCriteria`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorSelection {
    /// `platform` or `cross-platform`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_resident_key: Option<bool>,
    /// `discouraged`, `preferred` or `required` (L2+; Entra omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_key: Option<String>,
    /// `required`, `preferred` or `discouraged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<String>,
}

/// Creation extensions as Microsoft sends them (entra.md §1), plus any others.
///
/// `credentialProtectionPolicy` is `userVerificationOptional` (credProtect 1),
/// `userVerificationOptionalWithCredentialIDList` (2) or `userVerificationRequired` (3).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationExtensions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_create_secret: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_credential_protection_policy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_protection_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred_props: Option<bool>,
    /// Members not named above, kept as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl CreationExtensions {
    /// The CTAP credProtect level (1..=3) for `credentialProtectionPolicy`, if named.
    pub fn cred_protect_level(&self) -> Option<u8> {
        match self.credential_protection_policy.as_deref()? {
            "userVerificationOptional" => Some(1),
            "userVerificationOptionalWithCredentialIDList" => Some(2),
            "userVerificationRequired" => Some(3),
            _ => None,
        }
    }
}

/// `PublicKeyCredentialRequestOptionsJSON`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyCredentialRequestOptions {
    /// Used verbatim as clientData `challenge`.
    pub challenge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rp_id: Option<String>,
    #[serde(default)]
    pub allow_credentials: Vec<CredentialDescriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verification: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extensions: Map<String, Value>,
}

/// `RegistrationResponseJSON`: what a client returns from `create()` and what
/// Graph's `fido2Methods` POST takes as `publicKeyCredential`. DSI omits `type`,
/// `rawId` and `authenticatorAttachment`, so those are optional here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponse {
    #[serde(with = "b64::serde_bytes")]
    pub id: Vec<u8>,
    #[serde(
        default,
        with = "b64::serde_opt_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub raw_id: Option<Vec<u8>>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    pub response: AttestationResponse,
    #[serde(default)]
    pub client_extension_results: Map<String, Value>,
}

/// `AuthenticatorAttestationResponseJSON` (the members an RP needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponse {
    #[serde(rename = "clientDataJSON", with = "b64::serde_bytes")]
    pub client_data_json: Vec<u8>,
    #[serde(with = "b64::serde_bytes")]
    pub attestation_object: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<String>,
}

/// `AuthenticationResponseJSON`: what a client returns from `get()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    #[serde(with = "b64::serde_bytes")]
    pub id: Vec<u8>,
    #[serde(
        default,
        with = "b64::serde_opt_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub raw_id: Option<Vec<u8>>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    pub response: AuthenticatorAssertionResponse,
    #[serde(default)]
    pub client_extension_results: Map<String, Value>,
}

/// `AuthenticatorAssertionResponseJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorAssertionResponse {
    #[serde(rename = "clientDataJSON", with = "b64::serde_bytes")]
    pub client_data_json: Vec<u8>,
    #[serde(with = "b64::serde_bytes")]
    pub authenticator_data: Vec<u8>,
    #[serde(with = "b64::serde_bytes")]
    pub signature: Vec<u8>,
    #[serde(
        default,
        with = "b64::serde_opt_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_handle: Option<Vec<u8>>,
}
