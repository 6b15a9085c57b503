//! The few X.509 checks packed attestation needs: ECDSA (P-256/P-384) and RSA
//! PKCS#1 v1.5 certificate signatures with SHA-256/384/512, names, validity and the
//! FIDO extensions. (Vendor roots such as Yubico's are RSA; leaves are usually EC.)

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use rsa::pkcs8::DecodePublicKey as _;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier as Oid;
use x509_cert::der::{Decode, Encode};

use crate::Error;

const OID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
const OID_RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
const OID_ECDSA_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
const OID_P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: Oid = Oid::new_unwrap("1.3.132.0.34");
const OID_ECDSA_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
const OID_BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
/// id-fido-gen-ce-aaguid.
pub(crate) const OID_FIDO_AAGUID: Oid = Oid::new_unwrap("1.3.6.1.4.1.45724.1.1.4");
const OID_COUNTRY: Oid = Oid::new_unwrap("2.5.4.6");
const OID_ORG: Oid = Oid::new_unwrap("2.5.4.10");
const OID_OU: Oid = Oid::new_unwrap("2.5.4.11");
const OID_CN: Oid = Oid::new_unwrap("2.5.4.3");

/// A parsed certificate with its DER and the to-be-signed bytes exactly as received.
#[derive(Debug, Clone)]
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
    tbs: Vec<u8>,
    key: SigKey,
}

/// A certificate's public key, for verifying signatures.
#[derive(Debug, Clone)]
pub(crate) enum SigKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Rsa(rsa::PublicKey),
}

/// The hash a signature is over.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
            Hash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }
}

impl SigKey {
    /// Verify `sig` over `message` hashed with `hash`: a DER ECDSA signature for EC
    /// keys, an RSASSA-PKCS1-v1_5 signature for RSA keys.
    pub fn verify(&self, hash: Hash, message: &[u8], sig: &[u8]) -> bool {
        let digest = hash.digest(message);
        match self {
            SigKey::P256(k) => p256::ecdsa::DerSignature::from_bytes(sig)
                .ok()
                .is_some_and(|s| k.verify_prehash(&digest, &s).is_ok()),
            SigKey::P384(k) => p384::ecdsa::DerSignature::from_bytes(sig)
                .ok()
                .is_some_and(|s| k.verify_prehash(&digest, &s).is_ok()),
            SigKey::Rsa(k) => rsa_verify(k, hash, &digest, sig),
        }
    }

    pub fn is_rsa(&self) -> bool {
        matches!(self, SigKey::Rsa(_))
    }
}

/// RSASSA-PKCS1-v1_5 verification of a precomputed digest.
pub(crate) fn rsa_verify(key: &rsa::PublicKey, hash: Hash, digest: &[u8], sig: &[u8]) -> bool {
    let scheme = match hash {
        Hash::Sha256 => rsa::Pkcs1v15Sign::new::<Sha256>(),
        Hash::Sha384 => rsa::Pkcs1v15Sign::new::<Sha384>(),
        Hash::Sha512 => rsa::Pkcs1v15Sign::new::<Sha512>(),
    };
    key.verify(scheme, digest, sig).is_ok()
}

impl Cert {
    pub fn parse(der: &[u8]) -> Result<Self, Error> {
        let cert = Certificate::from_der(der).map_err(|e| Error::Certificate(e.to_string()))?;
        let tbs = first_element(der).ok_or_else(|| Error::Certificate("bad DER framing".into()))?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        if spki.algorithm.oid == OID_RSA_ENCRYPTION {
            let spki_der = spki
                .to_der()
                .map_err(|e| Error::Certificate(e.to_string()))?;
            let key = rsa::PublicKey::from_public_key_der(&spki_der)
                .map_err(|e| Error::Certificate(format!("RSA public key: {e}")))?;
            return Ok(Self {
                der: der.to_vec(),
                cert,
                tbs: tbs.to_vec(),
                key: SigKey::Rsa(key),
            });
        }
        if spki.algorithm.oid != OID_EC_PUBLIC_KEY {
            return Err(Error::Certificate(format!(
                "public key algorithm {} is neither EC nor RSA",
                spki.algorithm.oid
            )));
        }
        let curve: Oid = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as().ok())
            .ok_or_else(|| Error::Certificate("EC key without a named curve".into()))?;
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::Certificate("public key bit string is not whole bytes".into()))?;
        let key = if curve == OID_P256 {
            p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map(SigKey::P256)
        } else if curve == OID_P384 {
            p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map(SigKey::P384)
        } else {
            return Err(Error::Certificate(format!(
                "curve {curve} is not supported"
            )));
        }
        .map_err(|_| Error::Certificate("EC public key is not on its curve".into()))?;
        Ok(Self {
            der: der.to_vec(),
            cert,
            tbs: tbs.to_vec(),
            key,
        })
    }

    pub fn key(&self) -> &SigKey {
        &self.key
    }

    pub fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// Whether `issuer`'s key verifies this certificate's signature and the issuer
    /// name matches.
    pub fn is_signed_by(&self, issuer: &Cert) -> bool {
        if self.cert.tbs_certificate().issuer() != issuer.cert.tbs_certificate().subject() {
            return false;
        }
        let oid = self.cert.signature_algorithm().oid;
        let (hash, rsa) = match oid {
            o if o == OID_ECDSA_SHA256 => (Hash::Sha256, false),
            o if o == OID_ECDSA_SHA384 => (Hash::Sha384, false),
            o if o == OID_ECDSA_SHA512 => (Hash::Sha512, false),
            o if o == OID_RSA_SHA256 => (Hash::Sha256, true),
            o if o == OID_RSA_SHA384 => (Hash::Sha384, true),
            o if o == OID_RSA_SHA512 => (Hash::Sha512, true),
            _ => return false,
        };
        if rsa != issuer.key.is_rsa() {
            return false;
        }
        let Some(sig) = self.cert.signature().as_bytes() else {
            return false;
        };
        issuer.key.verify(hash, &self.tbs, sig)
    }

    /// Whether `now` (seconds since the Unix epoch) is inside the validity period.
    pub fn valid_at(&self, now: u64) -> bool {
        let v = self.cert.tbs_certificate().validity();
        let nb = v.not_before.to_unix_duration().as_secs();
        let na = v.not_after.to_unix_duration().as_secs();
        nb <= now && now <= na
    }

    /// basicConstraints cA (absent extension means false).
    pub fn is_ca(&self) -> Result<bool, Error> {
        match self.extension(OID_BASIC_CONSTRAINTS) {
            None => Ok(false),
            Some((_, value)) => x509_cert::ext::pkix::BasicConstraints::from_der(value)
                .map(|bc| bc.ca)
                .map_err(|e| Error::Certificate(format!("basicConstraints: {e}"))),
        }
    }

    /// The extension with `oid`: (critical, extnValue contents).
    pub fn extension(&self, oid: Oid) -> Option<(bool, &[u8])> {
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|e| e.extn_id == oid)
            .map(|e| (e.critical, e.extn_value.as_bytes()))
    }

    /// WebAuthn §8.2.1 requirements for a packed attestation leaf, except the AAGUID
    /// comparison (done by the caller, which knows authData).
    pub fn check_packed_leaf(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::LeafRequirements(m.to_owned()));
        if self.cert.tbs_certificate().version() != x509_cert::Version::V3 {
            return bad("version must be 3");
        }
        let subject = self.cert.tbs_certificate().subject();
        let has = |oid: Oid| subject.iter().any(|atv| atv.oid == oid);
        if !has(OID_COUNTRY) || !has(OID_ORG) || !has(OID_CN) {
            return bad("subject must have C, O and CN");
        }
        let ou_ok = subject.iter().any(|atv| {
            atv.oid == OID_OU
                && x509_cert::ext::pkix::name::DirectoryString::try_from(&atv.value)
                    .is_ok_and(|s| s.value() == "Authenticator Attestation")
        });
        if !ou_ok {
            return bad("subject OU must be \"Authenticator Attestation\"");
        }
        if self.is_ca()? {
            return bad("basicConstraints CA must be false");
        }
        Ok(())
    }

    /// The AAGUID from id-fido-gen-ce-aaguid, if present. The extension must not be
    /// critical and must hold an OCTET STRING of 16 bytes.
    pub fn fido_aaguid(&self) -> Result<Option<[u8; 16]>, Error> {
        let Some((critical, value)) = self.extension(OID_FIDO_AAGUID) else {
            return Ok(None);
        };
        if critical {
            return Err(Error::LeafRequirements(
                "the AAGUID extension must not be critical".into(),
            ));
        }
        let inner = x509_cert::der::asn1::OctetString::from_der(value).map_err(|_| {
            Error::LeafRequirements("AAGUID extension is not an OCTET STRING".into())
        })?;
        <[u8; 16]>::try_from(inner.as_bytes())
            .map(Some)
            .map_err(|_| Error::LeafRequirements("AAGUID extension is not 16 bytes".into()))
    }

    /// Re-encode check: same DER bytes (used to recognise a root sent inside x5c).
    pub fn same_as(&self, other: &Cert) -> bool {
        self.der == other.der || self.cert.to_der().ok() == other.cert.to_der().ok()
    }
}

/// The first element inside the outer DER SEQUENCE of `der` (the TBSCertificate),
/// header included.
fn first_element(der: &[u8]) -> Option<&[u8]> {
    let (_, outer_header) = header(der)?;
    let inner = der.get(outer_header..)?;
    let (len, h) = header(inner)?;
    inner.get(..h.checked_add(len)?)
}

/// (content length, header length) of the DER TLV at the front of `bytes`.
fn header(bytes: &[u8]) -> Option<(usize, usize)> {
    let first_len = *bytes.get(1)?;
    if first_len < 0x80 {
        return Some((usize::from(first_len), 2));
    }
    let n = usize::from(first_len & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for b in bytes.get(2..2 + n)? {
        len = (len << 8) | usize::from(*b);
    }
    Some((len, 2 + n))
}
