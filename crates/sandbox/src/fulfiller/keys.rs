//! The fulfiller's key sets: P-384 transport keys (`use: enc`, requests are sealed to
//! them) and signing keys (`use: sig`, responses are signed with them), several live at
//! once. Rotation adds a key and stops publishing the oldest beyond `keys_per_set`; a
//! transport key that is no longer published still opens requests sealed to it before
//! the rotation (in-flight orders), a retired signing key signs nothing more.
//!
//! Each signing key has an X.509 chain (leaf over the key, then the sandbox signing CA,
//! module `certs`), published as `x5c` with its `x5t#S256` next to the key.

use base64::Engine as _;
use envelope::{Jwks, KeyUse, PrivateJwk};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use yubienterprise::Base58Id;

use super::certs::{CertError, SigningCa};

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Key generation failed (the OS RNG).
    #[error("generating a {0} key failed: {1}")]
    Generate(&'static str, envelope::Error),
    /// The OS RNG failed while naming a key.
    #[error("the system random number generator failed")]
    Rng,
    /// A signing key's certificate could not be made.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// Kept keys that cannot form a ring.
    #[error("a key ring {0}")]
    Kept(&'static str),
}

/// The key sets.
#[derive(Debug)]
pub struct KeyRing {
    keep: usize,
    transport: Vec<PrivateJwk>,
    transport_retired: Vec<PrivateJwk>,
    signing: Vec<PrivateJwk>,
    ca: SigningCa,
    /// The `x5c` chain (DER, leaf first) of each signing key, by `kid`.
    chains: HashMap<String, Vec<Vec<u8>>>,
}

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    /// The new key's id.
    pub added: String,
    /// The key no longer published, if any.
    pub retired: Option<String>,
}

fn kid(prefix: &str) -> Result<String, KeyError> {
    let b = crate::rng::bytes::<22>().ok_or(KeyError::Rng)?;
    let id = Base58Id::from_random(b);
    Ok(format!("{prefix}-{}", &id.as_str()[..12]))
}

fn generate(key_use: KeyUse) -> Result<PrivateJwk, KeyError> {
    let (prefix, name) = match key_use {
        KeyUse::Enc => ("ysbx-trans", "transport"),
        KeyUse::Sig => ("ysbx-sign", "signing"),
    };
    PrivateJwk::generate(kid(prefix)?, key_use).map_err(|e| KeyError::Generate(name, e))
}

impl KeyRing {
    /// `keep` keys of each kind (at least 1).
    pub fn generate(keep: usize) -> Result<Self, KeyError> {
        let keep = keep.max(1);
        let mut ring = Self {
            keep,
            transport: Vec::new(),
            transport_retired: Vec::new(),
            signing: Vec::new(),
            ca: SigningCa::generate()?,
            chains: HashMap::new(),
        };
        for _ in 0..keep {
            ring.transport.push(generate(KeyUse::Enc)?);
            let key = generate(KeyUse::Sig)?;
            ring.certify(&key)?;
            ring.signing.push(key);
        }
        Ok(ring)
    }

    /// A ring of kept keys (a depot's key file): these transport and signing keys are
    /// published, each signing key certified by a fresh signing CA. `keep` is the larger
    /// of the two counts. Refuses an empty set or a key of the wrong `use`.
    pub fn from_keys(
        transport: Vec<PrivateJwk>,
        signing: Vec<PrivateJwk>,
    ) -> Result<Self, KeyError> {
        if transport.is_empty() || signing.is_empty() {
            return Err(KeyError::Kept(
                "needs at least one transport and one signing key",
            ));
        }
        if transport.iter().any(|k| k.key_use() != KeyUse::Enc)
            || signing.iter().any(|k| k.key_use() != KeyUse::Sig)
        {
            return Err(KeyError::Kept(
                "needs transport keys of use \"enc\" and signing keys of use \"sig\"",
            ));
        }
        let mut ring = Self {
            keep: transport.len().max(signing.len()),
            transport,
            transport_retired: Vec::new(),
            signing: Vec::new(),
            ca: SigningCa::generate()?,
            chains: HashMap::new(),
        };
        for key in signing {
            ring.certify(&key)?;
            ring.signing.push(key);
        }
        Ok(ring)
    }

    /// The published keys, private halves included, to keep in a file: transport keys,
    /// then signing keys.
    pub fn published_private(&self) -> (&[PrivateJwk], &[PrivateJwk]) {
        (&self.transport, &self.signing)
    }

    fn certify(&mut self, key: &PrivateJwk) -> Result<(), KeyError> {
        let chain = self.ca.chain_for(key.public())?;
        self.chains.insert(key.kid().to_owned(), chain);
        Ok(())
    }

    /// The published transport JWKS.
    pub fn transport_jwks(&self) -> Jwks {
        jwks(&self.transport)
    }

    /// The published signing JWKS.
    pub fn signing_jwks(&self) -> Jwks {
        jwks(&self.signing)
    }

    /// The published signing JWKS as served: each key with its `x5c` chain (standard
    /// base64 DER, leaf first) and `x5t#S256` (base64url SHA-256 of the leaf's DER).
    pub fn signing_jwks_document(&self) -> Value {
        let keys = self
            .signing
            .iter()
            .map(|k| {
                let mut v = k.public().to_value();
                if let (Value::Object(m), Some(chain)) = (&mut v, self.chains.get(k.kid())) {
                    let x5c = chain
                        .iter()
                        .map(|der| {
                            Value::String(base64::engine::general_purpose::STANDARD.encode(der))
                        })
                        .collect();
                    m.insert("x5c".into(), Value::Array(x5c));
                    if let Some(leaf) = chain.first() {
                        m.insert(
                            "x5t#S256".into(),
                            base64::engine::general_purpose::URL_SAFE_NO_PAD
                                .encode(Sha256::digest(leaf))
                                .into(),
                        );
                    }
                }
                v
            })
            .collect();
        serde_json::json!({ "keys": Value::Array(keys) })
    }

    /// The DER of the sandbox signing CA that issued every signing key's certificate.
    pub fn signing_ca_der(&self) -> &[u8] {
        self.ca.der()
    }

    /// Every transport private key that may open a request: published and retired.
    pub fn transport_private(&self) -> Vec<PrivateJwk> {
        self.transport
            .iter()
            .chain(self.transport_retired.iter())
            .cloned()
            .collect()
    }

    /// The key that signs responses now: the newest published signing key.
    pub fn current_signing(&self) -> Option<&PrivateJwk> {
        self.signing.last()
    }

    /// Adds a key of the kind and retires the oldest beyond `keep`.
    pub fn rotate(&mut self, key_use: KeyUse) -> Result<Rotation, KeyError> {
        let key = generate(key_use)?;
        if key_use == KeyUse::Sig {
            self.certify(&key)?;
        }
        let added = key.kid().to_owned();
        let set = match key_use {
            KeyUse::Enc => &mut self.transport,
            KeyUse::Sig => &mut self.signing,
        };
        set.push(key);
        let mut retired = None;
        if set.len() > self.keep {
            let old = set.remove(0);
            retired = Some(old.kid().to_owned());
            match key_use {
                KeyUse::Enc => self.transport_retired.push(old),
                KeyUse::Sig => {
                    self.chains.remove(old.kid());
                }
            }
        }
        Ok(Rotation { added, retired })
    }
}

fn jwks(keys: &[PrivateJwk]) -> Jwks {
    let mut set = Jwks::new();
    for k in keys {
        // Kids are unique by construction (random), so `add` cannot refuse a duplicate;
        // if it ever did, the key is simply not published.
        let _ = set.add(k.public().clone());
    }
    set
}
