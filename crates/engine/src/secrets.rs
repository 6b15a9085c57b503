//! Secrets at rest: AES-256-GCM under a master key that never enters the database.
//!
//! Each sealed value is `nonce (12 bytes) || ciphertext+tag`, with the request id and
//! the secret's purpose as associated data, so a sealed value copied to another row or
//! purpose does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::path::Path;
use zeroize::Zeroizing;

/// The kinds of secret the connector keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The response private key (P-384 JWK) for one request.
    ResponseKey,
    /// The PIN, once opened, until delivered.
    Pin,
}

impl Purpose {
    /// Stable name, stored beside the sealed bytes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ResponseKey => "response_key",
            Self::Pin => "pin",
        }
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The master key is missing or malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The sealed value does not open under this master key (wrong key, or tampered).
    #[error("a sealed secret does not open under the configured master key")]
    Open,
    /// The OS random source failed.
    #[error("the OS random number generator failed")]
    Rng,
}

/// The 256-bit master key. `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses base64 (standard) of exactly 32 bytes, surrounding whitespace ignored.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
            SecretError::MasterKey("not base64 (make one with `openssl rand -base64 32`)".into())
        })?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SecretError::MasterKey(format!("must be 32 bytes, found {}", bytes.len()))
        })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// Reads a file holding the base64 key.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let text =
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                SecretError::MasterKey(format!("cannot read {}: {e}", path.display()))
            })?);
        Self::from_base64(&text)
    }

    /// A fresh random key (tests, `prereg sandbox --connector-config`).
    pub fn generate() -> Result<Self, SecretError> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(k.as_mut_slice()).map_err(|_| SecretError::Rng)?;
        Ok(Self(k))
    }

    /// The key as base64, to write a config file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_slice()))
    }

    /// Encrypts `plaintext` bound to `(request_id, purpose)`.
    pub fn seal(
        &self,
        request_id: &str,
        purpose: Purpose,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SecretError> {
        let gcm = self.cipher()?;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| SecretError::Rng)?;
        let aad = aad(request_id, purpose);
        let ct = gcm
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Open)?;
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] made for the same `(request_id, purpose)`.
    pub fn open(
        &self,
        request_id: &str,
        purpose: Purpose,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        if sealed.len() < 12 + 16 {
            return Err(SecretError::Open);
        }
        let (nonce, ct) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Open)?;
        let gcm = self.cipher()?;
        let aad = aad(request_id, purpose);
        gcm.decrypt(&Nonce::from(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| SecretError::Open)
    }

    fn cipher(&self) -> Result<Aes256Gcm, SecretError> {
        Aes256Gcm::new_from_slice(self.0.as_slice())
            .map_err(|_| SecretError::MasterKey("bad length".into()))
    }
}

fn aad(request_id: &str, purpose: Purpose) -> Vec<u8> {
    format!("prereg-connector/v1/{}/{request_id}", purpose.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_pin_opens_only_for_its_request_and_purpose() {
        let k = MasterKey::generate().unwrap();
        let sealed = k.seal("r1", Purpose::Pin, b"123456").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"123456"));
        assert_eq!(
            k.open("r1", Purpose::Pin, &sealed).unwrap().as_slice(),
            b"123456"
        );
        assert!(k.open("r2", Purpose::Pin, &sealed).is_err());
        assert!(k.open("r1", Purpose::ResponseKey, &sealed).is_err());
        let other = MasterKey::generate().unwrap();
        assert!(other.open("r1", Purpose::Pin, &sealed).is_err());
    }

    #[test]
    fn master_key_must_be_32_bytes_of_base64() {
        assert!(MasterKey::from_base64("AAAA").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
        let k = MasterKey::generate().unwrap();
        let again = MasterKey::from_base64(&k.to_base64()).unwrap();
        let s = k.seal("r", Purpose::Pin, b"x").unwrap();
        assert!(again.open("r", Purpose::Pin, &s).is_ok());
        assert_eq!(format!("{k:?}"), "MasterKey([redacted])");
    }
}
