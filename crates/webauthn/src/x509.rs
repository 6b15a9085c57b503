//! The few X.509 checks packed attestation needs: ECDSA (P-256/P-384) and RSA
//! PKCS#1 v1.5 certificate signatures with SHA-256/384/512, names, validity and the
//! FIDO extensions. (Vendor roots such as Yubico's are RSA; leaves are usually EC.)

use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA384_ASN1, ECDSA_P256_SHA512_ASN1,
    ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA512_ASN1,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA384, RSA_PKCS1_2048_8192_SHA512,
    VerificationAlgorithm,
};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier as Oid;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};

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
const OID_KEY_USAGE: Oid = Oid::new_unwrap("2.5.29.15");
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

/// A certificate's public key, for verifying signatures: the `subjectPublicKey` bytes,
/// checked when the certificate was parsed (a SEC1 point on its curve, or a PKCS#1
/// `RSAPublicKey` of 2048 to 8192 bits).
#[derive(Debug, Clone)]
pub(crate) enum SigKey {
    P256(Vec<u8>),
    P384(Vec<u8>),
    Rsa(Vec<u8>),
}

/// The hash a signature is over.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl SigKey {
    /// Verify `sig` over `message` hashed with `hash`: a DER ECDSA signature for EC
    /// keys, an RSASSA-PKCS1-v1_5 signature for RSA keys.
    pub fn verify(&self, hash: Hash, message: &[u8], sig: &[u8]) -> bool {
        let (alg, key): (&'static dyn VerificationAlgorithm, &[u8]) = match (self, hash) {
            (SigKey::P256(k), Hash::Sha256) => (&ECDSA_P256_SHA256_ASN1, k),
            (SigKey::P256(k), Hash::Sha384) => (&ECDSA_P256_SHA384_ASN1, k),
            (SigKey::P256(k), Hash::Sha512) => (&ECDSA_P256_SHA512_ASN1, k),
            (SigKey::P384(k), Hash::Sha256) => (&ECDSA_P384_SHA256_ASN1, k),
            (SigKey::P384(k), Hash::Sha384) => (&ECDSA_P384_SHA384_ASN1, k),
            (SigKey::P384(k), Hash::Sha512) => (&ECDSA_P384_SHA512_ASN1, k),
            (SigKey::Rsa(k), Hash::Sha256) => (&RSA_PKCS1_2048_8192_SHA256, k),
            (SigKey::Rsa(k), Hash::Sha384) => (&RSA_PKCS1_2048_8192_SHA384, k),
            (SigKey::Rsa(k), Hash::Sha512) => (&RSA_PKCS1_2048_8192_SHA512, k),
        };
        signature::UnparsedPublicKey::new(alg, key)
            .verify(message, sig)
            .is_ok()
    }

    pub fn is_rsa(&self) -> bool {
        matches!(self, SigKey::Rsa(_))
    }

    /// The key type, for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            SigKey::P256(_) => "EC P-256",
            SigKey::P384(_) => "EC P-384",
            SigKey::Rsa(_) => "RSA",
        }
    }
}

/// The DER `RSAPublicKey` (RFC 8017 §A.1.1) of `(n, e)`, big-endian unsigned each.
pub(crate) fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Result<Vec<u8>, x509_cert::der::Error> {
    use x509_cert::der::asn1::UintRef;
    let mut body = UintRef::new(n)?.to_der()?;
    body.extend(UintRef::new(e)?.to_der()?);
    let len = u32::try_from(body.len()).map_err(|_| x509_cert::der::ErrorKind::Overflow)?;
    let mut out = vec![0x30];
    if len < 0x80 {
        out.push(len.to_be_bytes()[3]);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | u8::try_from(significant.len()).unwrap_or(4));
        out.extend_from_slice(significant);
    }
    out.extend(body);
    Ok(out)
}

impl Cert {
    pub fn parse(der: &[u8]) -> Result<Self, Error> {
        let cert = Certificate::from_der(der).map_err(|e| Error::Certificate(e.to_string()))?;
        let tbs = first_element(der).ok_or_else(|| Error::Certificate("bad DER framing".into()))?;
        check_structure(&cert)?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        if spki.algorithm.oid == OID_RSA_ENCRYPTION {
            let pkcs1 = spki
                .subject_public_key
                .as_bytes()
                .ok_or_else(|| {
                    Error::Certificate("public key bit string is not whole bytes".into())
                })?
                .to_vec();
            signature::ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &pkcs1)
                .map_err(|e| Error::Certificate(format!("RSA public key: {e}")))?;
            return Ok(Self {
                der: der.to_vec(),
                cert,
                tbs: tbs.to_vec(),
                key: SigKey::Rsa(pkcs1),
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
        let (alg, key): (&'static dyn VerificationAlgorithm, SigKey) = if curve == OID_P256 {
            (&ECDSA_P256_SHA256_ASN1, SigKey::P256(point.to_vec()))
        } else if curve == OID_P384 {
            (&ECDSA_P384_SHA384_ASN1, SigKey::P384(point.to_vec()))
        } else {
            return Err(Error::Certificate(format!(
                "curve {curve} is not supported"
            )));
        };
        // A SEC1 point (0x02/0x03/0x04 first, not a DER SubjectPublicKeyInfo, which
        // aws-lc would also take); aws-lc refuses points off the curve.
        if !matches!(point.first(), Some(0x02..=0x04)) {
            return Err(Error::Certificate(
                "EC public key is not on its curve".into(),
            ));
        }
        signature::ParsedPublicKey::new(alg, point)
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
        Ok(self.basic_constraints()?.is_some_and(|bc| bc.ca))
    }

    fn basic_constraints(&self) -> Result<Option<BasicConstraints>, Error> {
        self.cert
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
            .map(|found| found.map(|(_, bc)| bc))
            .map_err(|e| Error::Certificate(format!("basicConstraints: {e}")))
    }

    /// RFC 5280 §6.1.4 for a certificate that issues another: basicConstraints cA,
    /// keyCertSign when keyUsage is present, and a pathLenConstraint (if any) that allows
    /// the `intermediates_below` non-leaf certificates between it and the leaf. `what`
    /// names the certificate in the error.
    pub fn check_issuer(&self, intermediates_below: usize, what: &str) -> Result<(), Error> {
        let bc = self.basic_constraints()?;
        if !bc.as_ref().is_some_and(|bc| bc.ca) {
            return Err(Error::Certificate(format!(
                "{what} ({}) issues a certificate but is not a CA (basicConstraints cA)",
                self.subject()
            )));
        }
        let key_usage = self
            .cert
            .tbs_certificate()
            .get_extension::<KeyUsage>()
            .map_err(|e| Error::Certificate(format!("keyUsage: {e}")))?;
        if let Some((_, ku)) = key_usage
            && !ku.key_cert_sign()
        {
            return Err(Error::Certificate(format!(
                "{what} ({}) issues a certificate but its keyUsage lacks keyCertSign",
                self.subject()
            )));
        }
        if let Some(limit) = bc.and_then(|bc| bc.path_len_constraint)
            && intermediates_below > usize::from(limit)
        {
            return Err(Error::Certificate(format!(
                "{what} ({}) has pathLenConstraint {limit} but {intermediates_below} \
                 intermediate CA certificate(s) follow it",
                self.subject()
            )));
        }
        Ok(())
    }

    /// The extension with `oid`: (critical, extnValue contents). Extensions are unique
    /// (checked when the certificate was parsed).
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

/// RFC 5280 rules that hold for every certificate, whatever its place in a chain:
/// `signatureAlgorithm` equals the TBS `signature` field (§4.1.1.2), no extension appears
/// twice (§4.2), and every critical extension is one this verifier processes
/// (basicConstraints, keyUsage, the FIDO AAGUID; §4.2: an unrecognised critical extension
/// means the certificate must be rejected).
fn check_structure(cert: &Certificate) -> Result<(), Error> {
    let tbs = cert.tbs_certificate();
    if cert.signature_algorithm() != tbs.signature() {
        return Err(Error::Certificate(format!(
            "{}: signatureAlgorithm ({}) differs from the TBSCertificate signature field ({})",
            tbs.subject(),
            cert.signature_algorithm().oid,
            tbs.signature().oid
        )));
    }
    let extensions = tbs.extensions().map(|e| e.as_slice()).unwrap_or_default();
    for (i, ext) in extensions.iter().enumerate() {
        if extensions
            .get(..i)
            .unwrap_or_default()
            .iter()
            .any(|earlier| earlier.extn_id == ext.extn_id)
        {
            return Err(Error::Certificate(format!(
                "{}: extension {} appears more than once",
                tbs.subject(),
                ext.extn_id
            )));
        }
        // The AAGUID extension is understood too: the packed leaf check refuses it
        // critical with its own error (WebAuthn §8.2.1).
        if ext.critical
            && ![OID_BASIC_CONSTRAINTS, OID_KEY_USAGE, OID_FIDO_AAGUID].contains(&ext.extn_id)
        {
            return Err(Error::Certificate(format!(
                "{}: critical extension {} is not understood here",
                tbs.subject(),
                ext.extn_id
            )));
        }
    }
    Ok(())
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
