//! P-384 keys as JWKs (RFC 7517/7518 §6.2) and key sets (JWKS).
//!
//! Parsing is the validation: a [`PublicJwk`] always holds a point on P-384, a
//! [`PrivateJwk`] always holds a scalar whose public point matches its `x`/`y`.

use std::fmt;

use std::sync::Arc;

use aws_lc_rs::agreement::{self, ECDH_P384};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::{Error, Result};

/// Size of a P-384 field element / scalar in bytes.
pub(crate) const COORD_LEN: usize = 48;
/// Size of an uncompressed SEC1 P-384 point: `0x04 || x || y`.
pub const POINT_LEN: usize = 1 + 2 * COORD_LEN;

/// What a key is for (`use`): encryption (transport and response keys) or signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyUse {
    /// `"enc"`: transport keys and response keys (JWE recipients).
    #[serde(rename = "enc")]
    Enc,
    /// `"sig"`: fulfiller signing keys (JWS).
    #[serde(rename = "sig")]
    Sig,
}

impl KeyUse {
    fn as_str(self) -> &'static str {
        match self {
            KeyUse::Enc => "enc",
            KeyUse::Sig => "sig",
        }
    }
}

/// A public P-384 key with its `kid` and `use`. Serializes as
/// `{"kty":"EC","crv":"P-384","kid":..,"use":..,"x":..,"y":..}`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicJwk {
    kid: String,
    key_use: KeyUse,
    /// The uncompressed SEC1 point, checked to be on P-384 when the value was built.
    point: [u8; POINT_LEN],
}

impl PublicJwk {
    /// Parses a public JWK from JSON text. Refuses a JWK that carries `d` (a private key
    /// where a public one belongs), any `kty`/`crv` other than `EC`/`P-384`, and points
    /// off the curve.
    pub fn parse(json: &str) -> Result<Self> {
        let value = crate::json::parse_strict(json.as_bytes(), "JWK")?;
        Self::from_value(&value)
    }

    /// Builds a public JWK from an already-parsed JSON value (see [`PublicJwk::parse`]).
    pub fn from_value(value: &Value) -> Result<Self> {
        let fields = JwkFields::read(value)?;
        if fields.d.is_some() {
            return Err(Error::InvalidKey(
                "a private key (with \"d\") was given where a public key belongs",
            ));
        }
        fields.public()
    }

    /// Wraps an existing public key given as an uncompressed SEC1 point
    /// (`0x04 || x || y`, 97 bytes). Refuses any other encoding and points off P-384.
    pub fn from_sec1(kid: impl Into<String>, key_use: KeyUse, point: &[u8]) -> Result<Self> {
        let kid = kid.into();
        check_kid(&kid)?;
        let point = checked_point(point)?;
        Ok(Self {
            kid,
            key_use,
            point,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// What the key is for.
    pub fn key_use(&self) -> KeyUse {
        self.key_use
    }

    /// The P-384 public key as an uncompressed SEC1 point (`0x04 || x || y`, 97 bytes),
    /// the form X.509 `subjectPublicKey` and COSE tools take.
    pub fn sec1(&self) -> &[u8] {
        &self.point
    }

    /// The JWK as a JSON value.
    pub fn to_value(&self) -> Value {
        let (x, y) = coordinates(&self.point);
        let mut m = Map::new();
        m.insert("kty".into(), "EC".into());
        m.insert("crv".into(), "P-384".into());
        m.insert("kid".into(), self.kid.clone().into());
        m.insert("use".into(), self.key_use.as_str().into());
        m.insert("x".into(), x.into());
        m.insert("y".into(), y.into());
        Value::Object(m)
    }

    /// The JWK as compact JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// Checks that this key is meant for `expected`.
    pub(crate) fn require_use(&self, expected: KeyUse) -> Result<()> {
        if self.key_use == expected {
            Ok(())
        } else {
            Err(Error::InvalidKey(match expected {
                KeyUse::Enc => "key is not an encryption key (use must be \"enc\")",
                KeyUse::Sig => "key is not a signing key (use must be \"sig\")",
            }))
        }
    }
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicJwk")
            .field("kid", &self.kid)
            .field("use", &self.key_use)
            .finish_non_exhaustive()
    }
}

impl Serialize for PublicJwk {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicJwk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        PublicJwk::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// A P-384 private key with its public half. The scalar is zeroized on drop and never
/// printed: `Debug` shows `[redacted]`. It deliberately does not implement `Serialize`;
/// use [`PrivateJwk::to_json`] where a private key must be written out.
#[derive(Clone)]
pub struct PrivateJwk {
    public: PublicJwk,
    /// Shared between clones: the aws-lc key objects are immutable once built.
    secret: Arc<Secret>,
}

/// The private half, prepared once for what the key's `use` allows: ECDH for `enc` keys,
/// ECDSA for `sig` keys (building either per operation would cost a scalar
/// multiplication to recompute the public point).
struct Secret {
    /// The scalar as a 48-byte big-endian integer, for [`PrivateJwk::to_json`].
    d: Zeroizing<[u8; COORD_LEN]>,
    op: SecretOp,
}

enum SecretOp {
    Agreement(agreement::PrivateKey),
    Signing(EcdsaKeyPair),
}

impl PrivateJwk {
    /// Generates a fresh key pair from the system RNG.
    pub fn generate(kid: impl Into<String>, key_use: KeyUse) -> Result<Self> {
        let key = agreement::PrivateKey::generate(&ECDH_P384).map_err(|_| Error::Rng)?;
        let mut d = Zeroizing::new([0u8; COORD_LEN]);
        {
            use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
            let bin: EcPrivateKeyBin<'static> = key
                .as_be_bytes()
                .map_err(|_| Error::Crypto("private key export"))?;
            if bin.as_ref().len() != COORD_LEN {
                return Err(Error::Crypto("private key export"));
            }
            d.copy_from_slice(bin.as_ref());
        }
        let point = public_point(&key)?;
        let public = PublicJwk::from_sec1(kid, key_use, &point)?;
        Self::assemble(public, d, key)
    }

    /// Parses a private JWK (with `d`) from JSON text; checks that `d` matches `x`/`y`.
    pub fn parse(json: &str) -> Result<Self> {
        let value = crate::json::parse_strict(json.as_bytes(), "JWK")?;
        Self::from_value(&value)
    }

    /// Builds a private JWK from an already-parsed JSON value (see [`PrivateJwk::parse`]).
    pub fn from_value(value: &Value) -> Result<Self> {
        let fields = JwkFields::read(value)?;
        let d = fields
            .d
            .as_deref()
            .ok_or(Error::InvalidKey("private key has no \"d\""))?;
        let d = Zeroizing::new(b64::decode(d, "JWK")?);
        let d: Zeroizing<[u8; COORD_LEN]> = Zeroizing::new(
            d.as_slice()
                .try_into()
                .map_err(|_| Error::InvalidKey("\"d\" is not 48 bytes"))?,
        );
        // Refuses 0 and scalars >= the group order.
        let key = agreement::PrivateKey::from_private_key(&ECDH_P384, d.as_slice())
            .map_err(|_| Error::InvalidKey("\"d\" is not a valid P-384 scalar"))?;
        let public = fields.public()?;
        if public_point(&key)? != public.point {
            return Err(Error::InvalidKey("\"d\" does not match \"x\"/\"y\""));
        }
        Self::assemble(public, d, key)
    }

    /// The public half.
    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    /// What the key is for.
    pub fn key_use(&self) -> KeyUse {
        self.public.key_use()
    }

    /// The private JWK (including `d`) as JSON text, in a buffer zeroized on drop.
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut value = self.public.to_value();
        let d = Zeroizing::new(b64::encode(self.secret.d.as_slice()));
        if let Value::Object(m) = &mut value {
            m.insert("d".into(), Value::String(d.as_str().to_owned()));
        }
        let text = Zeroizing::new(value.to_string());
        // The copy of `d` inside `value` is overwritten before the value is dropped.
        if let Value::Object(m) = &mut value
            && let Some(Value::String(s)) = m.get_mut("d")
        {
            zeroize::Zeroize::zeroize(s);
        }
        text
    }

    /// Prepares the key for its `use`. `key` is the ECDH form of `d`, already checked to
    /// match `public`.
    fn assemble(
        public: PublicJwk,
        d: Zeroizing<[u8; COORD_LEN]>,
        key: agreement::PrivateKey,
    ) -> Result<Self> {
        let op = match public.key_use {
            KeyUse::Enc => SecretOp::Agreement(key),
            KeyUse::Sig => SecretOp::Signing(
                EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P384_SHA384_FIXED_SIGNING,
                    d.as_slice(),
                    &public.point,
                )
                .map_err(|_| Error::InvalidKey("\"d\" does not match \"x\"/\"y\""))?,
            ),
        };
        debug_assert!(match &op {
            SecretOp::Signing(k) => k.public_key().as_ref() == public.point.as_slice(),
            SecretOp::Agreement(_) => true,
        });
        Ok(Self {
            public,
            secret: Arc::new(Secret { d, op }),
        })
    }

    /// The ECDSA key of a `use: sig` key.
    pub(crate) fn signing_key(&self) -> Option<&EcdsaKeyPair> {
        match &self.secret.op {
            SecretOp::Signing(k) => Some(k),
            SecretOp::Agreement(_) => None,
        }
    }

    /// The ECDH key of a `use: enc` key.
    pub(crate) fn agreement_key(&self) -> Option<&agreement::PrivateKey> {
        match &self.secret.op {
            SecretOp::Agreement(k) => Some(k),
            SecretOp::Signing(_) => None,
        }
    }
}

/// The uncompressed public point of an ECDH private key.
pub(crate) fn public_point(key: &agreement::PrivateKey) -> Result<[u8; POINT_LEN]> {
    let public = key
        .compute_public_key()
        .map_err(|_| Error::Crypto("public key computation"))?;
    public
        .as_ref()
        .try_into()
        .map_err(|_| Error::Crypto("public key is not an uncompressed P-384 point"))
}

impl fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateJwk")
            .field("kid", &self.public.kid)
            .field("use", &self.public.key_use)
            .field("d", &"[redacted]")
            .finish()
    }
}

/// A set of public keys (`{"keys":[...]}`), unique by `kid`. Used for the published
/// transport and signing key sets, and as the trusted signing keys of a verifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<PublicJwk>,
}

impl Jwks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `{"keys":[...]}`. Every key must be a valid public P-384 JWK and every
    /// `kid` unique; a JWKS with private keys in it is refused. Members the profile does
    /// not use (`x5c`, `x5t`, `x5t#S256`, `key_ops`, unknown ones, and top-level members
    /// next to `keys`) are ignored as RFC 7517 §4 and §5 require.
    pub fn parse(json: &str) -> Result<Self> {
        let value = crate::json::parse_strict(json.as_bytes(), "JWKS")?;
        Self::from_value(&value)
    }

    /// Builds a set from an already-parsed JSON value (see [`Jwks::parse`]). Top-level
    /// members other than `keys` are ignored (RFC 7517 §5: "Additional members can be
    /// present in the JWK Set; if not understood by implementations encountering them,
    /// they MUST be ignored").
    pub fn from_value(value: &Value) -> Result<Self> {
        let obj = value.as_object().ok_or(Error::Malformed {
            what: "JWKS",
            detail: "not a JSON object",
        })?;
        let list = obj
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(Error::Malformed {
                what: "JWKS",
                detail: "\"keys\" must be an array",
            })?;
        let mut set = Jwks::new();
        for key in list {
            set.add(PublicJwk::from_value(key)?)?;
        }
        Ok(set)
    }

    /// A set of these public keys (e.g. the public halves of a fulfiller's key pairs, for
    /// its `/.well-known/*.jwks` endpoint). Refuses duplicate `kid`s.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a PublicJwk>) -> Result<Self> {
        let mut set = Jwks::new();
        for key in keys {
            set.add(key.clone())?;
        }
        Ok(set)
    }

    /// The key with this `kid`, if any.
    pub fn get(&self, kid: &str) -> Option<&PublicJwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// Adds a key (rotation: publish the new key next to the old). Refuses a duplicate
    /// `kid`.
    pub fn add(&mut self, key: PublicJwk) -> Result<()> {
        if self.get(&key.kid).is_some() {
            return Err(Error::InvalidKey(
                "a key with this kid is already in the set",
            ));
        }
        self.keys.push(key);
        Ok(())
    }

    /// Removes and returns the key with this `kid` (rotation: retire the old key).
    pub fn retire(&mut self, kid: &str) -> Option<PublicJwk> {
        let pos = self.keys.iter().position(|k| k.kid == kid)?;
        Some(self.keys.remove(pos))
    }

    /// All keys, in insertion order.
    pub fn keys(&self) -> &[PublicJwk] {
        &self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `{"keys":[...]}` as a JSON value.
    pub fn to_value(&self) -> Value {
        let keys = self.keys.iter().map(PublicJwk::to_value).collect();
        let mut m = Map::new();
        m.insert("keys".into(), Value::Array(keys));
        Value::Object(m)
    }

    /// `{"keys":[...]}` as compact JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

impl Serialize for Jwks {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Jwks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Jwks::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// Parses uncompressed affine coordinates into a point, refusing points off P-384.
pub(crate) fn point_from_xy(x: &str, y: &str) -> Result<[u8; POINT_LEN]> {
    parsed_point_from_xy(x, y).map(|(point, _)| point)
}

/// [`point_from_xy`] that also returns aws-lc's parsed key, for a key agreement right
/// after (so the point is decoded once).
pub(crate) fn parsed_point_from_xy(
    x: &str,
    y: &str,
) -> Result<([u8; POINT_LEN], agreement::ParsedPublicKey)> {
    let x = b64::decode(x, "JWK")?;
    let y = b64::decode(y, "JWK")?;
    if x.len() != COORD_LEN || y.len() != COORD_LEN {
        return Err(Error::InvalidKey("\"x\" and \"y\" must be 48 bytes each"));
    }
    let mut sec1 = [0u8; POINT_LEN];
    sec1[0] = 0x04;
    sec1[1..=COORD_LEN].copy_from_slice(&x);
    sec1[1 + COORD_LEN..].copy_from_slice(&y);
    checked_parsed_point(&sec1)
}

/// Checks that `sec1` is an uncompressed point on P-384 (coordinates below the field
/// prime, the curve equation holds; the identity has no uncompressed form).
pub(crate) fn checked_point(sec1: &[u8]) -> Result<[u8; POINT_LEN]> {
    checked_parsed_point(sec1).map(|(point, _)| point)
}

fn checked_parsed_point(sec1: &[u8]) -> Result<([u8; POINT_LEN], agreement::ParsedPublicKey)> {
    let point: [u8; POINT_LEN] = sec1
        .try_into()
        .map_err(|_| Error::InvalidKey("point is not on P-384"))?;
    if point[0] != 0x04 {
        return Err(Error::InvalidKey("point is not on P-384"));
    }
    // aws-lc parses the octets with EC_POINT_oct2point, which refuses points off the curve.
    let parsed = agreement::ParsedPublicKey::try_from(agreement::UnparsedPublicKey::new(
        &ECDH_P384,
        point.as_slice(),
    ))
    .map_err(|_| Error::InvalidKey("point is not on P-384"))?;
    Ok((point, parsed))
}

/// The base64url `x` and `y` of an uncompressed point.
pub(crate) fn coordinates(point: &[u8; POINT_LEN]) -> (String, String) {
    let (x, y) = point[1..].split_at(COORD_LEN);
    (b64::encode(x), b64::encode(y))
}

fn check_kid(kid: &str) -> Result<()> {
    if kid.is_empty() || kid.len() > 256 || kid.chars().any(char::is_control) {
        return Err(Error::InvalidKey(
            "kid must be 1 to 256 characters without control characters",
        ));
    }
    Ok(())
}

/// The members of an EC JWK, read strictly.
struct JwkFields {
    kid: String,
    key_use: KeyUse,
    x: String,
    y: String,
    d: Option<Zeroizing<String>>,
}

impl JwkFields {
    /// Reads the members the profile uses. Every other member is ignored (RFC 7517 §4:
    /// "Additional members can be present in the JWK; if not understood by
    /// implementations encountering them, they MUST be ignored"), except that the X.509
    /// members, when present, must have the types RFC 7517 §4.6-4.9 give them.
    fn read(value: &Value) -> Result<Self> {
        let obj = value.as_object().ok_or(Error::Malformed {
            what: "JWK",
            detail: "not a JSON object",
        })?;
        check_x509_members(obj)?;
        let text = |name: &'static str| -> Result<Option<&str>> {
            match obj.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(Error::Malformed {
                    what: "JWK",
                    detail: "a member that must be a string is not",
                }),
            }
        };
        if text("kty")? != Some("EC") {
            return Err(Error::InvalidKey("kty must be \"EC\""));
        }
        match text("crv")? {
            Some("P-384") => {}
            Some(other) => {
                return Err(Error::UnsupportedAlgorithm {
                    which: "crv",
                    value: crate::error::clip(other),
                    allowed: "P-384",
                });
            }
            None => return Err(Error::InvalidKey("crv is missing")),
        }
        let kid = text("kid")?.ok_or(Error::InvalidKey("kid is missing"))?;
        check_kid(kid)?;
        let key_use = match text("use")? {
            Some("enc") => KeyUse::Enc,
            Some("sig") => KeyUse::Sig,
            _ => return Err(Error::InvalidKey("use must be \"enc\" or \"sig\"")),
        };
        if let Some(alg) = text("alg")? {
            check_alg(alg, key_use)?;
        }
        Ok(Self {
            kid: kid.to_owned(),
            key_use,
            x: text("x")?
                .ok_or(Error::InvalidKey("x is missing"))?
                .to_owned(),
            y: text("y")?
                .ok_or(Error::InvalidKey("y is missing"))?
                .to_owned(),
            d: text("d")?.map(|d| Zeroizing::new(d.to_owned())),
        })
    }

    fn public(&self) -> Result<PublicJwk> {
        Ok(PublicJwk {
            kid: self.kid.clone(),
            key_use: self.key_use,
            point: point_from_xy(&self.x, &self.y)?,
        })
    }
}

/// `alg` (RFC 7517 §4.4) must be the profile's algorithm for the key's `use`:
/// `ECDH-ES+A256KW` for an `enc` key, `ES384` for a `sig` key.
fn check_alg(alg: &str, key_use: KeyUse) -> Result<()> {
    match (alg, key_use) {
        ("ECDH-ES+A256KW", KeyUse::Enc) | ("ES384", KeyUse::Sig) => Ok(()),
        ("ES384", KeyUse::Enc) => Err(Error::InvalidKey(
            "alg \"ES384\" is a signature algorithm but use is \"enc\" (an enc key takes alg \"ECDH-ES+A256KW\")",
        )),
        ("ECDH-ES+A256KW", KeyUse::Sig) => Err(Error::InvalidKey(
            "alg \"ECDH-ES+A256KW\" is a key-agreement algorithm but use is \"sig\" (a sig key takes alg \"ES384\")",
        )),
        (other, _) => Err(Error::UnsupportedAlgorithm {
            which: "alg",
            value: crate::error::clip(other),
            allowed: "ES384 (use sig) or ECDH-ES+A256KW (use enc)",
        }),
    }
}

/// The X.509 members are not used here, but a JWK whose `x5c` is not an array of base64
/// strings or whose thumbprints are not base64url of the right length is malformed
/// (RFC 7517 §4.7-4.9), so it is refused rather than half-read.
fn check_x509_members(obj: &Map<String, Value>) -> Result<()> {
    const BAD_X5C: Error = Error::Malformed {
        what: "JWK",
        detail: "x5c must be a non-empty array of base64 (not base64url) DER certificates",
    };
    if let Some(x5c) = obj.get("x5c") {
        let certs = x5c.as_array().ok_or(BAD_X5C)?;
        if certs.is_empty() {
            return Err(BAD_X5C);
        }
        for cert in certs {
            let text = cert.as_str().ok_or(BAD_X5C)?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| BAD_X5C)?;
            // A DER certificate is a SEQUENCE.
            if der.first() != Some(&0x30) {
                return Err(BAD_X5C);
            }
        }
    }
    for (name, len, detail) in [
        (
            "x5t",
            20,
            "x5t must be the base64url SHA-1 thumbprint (20 bytes) of a certificate",
        ),
        (
            "x5t#S256",
            32,
            "x5t#S256 must be the base64url SHA-256 thumbprint (32 bytes) of a certificate",
        ),
    ] {
        if let Some(v) = obj.get(name) {
            let bad = Error::Malformed {
                what: "JWK",
                detail,
            };
            let text = v.as_str().ok_or(bad.clone())?;
            let bytes = b64::decode(text, "JWK").map_err(|_| bad.clone())?;
            if bytes.len() != len {
                return Err(bad);
            }
        }
    }
    Ok(())
}
