//! Authenticator data (WebAuthn §6.1): parsed strictly, so every byte is accounted for.

use ciborium::Value;
use uuid::Uuid;

use crate::cbor;
use crate::cose::CoseKey;
use crate::{Error, MAX_INPUT};

const WHAT: &str = "authenticator data";
/// WebAuthn L3 §6.1 caps credential ids at 1023 bytes.
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;

/// The flags byte (WebAuthn §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    pub const UP: u8 = 0x01;
    pub const UV: u8 = 0x04;
    pub const BE: u8 = 0x08;
    pub const BS: u8 = 0x10;
    pub const AT: u8 = 0x40;
    pub const ED: u8 = 0x80;

    /// User present.
    pub fn up(self) -> bool {
        self.0 & Self::UP != 0
    }
    /// User verified.
    pub fn uv(self) -> bool {
        self.0 & Self::UV != 0
    }
    /// Backup eligible.
    pub fn be(self) -> bool {
        self.0 & Self::BE != 0
    }
    /// Backup state (backed up).
    pub fn bs(self) -> bool {
        self.0 & Self::BS != 0
    }
    /// Attested credential data included.
    pub fn at(self) -> bool {
        self.0 & Self::AT != 0
    }
    /// Extension data included.
    pub fn ed(self) -> bool {
        self.0 & Self::ED != 0
    }
}

/// Parsed authenticator data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorData {
    pub rp_id_hash: [u8; 32],
    pub flags: Flags,
    pub sign_count: u32,
    /// Present exactly when the AT flag is set.
    pub attested_credential: Option<AttestedCredential>,
    /// Present exactly when the ED flag is set.
    pub extensions: Option<AuthenticatorExtensions>,
}

/// Attested credential data (WebAuthn §6.5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredential {
    pub aaguid: Uuid,
    pub credential_id: Vec<u8>,
    /// The COSE_Key bytes exactly as they appear in authenticator data.
    pub public_key_cose: Vec<u8>,
    pub public_key: CoseKey,
}

/// Authenticator extension outputs. The common ones are decoded; all of them stay
/// available as the raw CBOR map.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticatorExtensions {
    /// `credProtect` level (1..=3).
    pub cred_protect: Option<u8>,
    /// `hmac-secret` (true when the authenticator enabled it at registration).
    pub hmac_secret: Option<bool>,
    /// `minPinLength`.
    pub min_pin_length: Option<u64>,
    /// The extensions map as CBOR bytes, exactly as received.
    pub raw_cbor: Vec<u8>,
}

impl AuthenticatorData {
    /// Parse authenticator data; truncation, bad lengths, malformed CBOR, flags that
    /// disagree with the content, and trailing bytes are all errors.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_INPUT {
            return Err(Error::TooLarge {
                what: WHAT,
                max: MAX_INPUT,
            });
        }
        let mut r = Reader { bytes, pos: 0 };
        let rp_id_hash: [u8; 32] = r.array()?;
        let [flags] = r.array::<1>()?;
        let flags = Flags(flags);
        let sign_count = u32::from_be_bytes(r.array()?);

        let attested_credential = if flags.at() {
            let aaguid = Uuid::from_bytes(r.array()?);
            let id_len = usize::from(u16::from_be_bytes(r.array()?));
            if id_len > MAX_CREDENTIAL_ID_LEN {
                return Err(Error::Cbor {
                    what: WHAT,
                    detail: format!(
                        "credential id length {id_len} exceeds {MAX_CREDENTIAL_ID_LEN}"
                    ),
                });
            }
            let credential_id = r.take(id_len)?.to_vec();
            let (value, used) = cbor::decode_prefix("credential public key", r.rest())?;
            let public_key_cose = r.take(used)?.to_vec();
            let public_key = CoseKey::from_value(&value)?;
            Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key_cose,
                public_key,
            })
        } else {
            None
        };

        let extensions = if flags.ed() {
            if r.rest().is_empty() {
                return Err(Error::ExtensionFlagMismatch);
            }
            let (value, used) = cbor::decode_prefix("authenticator extensions", r.rest())?;
            let raw_cbor = r.take(used)?.to_vec();
            Some(AuthenticatorExtensions::from_value(&value, raw_cbor)?)
        } else {
            None
        };

        let trailing = r.rest().len();
        if trailing != 0 {
            // Data after the fixed part with neither AT nor ED set most likely means
            // the flags lie about the content.
            if !flags.at() && !flags.ed() {
                return Err(Error::ExtensionFlagMismatch);
            }
            return Err(Error::TrailingBytes {
                what: WHAT,
                count: trailing,
            });
        }
        if flags.bs() && !flags.be() {
            return Err(Error::InvalidBackupFlags);
        }
        Ok(Self {
            rp_id_hash,
            flags,
            sign_count,
            attested_credential,
            extensions,
        })
    }
}

impl AuthenticatorExtensions {
    fn from_value(value: &Value, raw_cbor: Vec<u8>) -> Result<Self, Error> {
        const WHAT: &str = "authenticator extensions";
        let entries = cbor::map(WHAT, value)?;
        if entries.iter().any(|(k, _)| !matches!(k, Value::Text(_))) {
            return Err(cbor::cbor_err(WHAT, "extension identifiers must be text"));
        }
        let cred_protect = match cbor::get_text(entries, "credProtect") {
            None => None,
            Some(v) => match cbor::as_int(v) {
                Some(level @ 1..=3) => u8::try_from(level).ok(),
                _ => return Err(cbor::cbor_err(WHAT, "credProtect must be 1, 2 or 3")),
            },
        };
        let hmac_secret = match cbor::get_text(entries, "hmac-secret") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            // hmac-secret in an assertion carries encrypted output bytes.
            Some(Value::Bytes(_)) => Some(true),
            Some(_) => return Err(cbor::cbor_err(WHAT, "hmac-secret must be a bool")),
        };
        let min_pin_length = match cbor::get_text(entries, "minPinLength") {
            None => None,
            Some(v) => Some(
                cbor::as_int(v)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| cbor::cbor_err(WHAT, "minPinLength must be unsigned"))?,
            ),
        };
        Ok(Self {
            cred_protect,
            hmac_secret,
            min_pin_length,
            raw_cbor,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(Error::Truncated { what: WHAT })?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(Error::Truncated { what: WHAT })?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let slice = self.take(N)?;
        <[u8; N]>::try_from(slice).map_err(|_| Error::Truncated { what: WHAT })
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_part_only_parses_and_short_input_is_truncated() {
        let mut ad = vec![7u8; 32];
        ad.push(Flags::UP | Flags::UV);
        ad.extend_from_slice(&5u32.to_be_bytes());
        let parsed = AuthenticatorData::parse(&ad).unwrap();
        assert!(parsed.flags.up() && parsed.flags.uv() && !parsed.flags.at());
        assert_eq!(parsed.sign_count, 5);
        assert_eq!(
            AuthenticatorData::parse(&ad[..36]),
            Err(Error::Truncated { what: WHAT })
        );
        ad.push(0);
        assert!(AuthenticatorData::parse(&ad).is_err());
    }

    #[test]
    fn backup_state_without_eligibility_is_refused() {
        let mut ad = vec![0u8; 32];
        ad.push(Flags::UP | Flags::BS);
        ad.extend_from_slice(&[0; 4]);
        assert_eq!(
            AuthenticatorData::parse(&ad),
            Err(Error::InvalidBackupFlags)
        );
    }
}
