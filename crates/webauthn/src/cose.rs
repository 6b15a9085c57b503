//! COSE_Key (RFC 9052 §7, RFC 9053) as WebAuthn credential public keys use it:
//! EC2 on P-256 (ES256) and P-384 (ES384), and RSA (RS256).

use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use ciborium::Value;

use crate::Error;
use crate::cbor;
use crate::options::{ALG_ES256, ALG_ES384, ALG_RS256};

const KTY: i64 = 1;
const ALG: i64 = 3;
const KTY_EC2: i128 = 2;
const KTY_RSA: i128 = 3;
const EC2_CRV: i64 = -1;
const EC2_X: i64 = -2;
const EC2_Y: i64 = -3;
const RSA_N: i64 = -1;
const RSA_E: i64 = -2;
const CRV_P256: i128 = 1;
const CRV_P384: i128 = 2;

/// A credential public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoseKey {
    /// ES256: ECDSA P-256 with SHA-256 (alg -7). The uncompressed SEC1 point
    /// (`0x04 || x || y`), checked to be on the curve.
    P256(Vec<u8>),
    /// ES384: ECDSA P-384 with SHA-384 (alg -35). The uncompressed SEC1 point, checked
    /// to be on the curve.
    P384(Vec<u8>),
    /// RSA key with its COSE alg; RS256 (-257) signatures verify, other RSA algs
    /// (e.g. PS256) parse but do not verify.
    Rsa { alg: i64, n: Vec<u8>, e: Vec<u8> },
}

impl CoseKey {
    /// Parse a COSE_Key that fills `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > crate::MAX_INPUT {
            return Err(Error::TooLarge {
                what: "COSE key",
                max: crate::MAX_INPUT,
            });
        }
        Self::from_value(&cbor::decode_exact("COSE key", bytes)?)
    }

    pub(crate) fn from_value(value: &Value) -> Result<Self, Error> {
        let entries = cbor::map("COSE key", value)?;
        let int = |key: i64, name: &str| {
            cbor::get_int(entries, key)
                .and_then(cbor::as_int)
                .ok_or_else(|| Error::CoseKey(format!("missing or non-integer {name}")))
        };
        let bytes = |key: i64, name: &str| match cbor::get_int(entries, key) {
            Some(Value::Bytes(b)) => Ok(b.clone()),
            _ => Err(Error::CoseKey(format!("missing or non-bytes {name}"))),
        };
        let kty = int(KTY, "kty")?;
        let alg = i64::try_from(int(ALG, "alg")?)
            .map_err(|_| Error::CoseKey("alg out of range".into()))?;
        match kty {
            KTY_EC2 => {
                let crv = int(EC2_CRV, "crv")?;
                let (x, y) = (bytes(EC2_X, "x")?, bytes(EC2_Y, "y")?);
                match (alg, crv) {
                    (ALG_ES256, CRV_P256) => {
                        let point = sec1_uncompressed(&x, &y, 32)?;
                        signature::ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &point)
                            .map(|_| CoseKey::P256(point))
                            .map_err(|_| Error::CoseKey("P-256 point is not on the curve".into()))
                    }
                    (ALG_ES384, CRV_P384) => {
                        let point = sec1_uncompressed(&x, &y, 48)?;
                        signature::ParsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &point)
                            .map(|_| CoseKey::P384(point))
                            .map_err(|_| Error::CoseKey("P-384 point is not on the curve".into()))
                    }
                    (ALG_ES256 | ALG_ES384, _) => Err(Error::CoseKey(format!(
                        "curve {crv} does not fit alg {alg}"
                    ))),
                    _ => Err(Error::UnsupportedAlgorithm(alg)),
                }
            }
            KTY_RSA => {
                let (n, e) = (bytes(RSA_N, "n")?, bytes(RSA_E, "e")?);
                rsa_key(&n, &e)?;
                Ok(CoseKey::Rsa { alg, n, e })
            }
            // OKP (EdDSA) and anything else: report the algorithm, which is what a
            // registration policy names.
            _ => Err(Error::UnsupportedAlgorithm(alg)),
        }
    }

    /// The COSE algorithm the key is for.
    pub fn alg(&self) -> i64 {
        match self {
            CoseKey::P256(_) => ALG_ES256,
            CoseKey::P384(_) => ALG_ES384,
            CoseKey::Rsa { alg, .. } => *alg,
        }
    }

    /// Verify a signature over `message` (hashed per the key's alg): DER ECDSA for
    /// ES256/ES384, PKCS#1 v1.5 for RS256. Other RSA algs return
    /// [`Error::UnsupportedAlgorithm`]; a bad signature is [`Error::AssertionSignature`].
    pub fn verify(&self, message: &[u8], der_signature: &[u8]) -> Result<(), Error> {
        let ok = match self {
            CoseKey::P256(point) => {
                signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
                    .verify(message, der_signature)
                    .is_ok()
            }
            CoseKey::P384(point) => {
                signature::UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, point)
                    .verify(message, der_signature)
                    .is_ok()
            }
            CoseKey::Rsa { alg, n, e } => {
                if *alg != ALG_RS256 {
                    return Err(Error::UnsupportedAlgorithm(*alg));
                }
                RsaPublicKeyComponents { n, e }
                    .verify(&RSA_PKCS1_2048_8192_SHA256, message, der_signature)
                    .is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::AssertionSignature)
        }
    }
}

/// Checks that `(n, e)` is an RSA public key aws-lc accepts for PKCS#1 v1.5 signatures
/// (2048 to 8192 bits, a sane exponent).
fn rsa_key(n: &[u8], e: &[u8]) -> Result<(), Error> {
    let der = crate::x509::rsa_public_key_der(n, e)
        .map_err(|err| Error::CoseKey(format!("RSA key: {err}")))?;
    signature::ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &der)
        .map(|_| ())
        .map_err(|err| Error::CoseKey(format!("RSA key: {err}")))
}

fn sec1_uncompressed(x: &[u8], y: &[u8], len: usize) -> Result<Vec<u8>, Error> {
    if x.len() != len || y.len() != len {
        return Err(Error::CoseKey(format!(
            "EC2 coordinates must be {len} bytes each"
        )));
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Ok(point)
}
