//! COSE_Key (RFC 9052 §7, RFC 9053) as WebAuthn credential public keys use it:
//! EC2 on P-256 (ES256) and P-384 (ES384), and RSA (RS256).

use ciborium::Value;
use p256::ecdsa::signature::Verifier as _;

use crate::Error;
use crate::cbor;
use crate::options::{ALG_ES256, ALG_ES384, ALG_RS256};
use sha2::Digest as _;

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
    /// ES256: ECDSA P-256 with SHA-256 (alg -7).
    P256(p256::ecdsa::VerifyingKey),
    /// ES384: ECDSA P-384 with SHA-384 (alg -35).
    P384(p384::ecdsa::VerifyingKey),
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
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                            .map(CoseKey::P256)
                            .map_err(|_| Error::CoseKey("P-256 point is not on the curve".into()))
                    }
                    (ALG_ES384, CRV_P384) => {
                        let point = sec1_uncompressed(&x, &y, 48)?;
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                            .map(CoseKey::P384)
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
            CoseKey::P256(key) => p256::ecdsa::DerSignature::from_bytes(der_signature)
                .ok()
                .is_some_and(|sig| key.verify(message, &sig).is_ok()),
            CoseKey::P384(key) => p384::ecdsa::DerSignature::from_bytes(der_signature)
                .ok()
                .is_some_and(|sig| key.verify(message, &sig).is_ok()),
            CoseKey::Rsa { alg, n, e } => {
                if *alg != ALG_RS256 {
                    return Err(Error::UnsupportedAlgorithm(*alg));
                }
                let digest = sha2::Sha256::digest(message);
                crate::x509::rsa_verify(
                    &rsa_key(n, e)?,
                    crate::x509::Hash::Sha256,
                    &digest,
                    der_signature,
                )
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Error::AssertionSignature)
        }
    }
}

fn rsa_key(n: &[u8], e: &[u8]) -> Result<rsa::PublicKey, Error> {
    rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(n),
        rsa::BoxedUint::from_be_slice_vartime(e),
    )
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
