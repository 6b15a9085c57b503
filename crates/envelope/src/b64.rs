//! Strict base64url (RFC 7515 §2: no padding, URL alphabet, canonical trailing bits).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{Error, Result};

pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn decode(text: &str, what: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| Error::Malformed {
        what,
        detail: "not canonical unpadded base64url",
    })
}
