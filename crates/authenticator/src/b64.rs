//! base64url for the key file, on the `webauthn` crate's helpers, plus a serde adapter
//! for secret bytes that zeroizes the encoded text.

use serde::{Deserialize, Deserializer, Serializer};

/// base64url without padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    webauthn::b64::encode(bytes)
}

/// Decodes base64url (or standard base64), with or without padding.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    webauthn::b64::decode("key file", s).ok()
}

pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode(bytes))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    decode(&s).ok_or_else(|| serde::de::Error::custom("not base64url"))
}

/// The same for secret bytes: the encoded text is zeroized after use.
pub(crate) mod secret {
    use super::*;
    use crate::secret::SecretBytes;
    use zeroize::Zeroizing;

    pub(crate) fn serialize<S: Serializer>(v: &SecretBytes, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(encode(v.expose()));
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretBytes, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        decode(&s)
            .map(SecretBytes::new)
            .ok_or_else(|| serde::de::Error::custom("not base64url"))
    }
}
