//! base64url helpers: encode without padding; decode leniently.
//!
//! Decoding accepts base64url or standard base64, with or without `=` padding,
//! because WebAuthn data reaches us from clients that disagree on the alphabet
//! (see entra.md: `excludeCredentials[].id`). Encoding is always base64url
//! without padding, as WebAuthn's JSON forms require.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Error;

/// base64url without padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode base64url (or standard base64), with or without trailing `=` padding.
///
/// `what` names the field for the error message.
pub fn decode(what: &'static str, text: &str) -> Result<Vec<u8>, Error> {
    let trimmed = text.trim_end_matches('=');
    let normalized: String = trimmed
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    URL_SAFE_NO_PAD
        .decode(normalized.as_bytes())
        .map_err(|_| Error::Base64 { what })
}

/// Every plausible reading of a credential id as Entra may send it: base64url,
/// standard base64 (with or without `=`), or the .NET `UrlTokenEncode` form
/// (unpadded base64url followed by one digit `0`..`2` giving the number of `=`
/// stripped).
///
/// The forms are ambiguous: a 32-byte id in .NET form (`...1`) is also valid plain
/// base64 of 33 bytes. So this returns the plain reading first and the .NET reading
/// second when both parse; callers match candidates against ids they know.
/// An empty result means no reading parsed.
pub fn credential_id_candidates(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(bytes) = decode("credential id", text) {
        out.push(bytes);
    }
    let pad = match text.as_bytes().last() {
        Some(b'0') => 0,
        Some(b'1') => 1,
        Some(b'2') => 2,
        _ => return out,
    };
    let body_len = text.len().saturating_sub(1);
    // .NET form: body length plus the stripped padding is a multiple of four.
    if (body_len + pad).is_multiple_of(4)
        && let Some(Ok(bytes)) = text.get(..body_len).map(|b| decode("credential id", b))
        && !out.contains(&bytes)
    {
        out.push(bytes);
    }
    out
}

/// serde adapter: `Vec<u8>` as base64url text (lenient on input).
pub mod serde_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::decode("bytes", &text).map_err(serde::de::Error::custom)
    }
}

/// serde adapter: `Option<Vec<u8>>` as optional base64url text (lenient on input).
pub mod serde_opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&super::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::decode("bytes", &text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_all_three_forms_entra_sends() {
        let want = vec![0xfb, 0xff, 0x01];
        assert_eq!(decode("x", "-_8B").unwrap(), want);
        assert_eq!(decode("x", "+/8B").unwrap(), want);
        assert_eq!(decode("x", "AQ==").unwrap(), vec![1]);
        assert_eq!(encode([0xfb, 0xff, 0x01]), "-_8B");
        assert!(decode("x", "a").is_err());
        assert!(decode("x", "a!b").is_err());
    }

    #[test]
    fn credential_id_candidates_cover_dotnet_padding_digit() {
        // "AQ==" in UrlTokenEncode form is "AQ2": only the .NET reading parses.
        assert_eq!(credential_id_candidates("AQ2"), vec![vec![1]]);
        assert_eq!(credential_id_candidates("AQID0"), vec![vec![1, 2, 3]]);
        // "AQI=" is "AQI1": plain base64 of three bytes, or .NET of two.
        assert_eq!(
            credential_id_candidates("AQI1"),
            vec![vec![1, 2, 0x35], vec![1, 2]]
        );
        assert_eq!(credential_id_candidates("AQ=="), vec![vec![1]]);
        assert!(credential_id_candidates("AQ3").is_empty());
    }
}
