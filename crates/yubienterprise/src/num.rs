//! Numbers that some callers send as JSON strings (Okta's fulfilment data carries
//! `productId`, `inventoryProductId` as strings); the API accepts both.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrString {
    Num(u64),
    Str(String),
}

pub(crate) fn u32_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match NumOrString::deserialize(d)? {
        NumOrString::Num(n) => u32::try_from(n).map_err(serde::de::Error::custom),
        NumOrString::Str(s) => s
            .trim()
            .parse::<u32>()
            .map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}"))),
    }
}

pub(crate) fn opt_u8_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    match Option::<NumOrString>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrString::Num(n)) => u8::try_from(n).map(Some).map_err(serde::de::Error::custom),
        Some(NumOrString::Str(s)) => s
            .trim()
            .parse::<u8>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}"))),
    }
}
