//! X.509 certificates for the fulfiller's signing keys, published as the `x5c` member of
//! each key in `/.well-known/yubico-sign.jwks` (RFC 7517 §4.7: the chain in order, leaf
//! first, each certificate standard base64 of its DER; the leaf's key must be the JWK's
//! key). The guide's "signing certificates" suggest Yubico publishes its signing keys
//! with certificates; the real chain is not public, so the sandbox makes its own: one
//! self-signed P-384 CA per fulfiller, and one leaf per signing key, issued when the key
//! is made (and on rotation).

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use envelope::PublicJwk;
use p384::ecdsa::{DerSignature, SigningKey};
use p384::elliptic_curve::Generate;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::der::Encode;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{SubjectPublicKeyInfo, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("making the sandbox signing certificate failed: {0}")]
pub struct CertError(String);

fn err(e: impl std::fmt::Display) -> CertError {
    CertError(e.to_string())
}

/// The sandbox's signing CA: a self-signed P-384 root whose key stays in memory.
pub(crate) struct SigningCa {
    key: SigningKey,
    name: Name,
    der: Vec<u8>,
}

impl std::fmt::Debug for SigningCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCa")
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl SigningCa {
    /// A fresh CA.
    pub(crate) fn generate() -> Result<Self, CertError> {
        let key = SigningKey::try_generate().map_err(|_| err("the system RNG failed"))?;
        let name = name(
            "CN=prereg sandbox FIDO Pre-reg Signing CA,OU=Sandbox only - not for production,O=prereg sandbox,C=US",
        )?;
        let spki = SubjectPublicKeyInfo::from_key(key.verifying_key()).map_err(err)?;
        let cert = build(
            Profile {
                subject: name.clone(),
                issuer: name.clone(),
                ca: true,
            },
            spki,
            &key,
        )?;
        Ok(Self {
            key,
            name,
            der: cert,
        })
    }

    /// The CA certificate (DER).
    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    /// The chain `[leaf, CA]` (DER) for a signing key: a leaf certificate for `public`
    /// issued by this CA, then the CA itself.
    pub(crate) fn chain_for(&self, public: &PublicJwk) -> Result<Vec<Vec<u8>>, CertError> {
        let subject = name(&format!(
            "CN=prereg sandbox FIDO Pre-reg signing key {},OU=Sandbox only - not for production,O=prereg sandbox,C=US",
            public.kid()
        ))?;
        let spki = SubjectPublicKeyInfo::from_key(
            &p384::PublicKey::from_sec1_bytes(public.sec1()).map_err(err)?,
        )
        .map_err(err)?;
        let leaf = build(
            Profile {
                subject,
                issuer: self.name.clone(),
                ca: false,
            },
            spki,
            &self.key,
        )?;
        Ok(vec![leaf, self.der.clone()])
    }
}

fn name(s: &str) -> Result<Name, CertError> {
    Name::from_str(s).map_err(err)
}

fn build(
    profile: Profile,
    spki: SubjectPublicKeyInfo<x509_cert::der::Any, x509_cert::der::asn1::BitString>,
    signer: &SigningKey,
) -> Result<Vec<u8>, CertError> {
    let mut serial = crate::rng::bytes::<16>().ok_or_else(|| err("the system RNG failed"))?;
    serial[0] &= 0x7F; // positive
    serial[0] |= 0x01; // and without a leading zero byte
    let serial = SerialNumber::new(&serial).map_err(err)?;
    // 2026-01-01 .. 2056-01-01, fixed so that the sandbox clock never outruns them.
    let at =
        |secs: u64| Time::try_from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)).map_err(err);
    let validity = Validity::new(at(1_767_225_600)?, at(2_713_910_400)?);
    let cert = CertificateBuilder::new(profile, serial, validity, spki)
        .map_err(err)?
        .build::<_, DerSignature>(signer)
        .map_err(err)?;
    cert.to_der().map_err(err)
}

struct Profile {
    subject: Name,
    issuer: Name,
    ca: bool,
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
        let subject = tbs.subject();
        let mut ext: Vec<Extension> = Vec::new();
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        let issuer_ski = SubjectKeyIdentifier::try_from(issuer_spk)?;
        ext.push(
            BasicConstraints {
                ca: self.ca,
                path_len_constraint: self.ca.then_some(0),
            }
            .to_extension(subject, &ext)?,
        );
        let usage = if self.ca {
            KeyUsages::KeyCertSign | KeyUsages::CRLSign
        } else {
            KeyUsages::DigitalSignature.into()
        };
        ext.push(KeyUsage(usage).to_extension(subject, &ext)?);
        ext.push(ski.to_extension(subject, &ext)?);
        if !self.ca {
            ext.push(
                AuthorityKeyIdentifier {
                    key_identifier: Some(issuer_ski.0.clone()),
                    ..Default::default()
                }
                .to_extension(subject, &ext)?,
            );
        }
        Ok(ext)
    }
}
