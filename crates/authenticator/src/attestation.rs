//! Attestation: the sandbox attestation CA (root and intermediate, committed under
//! `crates/authenticator/sandbox-ca/`) and the per-key leaf certificate that signs packed
//! attestation statements.
//!
//! **Sandbox only.** The CA's private keys are committed on purpose so every checkout and
//! every sandbox IdP trusts the same root. Nothing signed by this CA proves anything about
//! real hardware; a real IdP must never trust [`sandbox_attestation_root_pem`].
//!
//! The leaf follows WebAuthn §8.2.1 (packed attestation statement certificate
//! requirements): version 3; subject C, O, OU "Authenticator Attestation", CN;
//! basicConstraints CA=false; the FIDO AAGUID extension (1.3.6.1.4.1.45724.1.1.4) as an
//! OCTET STRING wrapping the 16 AAGUID bytes, not critical.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use p256::ecdsa::{DerSignature, SigningKey};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::der::asn1::OctetString;
use x509_cert::der::{DecodePem, Encode, EncodePem};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, der};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::secret::SecretBytes;

/// id-fido-gen-ce-aaguid.
pub const OID_FIDO_AAGUID: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");

const ROOT_PEM: &str = include_str!("../sandbox-ca/root.pem");
const INTERMEDIATE_PEM: &str = include_str!("../sandbox-ca/intermediate.pem");
const INTERMEDIATE_KEY_PEM: &str = include_str!("../sandbox-ca/intermediate.key.pem");

/// The organisation every sandbox certificate names.
pub const SANDBOX_ORG: &str = "prereg sandbox";

/// The sandbox attestation root certificate (PEM). Trust it in sandbox IdPs only.
pub fn sandbox_attestation_root_pem() -> &'static str {
    ROOT_PEM
}

/// The sandbox intermediate CA certificate (PEM); every `x5c` carries it second.
pub fn sandbox_attestation_intermediate_pem() -> &'static str {
    INTERMEDIATE_PEM
}

/// The sandbox root certificate, DER.
pub fn sandbox_attestation_root_der() -> Result<Vec<u8>> {
    pem_to_der(ROOT_PEM)
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    Certificate::from_pem(pem)
        .and_then(|c| c.to_der())
        .map_err(|e| Error::Crypto(format!("sandbox CA certificate: {e}")))
}

/// A freshly generated CA (root + intermediate), PEM. Used once to make the committed
/// `sandbox-ca/` files (`cargo run -p authenticator --example gen_sandbox_ca`).
pub struct GeneratedCa {
    /// Root certificate.
    pub root_pem: String,
    /// Root private key (PKCS#8).
    pub root_key_pem: Zeroizing<String>,
    /// Intermediate certificate.
    pub intermediate_pem: String,
    /// Intermediate private key (PKCS#8).
    pub intermediate_key_pem: Zeroizing<String>,
}

/// Makes a new sandbox root and intermediate, valid 2026-01-01 to 2056-01-01.
pub fn generate_sandbox_ca() -> Result<GeneratedCa> {
    let root_key = SigningKey::try_generate().map_err(|_| Error::Rng)?;
    let int_key = SigningKey::try_generate().map_err(|_| Error::Rng)?;
    let root_name = name(&format!(
        "CN=prereg sandbox Attestation Root,OU=Sandbox only - not for production,O={SANDBOX_ORG},C=US"
    ))?;
    let int_name = name(&format!(
        "CN=prereg sandbox Attestation Intermediate,OU=Sandbox only - not for production,O={SANDBOX_ORG},C=US"
    ))?;
    let root = build(
        Profile {
            subject: root_name.clone(),
            issuer: root_name.clone(),
            kind: Kind::Ca { path_len: None },
        },
        spki(&root_key)?,
        &root_key,
    )?;
    let int = build(
        Profile {
            subject: int_name,
            issuer: root_name,
            kind: Kind::Ca { path_len: Some(0) },
        },
        spki(&int_key)?,
        &root_key,
    )?;
    let pem = |c: &Certificate| {
        c.to_pem(LineEnding::LF)
            .map_err(|e| Error::Crypto(e.to_string()))
    };
    let key_pem = |k: &SigningKey| {
        k.to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Crypto(e.to_string()))
    };
    Ok(GeneratedCa {
        root_pem: pem(&root)?,
        root_key_pem: key_pem(&root_key)?,
        intermediate_pem: pem(&int)?,
        intermediate_key_pem: key_pem(&int_key)?,
    })
}

/// Issues an attestation leaf for `identity` under the committed sandbox intermediate.
/// Returns the leaf's private scalar and the chain `[leaf, intermediate]` (DER), the
/// `x5c` order.
pub(crate) fn issue_leaf(identity: &Identity) -> Result<(SecretBytes, Vec<Vec<u8>>)> {
    let int_key = SigningKey::from_pkcs8_pem(INTERMEDIATE_KEY_PEM)
        .map_err(|e| Error::Crypto(format!("sandbox intermediate key: {e}")))?;
    let int_cert = Certificate::from_pem(INTERMEDIATE_PEM)
        .map_err(|e| Error::Crypto(format!("sandbox intermediate certificate: {e}")))?;
    let leaf_key = SigningKey::try_generate().map_err(|_| Error::Rng)?;
    let subject = name(&format!(
        "CN=prereg sandbox virtual key EE Serial {},OU=Authenticator Attestation,O={SANDBOX_ORG},C=US",
        identity.serial
    ))?;
    let leaf = build(
        Profile {
            subject,
            issuer: int_cert.tbs_certificate().subject().clone(),
            kind: Kind::Leaf {
                aaguid: *identity.aaguid.as_bytes(),
            },
        },
        spki(&leaf_key)?,
        &int_key,
    )?;
    let chain = vec![
        leaf.to_der().map_err(|e| Error::Crypto(e.to_string()))?,
        int_cert
            .to_der()
            .map_err(|e| Error::Crypto(e.to_string()))?,
    ];
    let scalar = Zeroizing::new(leaf_key.to_bytes());
    Ok((SecretBytes::new(scalar.to_vec()), chain))
}

fn name(s: &str) -> Result<Name> {
    Name::from_str(s).map_err(|e| Error::Crypto(format!("certificate name {s:?}: {e}")))
}

fn spki(key: &SigningKey) -> Result<SubjectPublicKeyInfo<der::Any, der::asn1::BitString>> {
    SubjectPublicKeyInfo::from_key(key.verifying_key())
        .map_err(|e| Error::Crypto(format!("public key: {e}")))
}

fn validity() -> Result<Validity> {
    // Fixed dates so the committed CA and every leaf agree: 2026-01-01 .. 2056-01-01.
    let at = |secs: u64| {
        Time::try_from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .map_err(|e| Error::Crypto(e.to_string()))
    };
    Ok(Validity::new(at(1_767_225_600)?, at(2_713_910_400)?))
}

fn build(
    profile: Profile,
    spki: SubjectPublicKeyInfo<der::Any, der::asn1::BitString>,
    signer: &SigningKey,
) -> Result<Certificate> {
    let mut serial = crate::secret::random_bytes(16)?;
    serial[0] &= 0x7F; // positive
    serial[0] |= 0x01; // and no leading zero byte
    let serial = SerialNumber::new(&serial).map_err(|e| Error::Crypto(e.to_string()))?;
    let builder = CertificateBuilder::new(profile, serial, validity()?, spki)
        .map_err(|e| Error::Crypto(e.to_string()))?;
    builder
        .build::<_, DerSignature>(signer)
        .map_err(|e| Error::Crypto(format!("signing certificate: {e}")))
}

enum Kind {
    Ca { path_len: Option<u8> },
    Leaf { aaguid: [u8; 16] },
}

struct Profile {
    subject: Name,
    issuer: Name,
    kind: Kind,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut ext: Vec<Extension> = Vec::new();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        let issuer_ski = SubjectKeyIdentifier::try_from(issuer_spk)?;
        let subject = tbs.subject();
        ext.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(issuer_ski.0.clone()),
                ..Default::default()
            }
            .to_extension(subject, &ext)?,
        );
        match &self.kind {
            Kind::Ca { path_len } => {
                ext.push(
                    BasicConstraints {
                        ca: true,
                        path_len_constraint: *path_len,
                    }
                    .to_extension(subject, &ext)?,
                );
                ext.push(
                    KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
                        .to_extension(subject, &ext)?,
                );
                ext.push(ski.to_extension(subject, &ext)?);
            }
            Kind::Leaf { aaguid } => {
                ext.push(
                    BasicConstraints {
                        ca: false,
                        path_len_constraint: None,
                    }
                    .to_extension(subject, &ext)?,
                );
                // extnValue = OCTET STRING { OCTET STRING (16 bytes) }.
                let inner = OctetString::new(aaguid.to_vec())?.to_der()?;
                ext.push(Extension {
                    extn_id: OID_FIDO_AAGUID,
                    critical: false,
                    extn_value: OctetString::new(inner)?,
                });
            }
        }
        Ok(ext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Firmware, Model};
    use x509_cert::der::Decode;

    #[test]
    fn leaf_meets_packed_certificate_requirements() {
        let id = Identity::new(Model::YubiKey5Nfc, Firmware::new(5, 7, 1), 12345678).unwrap();
        let (_key, chain) = issue_leaf(&id).unwrap();
        assert_eq!(chain.len(), 2);
        let leaf = Certificate::from_der(&chain[0]).unwrap();
        let tbs = leaf.tbs_certificate();
        assert_eq!(tbs.version(), x509_cert::certificate::Version::V3);
        let subject = tbs.subject().to_string();
        assert!(
            subject.contains("OU=Authenticator Attestation"),
            "{subject}"
        );
        assert!(subject.contains("C=US") && subject.contains("O=prereg sandbox"));
        assert!(subject.contains("CN="));
        let exts = tbs.extensions().unwrap();
        let aaguid_ext = exts.iter().find(|e| e.extn_id == OID_FIDO_AAGUID).unwrap();
        assert!(!aaguid_ext.critical);
        let mut want = vec![0x04, 0x10];
        want.extend_from_slice(id.aaguid.as_bytes());
        assert_eq!(aaguid_ext.extn_value.as_bytes(), &want[..]);
        let bc = exts
            .iter()
            .find(|e| e.extn_id == ObjectIdentifier::new_unwrap("2.5.29.19"))
            .unwrap();
        // BasicConstraints ::= SEQUENCE {} (cA defaults to FALSE).
        assert_eq!(bc.extn_value.as_bytes(), &[0x30, 0x00]);
    }

    #[test]
    fn sandbox_names_no_real_vendor() {
        for pem in [ROOT_PEM, INTERMEDIATE_PEM] {
            let c = Certificate::from_pem(pem).unwrap();
            let s = c.tbs_certificate().subject().to_string().to_lowercase();
            assert!(s.contains("prereg sandbox"), "{s}");
            assert!(!s.contains("yubico"), "{s}");
        }
    }
}
