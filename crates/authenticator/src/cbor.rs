//! Authenticator-side encodings: authenticatorData, COSE_Key, the attestation object.
//! Maps are written in CTAP2 canonical order (shorter keys first, then bytewise).

use ciborium::Value;
use uuid::Uuid;

use crate::error::{Error, Result};

/// authData flag: user present.
pub const FLAG_UP: u8 = 0x01;
/// authData flag: user verified.
pub const FLAG_UV: u8 = 0x04;
/// authData flag: attested credential data included.
pub const FLAG_AT: u8 = 0x40;
/// authData flag: extension data included.
pub const FLAG_ED: u8 = 0x80;

/// COSE algorithm ES256.
pub const COSE_ES256: i64 = -7;

/// COSE_Key for a P-256 public key given as its uncompressed SEC1 point
/// (`0x04 || x || y`, 65 bytes): {1: 2, 3: -7, -1: 1, -2: x, -3: y}.
pub fn cose_key(point: &[u8]) -> Result<Vec<u8>> {
    let (Some(0x04), Some(xy)) = (point.first(), point.get(1..)) else {
        return Err(Error::Crypto(
            "public key is not an uncompressed point".into(),
        ));
    };
    if xy.len() != 64 {
        return Err(Error::Crypto("public key is not a P-256 point".into()));
    }
    let (x, y) = xy.split_at(32);
    let map = Value::Map(vec![
        (Value::from(1), Value::from(2)),
        (Value::from(3), Value::from(COSE_ES256)),
        (Value::from(-1), Value::from(1)),
        (Value::from(-2), Value::Bytes(x.to_vec())),
        (Value::from(-3), Value::Bytes(y.to_vec())),
    ]);
    to_vec(&map)
}

/// Extension outputs in authData, in canonical order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionOutputs {
    /// credProtect level (1..=3).
    pub cred_protect: Option<u8>,
    /// hmac-secret: `true` at registration.
    pub hmac_secret: Option<bool>,
}

impl ExtensionOutputs {
    fn is_empty(&self) -> bool {
        self.cred_protect.is_none() && self.hmac_secret.is_none()
    }

    fn to_value(&self) -> Value {
        let mut m = Vec::new();
        if let Some(level) = self.cred_protect {
            m.push((Value::from("credProtect"), Value::from(level)));
        }
        if let Some(h) = self.hmac_secret {
            m.push((Value::from("hmac-secret"), Value::from(h)));
        }
        Value::Map(m)
    }
}

/// The attested credential data in authData.
pub struct AttestedCredential<'a> {
    /// AAGUID.
    pub aaguid: Uuid,
    /// Credential ID.
    pub credential_id: &'a [u8],
    /// COSE_Key bytes.
    pub cose_key: &'a [u8],
}

/// authenticatorData: `rpIdHash | flags | signCount | [attestedCredentialData] | [extensions]`.
pub fn auth_data(
    rp_id: &str,
    mut flags: u8,
    sign_count: u32,
    attested: Option<&AttestedCredential<'_>>,
    extensions: &ExtensionOutputs,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&crate::crypto::sha256(rp_id.as_bytes()));
    if attested.is_some() {
        flags |= FLAG_AT;
    }
    if !extensions.is_empty() {
        flags |= FLAG_ED;
    }
    out.push(flags);
    out.extend_from_slice(&sign_count.to_be_bytes());
    if let Some(a) = attested {
        out.extend_from_slice(a.aaguid.as_bytes());
        let len = u16::try_from(a.credential_id.len())
            .map_err(|_| Error::Crypto("credential id longer than 65535 bytes".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(a.credential_id);
        out.extend_from_slice(a.cose_key);
    }
    if !extensions.is_empty() {
        out.extend_from_slice(&to_vec(&extensions.to_value())?);
    }
    Ok(out)
}

/// The WebAuthn attestation object for a packed, x5c attestation:
/// `{"fmt": "packed", "attStmt": {"alg": -7, "sig": ..., "x5c": [...]}, "authData": ...}`.
pub fn packed_attestation_object(
    auth_data: &[u8],
    sig_der: &[u8],
    x5c: &[Vec<u8>],
) -> Result<Vec<u8>> {
    attestation_object("packed", COSE_ES256, sig_der, x5c, auth_data)
}

/// The WebAuthn attestation object from the parts a key reported: format `fmt`
/// (`packed`: `attStmt` `{"alg", "sig", "x5c"}`, `x5c` left out when empty, which is
/// self attestation; `none`: an empty `attStmt`).
pub fn attestation_object(
    fmt: &str,
    alg: i64,
    sig_der: &[u8],
    x5c: &[Vec<u8>],
    auth_data: &[u8],
) -> Result<Vec<u8>> {
    let stmt = match fmt {
        "none" => Value::Map(vec![]),
        "packed" => {
            let mut m = vec![
                (Value::from("alg"), Value::from(alg)),
                (Value::from("sig"), Value::Bytes(sig_der.to_vec())),
            ];
            if !x5c.is_empty() {
                m.push((
                    Value::from("x5c"),
                    Value::Array(x5c.iter().map(|c| Value::Bytes(c.clone())).collect()),
                ));
            }
            Value::Map(m)
        }
        other => {
            return Err(Error::Request(format!(
                "attestation format {other:?} is not one a YubiKey reports (packed or none)"
            )));
        }
    };
    let obj = Value::Map(vec![
        (Value::from("fmt"), Value::from(fmt)),
        (Value::from("attStmt"), stmt),
        (Value::from("authData"), Value::Bytes(auth_data.to_vec())),
    ]);
    to_vec(&obj)
}

/// The attestation object a client sends when the RP asked for attestation `none`
/// (WebAuthn §5.1.3): `{"fmt": "none", "attStmt": {}, "authData": ...}` with the
/// AAGUID in authData replaced by zeros.
pub fn none_attestation_object(auth_data: &[u8]) -> Result<Vec<u8>> {
    let mut auth_data = auth_data.to_vec();
    if auth_data.len() >= 53 && auth_data[32] & FLAG_AT != 0 {
        auth_data[37..53].fill(0);
    }
    let obj = Value::Map(vec![
        (Value::from("fmt"), Value::from("none")),
        (Value::from("attStmt"), Value::Map(vec![])),
        (Value::from("authData"), Value::Bytes(auth_data)),
    ]);
    to_vec(&obj)
}

fn to_vec(v: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|e| Error::Crypto(format!("CBOR: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_data_layout_and_flags() {
        let ext = ExtensionOutputs {
            cred_protect: Some(1),
            hmac_secret: Some(true),
        };
        let cose = [0xA0];
        let a = AttestedCredential {
            aaguid: Uuid::nil(),
            credential_id: &[7; 3],
            cose_key: &cose,
        };
        let d = auth_data("example.com", FLAG_UP | FLAG_UV, 5, Some(&a), &ext).unwrap();
        assert_eq!(d[..32], crate::crypto::sha256(b"example.com")[..]);
        assert_eq!(d[32], FLAG_UP | FLAG_UV | FLAG_AT | FLAG_ED);
        assert_eq!(d[33..37], [0, 0, 0, 5]);
        assert_eq!(d[53..55], [0, 3]);
        assert_eq!(d[55..58], [7, 7, 7]);
        assert_eq!(d[58], 0xA0);
        // {"credProtect": 1, "hmac-secret": true}
        let tail: Value = ciborium::from_reader(&d[59..]).unwrap();
        assert_eq!(tail, ext.to_value());
        let mut canon = vec![0xA2, 0x6B];
        canon.extend_from_slice(b"credProtect");
        canon.push(0x01);
        canon.push(0x6B);
        canon.extend_from_slice(b"hmac-secret");
        canon.push(0xF5);
        assert_eq!(&d[59..], &canon[..]);
    }
}
