//! Ids: "22-character Base58-like strings" (api-tracking.html), for shipments,
//! organisations, users and shipment items.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The Bitcoin base58 alphabet (no `0`, `O`, `I`, `l`).
pub const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// Every id is exactly this long.
pub const ID_LEN: usize = 22;

/// A 22-character base58 id. Parse, don't validate: one that exists is well formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Base58Id(String);

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a 22-character base58 id")]
pub struct InvalidId(pub String);

impl Base58Id {
    /// Parses an id.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        if s.len() == ID_LEN && s.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(Self(s.to_owned()))
        } else {
            let shown: String = s.chars().take(40).collect();
            Err(InvalidId(shown))
        }
    }

    /// Builds an id from 22 random bytes (the caller brings the randomness, so this crate
    /// stays free of I/O). Uses rejection-free reduction; the bias (256 mod 58) does not
    /// matter for identifiers.
    pub fn from_random(bytes: [u8; ID_LEN]) -> Self {
        let s = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        Self(s)
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Base58Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Base58Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_ids_parse() {
        for s in [
            "U89bvfKKCtQfhnqaFBrAZW",
            "MZ9bmEYFpKKviHe8nSiq4W",
            "UEayb8v4LTHdAshpnk1gMd",
        ] {
            assert_eq!(Base58Id::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn wrong_length_or_alphabet_is_refused() {
        assert!(Base58Id::parse("U89bvfKKCtQfhnqaFBrAZ").is_err());
        assert!(Base58Id::parse("U89bvfKKCtQfhnqaFBrAZW1").is_err());
        assert!(Base58Id::parse("O89bvfKKCtQfhnqaFBrAZW").is_err());
        assert!(Base58Id::parse("").is_err());
    }

    #[test]
    fn random_ids_are_valid() {
        let id = Base58Id::from_random([255; ID_LEN]);
        assert!(Base58Id::parse(id.as_str()).is_ok());
    }
}
