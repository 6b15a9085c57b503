//! The fulfiller's key sets: P-384 transport keys (`use: enc`, requests are sealed to
//! them) and signing keys (`use: sig`, responses are signed with them), several live at
//! once. Rotation adds a key and stops publishing the oldest beyond `keys_per_set`; a
//! transport key that is no longer published still opens requests sealed to it before
//! the rotation (in-flight orders), a retired signing key signs nothing more.

use envelope::{Jwks, KeyUse, PrivateJwk};
use yubienterprise::Base58Id;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Key generation failed (the OS RNG).
    #[error("generating a {0} key failed: {1}")]
    Generate(&'static str, envelope::Error),
    /// The OS RNG failed while naming a key.
    #[error("the system random number generator failed")]
    Rng,
}

/// The key sets.
#[derive(Debug)]
pub struct KeyRing {
    keep: usize,
    transport: Vec<PrivateJwk>,
    transport_retired: Vec<PrivateJwk>,
    signing: Vec<PrivateJwk>,
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
        };
        for _ in 0..keep {
            ring.transport.push(generate(KeyUse::Enc)?);
            ring.signing.push(generate(KeyUse::Sig)?);
        }
        Ok(ring)
    }

    /// The published transport JWKS.
    pub fn transport_jwks(&self) -> Jwks {
        jwks(&self.transport)
    }

    /// The published signing JWKS.
    pub fn signing_jwks(&self) -> Jwks {
        jwks(&self.signing)
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
            if key_use == KeyUse::Enc {
                self.transport_retired.push(old);
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
