//! Secret values (the PIN, private key scalars, PIN tokens): zeroized on drop, `Debug`
//! prints `[redacted]`, and comparisons run in constant time.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::error::Result;

/// A PIN as the user types it. Never printed, never stored: the key keeps only a salted
/// hash (see [`crate::VirtualYubiKey`]).
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wraps a PIN. Length rules are the key's to enforce, not this type's.
    pub fn new(pin: impl Into<String>) -> Self {
        Self(Zeroizing::new(pin.into()))
    }

    /// The PIN's UTF-8 bytes (what CTAP hashes).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The PIN as text (for a library that takes it so, such as the USB key's).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Length in Unicode code points (what CTAP's minimum PIN length counts).
    pub fn code_points(&self) -> usize {
        self.0.chars().count()
    }
}

impl From<&str> for Pin {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

/// Secret bytes of a fixed purpose (a private scalar, hmac-secret CredRandom, a token).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps bytes; the caller's copy should be zeroized by the caller.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// `len` bytes from the OS generator.
    pub fn random(len: usize) -> Result<Self> {
        let mut v = Zeroizing::new(vec![0u8; len]);
        crate::crypto::fill_random(&mut v)?;
        Ok(Self(v))
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Zeroize for SecretBytes {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// `len` random bytes (not secret).
pub(crate) fn random_bytes(len: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    crate::crypto::fill_random(&mut v)?;
    Ok(v)
}

/// Constant-time equality (`subtle`); lengths are not secret here.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_pin_or_secret_bytes() {
        let pin = Pin::new("482915");
        assert!(!format!("{pin:?}").contains("482915"));
        let s = SecretBytes::new(vec![0xAB; 4]);
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("171") && !dbg.to_lowercase().contains("ab"));
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
