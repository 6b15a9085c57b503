//! Secrets at rest: AES-256-GCM (aws-lc-rs) under a master key that never enters the
//! database.
//!
//! A sealed value is `"PRK1" || key id (4 bytes) || nonce (12 bytes) || ciphertext+tag`,
//! with the request id and the secret's purpose as associated data, so a sealed value
//! copied to another row or purpose does not open. The key id is the first 4 bytes of
//! SHA-256 over a label and the key ([`Key::id`], shown as 8 hex digits): it names which
//! key sealed a value without revealing the key, and two different keys never share it
//! in practice.
//!
//! Several keys can be configured: the current one (`master_key` / `master_key_file`)
//! seals; old ones (`master_key_old` / `master_key_old_file`) still open what they
//! sealed, so the master key can be rotated: configure the new key as current and the
//! old one as old, run `prereg secrets rotate` (re-seals every value with the current
//! key), then drop the old key. Values sealed before key ids existed (`nonce ||
//! ciphertext+tag`, no prefix) open with whichever configured key sealed them.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
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

    /// The purpose a stored name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::ResponseKey, Self::Pin]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// Why a secret could not be sealed or opened. Messages name key ids, never keys or
/// secrets.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The master key is missing or malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The sealed value does not open under this master key (wrong key, or tampered).
    #[error("a sealed secret does not open under the configured master key")]
    Open,
    /// The value was sealed with a key that is not configured.
    #[error(
        "a sealed secret was sealed with master key id {0}, which is not configured: add that key to master_key_old (or master_key_old_file)"
    )]
    UnknownKey(String),
    /// The OS random source failed.
    #[error("the OS random number generator failed")]
    Rng,
}

/// The marker that starts a sealed value carrying a key id.
const MAGIC: &[u8; 4] = b"PRK1";
/// `MAGIC`, the key id, the nonce.
const HEADER: usize = 4 + 4 + NONCE_LEN;
/// The GCM tag.
const TAG: usize = 16;

/// One 256-bit key. `Debug` prints its id only.
#[derive(Clone)]
pub struct Key {
    bytes: Zeroizing<[u8; 32]>,
    id: [u8; 4],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}, [redacted])", self.id())
    }
}

impl Key {
    fn new(bytes: Zeroizing<[u8; 32]>) -> Self {
        let mut input = Zeroizing::new(b"prereg master key id\0".to_vec());
        input.extend_from_slice(bytes.as_slice());
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
        let mut id = [0u8; 4];
        id.copy_from_slice(&d.as_ref()[..4]);
        Self { bytes, id }
    }

    /// The key's id: 8 hex digits.
    pub fn id(&self) -> String {
        hex(&self.id)
    }

    fn cipher(&self) -> Result<LessSafeKey, SecretError> {
        UnboundKey::new(&AES_256_GCM, self.bytes.as_slice())
            .map(LessSafeKey::new)
            .map_err(|_| SecretError::MasterKey("bad length".into()))
    }

    fn open_raw(&self, aad: &[u8], nonce: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let n = self
            .cipher()
            .ok()?
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .ok()?
            .len();
        buf.truncate(n);
        Some(buf)
    }

    fn parse_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| {
            SecretError::MasterKey("not base64 (make one with `openssl rand -base64 32`)".into())
        })?);
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            SecretError::MasterKey(format!("must be 32 bytes, found {}", bytes.len()))
        })?;
        Ok(Self::new(Zeroizing::new(arr)))
    }
}

/// The master keys: the current one, which seals, and old ones, which only open. `Debug`
/// prints key ids only.
#[derive(Clone)]
pub struct MasterKey {
    current: Key,
    old: Vec<Key>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses base64 (standard) of exactly 32 bytes, surrounding whitespace ignored.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        Ok(Self {
            current: Key::parse_base64(text)?,
            old: Vec::new(),
        })
    }

    /// Reads a file holding the base64 key.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        Self::from_base64(&read(path)?)
    }

    /// A fresh random key (tests, `prereg sandbox --connector-config`).
    pub fn generate() -> Result<Self, SecretError> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(k.as_mut_slice()).map_err(|_| SecretError::Rng)?;
        Ok(Self {
            current: Key::new(k),
            old: Vec::new(),
        })
    }

    /// Adds old keys (opening only): base64 keys separated by commas, whitespace or
    /// newlines. A key equal to the current one is skipped.
    pub fn with_old(mut self, text: &str) -> Result<Self, SecretError> {
        for part in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
        {
            let k = Key::parse_base64(part)?;
            if k.id != self.current.id && !self.old.iter().any(|o| o.id == k.id) {
                self.old.push(k);
            }
        }
        Ok(self)
    }

    /// [`MasterKey::with_old`] from a file (one base64 key per line).
    pub fn with_old_file(self, path: &Path) -> Result<Self, SecretError> {
        let text = read(path)?;
        self.with_old(&text)
    }

    /// The current key as base64, to write a config file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.current.bytes.as_slice()))
    }

    /// The current key's id (8 hex digits).
    pub fn key_id(&self) -> String {
        self.current.id()
    }

    /// The old keys' ids.
    pub fn old_key_ids(&self) -> Vec<String> {
        self.old.iter().map(Key::id).collect()
    }

    /// The id of the key that sealed `sealed`, when it carries one (`None`: the format
    /// from before key ids).
    pub fn sealed_key_id(sealed: &[u8]) -> Option<String> {
        (sealed.len() >= HEADER + TAG && sealed.starts_with(MAGIC)).then(|| hex(&sealed[4..8]))
    }

    /// Whether `sealed` was sealed with the current key in the current format (a
    /// rotation leaves it alone).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        Self::sealed_key_id(sealed).is_some_and(|id| id == self.current.id())
    }

    /// Encrypts `plaintext` bound to `(request_id, purpose)` with the current key.
    pub fn seal(
        &self,
        request_id: &str,
        purpose: Purpose,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| SecretError::Rng)?;
        let aad = aad(request_id, purpose);
        let mut out = Vec::with_capacity(HEADER + plaintext.len() + TAG);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        let mut body = Zeroizing::new(plaintext.to_vec());
        let tag = self
            .current
            .cipher()?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                body.as_mut_slice(),
            )
            .map_err(|_| SecretError::Open)?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts what [`MasterKey::seal`] made for the same `(request_id, purpose)`, with
    /// the key its id names; a value from before key ids with any configured key.
    pub fn open(
        &self,
        request_id: &str,
        purpose: Purpose,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let aad = aad(request_id, purpose);
        let mut unknown = None;
        if let Some(id) = Self::sealed_key_id(sealed) {
            match self.keys().find(|k| k.id == sealed[4..8]) {
                Some(k) => {
                    if let Some(p) = k.open_raw(&aad, &sealed[8..HEADER], &sealed[HEADER..]) {
                        return Ok(p);
                    }
                }
                None => unknown = Some(id),
            }
        }
        // The format from before key ids: `nonce || ciphertext+tag` (whose random nonce
        // may, rarely, start like the marker: tried too when the above did not open).
        if sealed.len() >= NONCE_LEN + TAG {
            let (nonce, ct) = sealed.split_at(NONCE_LEN);
            if let Some(p) = self.keys().find_map(|k| k.open_raw(&aad, nonce, ct)) {
                return Ok(p);
            }
        }
        Err(match unknown {
            Some(id) => SecretError::UnknownKey(id),
            None => SecretError::Open,
        })
    }

    fn keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(&self.old)
    }
}

fn read(path: &Path) -> Result<Zeroizing<String>, SecretError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| SecretError::MasterKey(format!("cannot read {}: {e}", path.display())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn aad(request_id: &str, purpose: Purpose) -> Vec<u8> {
    format!("prereg-connector/v1/{}/{request_id}", purpose.as_str()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format from before key ids, as the previous release (RustCrypto `aes-gcm`)
    /// wrote it: `nonce || ciphertext+tag`.
    fn legacy_seal(k: &MasterKey, request_id: &str, purpose: Purpose, pt: &[u8]) -> Vec<u8> {
        let nonce = [7u8; NONCE_LEN];
        let mut body = pt.to_vec();
        let tag = k
            .current
            .cipher()
            .unwrap()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad(request_id, purpose)),
                &mut body,
            )
            .unwrap();
        [&nonce[..], &body, tag.as_ref()].concat()
    }

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
        assert_eq!(k.key_id(), again.key_id());
        assert_eq!(k.key_id().len(), 8);
    }

    #[test]
    fn an_old_key_opens_what_it_sealed_and_the_current_key_seals() {
        let old = MasterKey::generate().unwrap();
        let sealed_old = old.seal("r1", Purpose::Pin, b"482917").unwrap();
        assert_eq!(MasterKey::sealed_key_id(&sealed_old).unwrap(), old.key_id());
        let ring = MasterKey::generate()
            .unwrap()
            .with_old(&old.to_base64())
            .unwrap();
        assert_eq!(ring.old_key_ids(), [old.key_id()]);
        assert!(!ring.is_current(&sealed_old));
        assert_eq!(
            ring.open("r1", Purpose::Pin, &sealed_old)
                .unwrap()
                .as_slice(),
            b"482917"
        );
        let resealed = ring.seal("r1", Purpose::Pin, b"482917").unwrap();
        assert!(ring.is_current(&resealed));
        assert!(old.open("r1", Purpose::Pin, &resealed).is_err());
    }

    #[test]
    fn a_value_from_before_key_ids_opens_with_the_key_that_sealed_it() {
        let legacy = MasterKey::generate().unwrap();
        let sealed = legacy_seal(&legacy, "r1", Purpose::ResponseKey, b"{\"kty\":\"EC\"}");
        assert_eq!(MasterKey::sealed_key_id(&sealed), None);
        assert_eq!(
            legacy
                .open("r1", Purpose::ResponseKey, &sealed)
                .unwrap()
                .as_slice(),
            b"{\"kty\":\"EC\"}"
        );
        let ring = MasterKey::generate()
            .unwrap()
            .with_old(&format!("  {}\n", legacy.to_base64().as_str()))
            .unwrap();
        assert!(ring.open("r1", Purpose::ResponseKey, &sealed).is_ok());
        assert!(!ring.is_current(&sealed));
    }

    #[test]
    fn an_unknown_key_id_is_named_and_the_secret_is_not() {
        let gone = MasterKey::generate().unwrap();
        let sealed = gone.seal("r1", Purpose::Pin, b"482917").unwrap();
        let k = MasterKey::generate().unwrap();
        let e = k.open("r1", Purpose::Pin, &sealed).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, SecretError::UnknownKey(ref id) if *id == gone.key_id()));
        assert!(msg.contains(&gone.key_id()), "{msg}");
        assert!(msg.contains("master_key_old"), "{msg}");
        assert!(!msg.contains("482917"));
        assert!(!msg.contains(gone.to_base64().as_str()));
    }
}
