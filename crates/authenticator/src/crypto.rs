//! The primitives the key itself uses, all from aws-lc-rs: ES256 credential and
//! attestation signatures, SHA-256, the RNG. (Certificate issuance for the sandbox CA
//! stays on RustCrypto `p256` + `x509-cert`'s builder: aws-lc-rs builds no X.509.)

use aws_lc_rs::agreement::{self, ECDH_P256};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::SecretBytes;

/// A P-256 ES256 key pair (credential or attestation key).
pub(crate) struct P256Key(EcdsaKeyPair);

impl P256Key {
    /// A fresh key from the system RNG.
    pub(crate) fn generate() -> Result<Self> {
        EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .map(Self)
            .map_err(|_| Error::Rng)
    }

    /// The key with this 32-byte big-endian private scalar (as the key file stores it).
    pub(crate) fn from_scalar(d: &[u8]) -> Result<Self> {
        let corrupt = || Error::State("a private key in the key file is corrupt".into());
        // aws-lc's ECDSA import wants the public point too: derive it once.
        let public = agreement::PrivateKey::from_private_key(&ECDH_P256, d)
            .map_err(|_| corrupt())?
            .compute_public_key()
            .map_err(|_| corrupt())?;
        EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            d,
            public.as_ref(),
        )
        .map(Self)
        .map_err(|_| corrupt())
    }

    /// The private scalar (32 bytes, big-endian) for the key file.
    pub(crate) fn scalar(&self) -> Result<SecretBytes> {
        let bin = self
            .0
            .private_key()
            .as_be_bytes()
            .map_err(|_| Error::Crypto("private key export".into()))?;
        let bytes = Zeroizing::new(bin.as_ref().to_vec());
        Ok(SecretBytes::new(bytes.to_vec()))
    }

    /// The uncompressed SEC1 public point (65 bytes).
    pub(crate) fn public_point(&self) -> &[u8] {
        self.0.public_key().as_ref()
    }

    /// A DER ECDSA signature over `authData || clientDataHash` (WebAuthn §6.5.5).
    pub(crate) fn sign(&self, auth_data: &[u8], client_data_hash: &[u8; 32]) -> Result<Vec<u8>> {
        let mut msg = Vec::with_capacity(auth_data.len() + 32);
        msg.extend_from_slice(auth_data);
        msg.extend_from_slice(client_data_hash);
        self.0
            .sign(&SystemRandom::new(), &msg)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| Error::Crypto("ECDSA signing failed".into()))
    }
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Fills `buf` from the system RNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| Error::Rng)
}
