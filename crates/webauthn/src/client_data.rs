//! `CollectedClientData` (WebAuthn §5.8.1): build the exact bytes a client sends,
//! parse what an authenticator's client produced, and hash it.

use aws_lc_rs::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

use crate::{Error, MAX_INPUT};

/// `webauthn.create` (registration).
pub const TYPE_CREATE: &str = "webauthn.create";
/// `webauthn.get` (assertion).
pub const TYPE_GET: &str = "webauthn.get";

/// The members of clientDataJSON an RP checks. Unknown members are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientData {
    /// `webauthn.create` or `webauthn.get`.
    #[serde(rename = "type")]
    pub typ: String,
    /// The challenge exactly as the RP sent it (base64url text, used verbatim).
    pub challenge: String,
    /// The caller's origin, e.g. `https://login.microsoft.com`.
    pub origin: String,
    /// `crossOrigin`; absent means false.
    #[serde(rename = "crossOrigin", default)]
    pub cross_origin: bool,
}

impl ClientData {
    /// Client data for a registration (`webauthn.create`), not cross-origin.
    pub fn create(challenge: impl Into<String>, origin: impl Into<String>) -> Self {
        Self::new(TYPE_CREATE, challenge, origin)
    }

    /// Client data for an assertion (`webauthn.get`), not cross-origin.
    pub fn get(challenge: impl Into<String>, origin: impl Into<String>) -> Self {
        Self::new(TYPE_GET, challenge, origin)
    }

    fn new(typ: &str, challenge: impl Into<String>, origin: impl Into<String>) -> Self {
        Self {
            typ: typ.to_owned(),
            challenge: challenge.into(),
            origin: origin.into(),
            cross_origin: false,
        }
    }

    /// The clientDataJSON bytes, members in the order browsers use:
    /// `{"type":..,"challenge":..,"origin":..,"crossOrigin":false}`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serializing a struct of strings and a bool cannot fail; fall back to an
        // empty object only to avoid a panic path.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Parse clientDataJSON bytes (UTF-8 JSON object).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_INPUT {
            return Err(Error::TooLarge {
                what: "clientDataJSON",
                max: MAX_INPUT,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| Error::ClientDataJson(e.to_string()))
    }

    /// SHA-256 of [`ClientData::to_json_bytes`] (the `clientDataHash` the
    /// authenticator signs over when these exact bytes are sent).
    pub fn hash(&self) -> [u8; 32] {
        hash_bytes(&self.to_json_bytes())
    }
}

/// SHA-256 of clientDataJSON bytes as received: the `clientDataHash`.
/// Verifiers hash the received bytes, never a re-serialization.
pub fn hash_bytes(client_data_json: &[u8]) -> [u8; 32] {
    sha256(client_data_json)
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_builds_the_exact_entra_shape() {
        let cd = ClientData::create("abc-_", "https://login.microsoft.com");
        assert_eq!(
            String::from_utf8(cd.to_json_bytes()).unwrap(),
            r#"{"type":"webauthn.create","challenge":"abc-_","origin":"https://login.microsoft.com","crossOrigin":false}"#
        );
        assert_eq!(ClientData::parse(&cd.to_json_bytes()).unwrap(), cd);
    }

    #[test]
    fn parse_tolerates_unknown_members_and_missing_cross_origin() {
        let cd = ClientData::parse(
            br#"{"type":"webauthn.get","challenge":"x","origin":"https://a","other":1}"#,
        )
        .unwrap();
        assert_eq!(cd, ClientData::get("x", "https://a"));
        assert!(ClientData::parse(b"[1]").is_err());
    }
}
