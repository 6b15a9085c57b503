//! Compact JWE, `ECDH-ES+A256KW` key agreement with `A256GCM` content encryption
//! (RFC 7516, RFC 7518 §4.6), restricted to the profile: P-384 only, no `apu`/`apv`
//! content, a fixed set of protected header members.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P384, ParsedPublicKey, UnparsedPublicKey};
use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrap};
use serde::Serialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::compact::{check_members, header_object, require_alg, split, string_member, value_text};
use crate::error::{Error, Result, clip};
use crate::jwk::{KeyUse, PrivateJwk, PublicJwk, coordinates, parsed_point_from_xy, public_point};
use crate::{MAX_INPUT, b64, kdf};

/// The only key management algorithm of the profile.
pub const JWE_ALG: &str = "ECDH-ES+A256KW";
/// The only content encryption of the profile.
pub const JWE_ENC: &str = "A256GCM";
/// `cty` of a request JWE: the plaintext is a profile JSON message.
pub const CTY_REQUEST: &str = "fido-prereg+json";
/// `cty` of a response JWE: the plaintext is a compact JWS.
pub const CTY_RESPONSE: &str = "JWS";

const CEK_LEN: usize = 32;
const WRAPPED_CEK_LEN: usize = CEK_LEN + 8;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A decrypted JWE: who it was for, what it says it carries, and the plaintext (zeroized
/// on drop).
pub struct OpenedJwe {
    /// The recipient `kid` from the header (the key that opened it).
    pub kid: String,
    /// The `cty` from the header.
    pub cty: String,
    /// The decrypted content.
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for OpenedJwe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedJwe")
            .field("kid", &self.kid)
            .field("cty", &self.cty)
            .field("plaintext", &"[redacted]")
            .finish()
    }
}

/// Encrypts `plaintext` to `recipient` (a P-384 `use: enc` key) as a compact JWE with
/// protected header `{"alg","enc","kid","cty","epk"}`. `cty` must be [`CTY_REQUEST`] or
/// [`CTY_RESPONSE`], the only two the profile opens.
pub fn seal_jwe(plaintext: &[u8], recipient: &PublicJwk, cty: &str) -> Result<String> {
    recipient.require_use(KeyUse::Enc)?;
    if cty != CTY_REQUEST && cty != CTY_RESPONSE {
        return Err(Error::Header(format!(
            "cty {:?} is outside the profile ({CTY_REQUEST:?} or {CTY_RESPONSE:?})",
            clip(cty)
        )));
    }
    if plaintext.len() > MAX_INPUT {
        return Err(Error::TooLarge { max: MAX_INPUT });
    }
    let ephemeral = agreement::PrivateKey::generate(&ECDH_P384).map_err(|_| Error::Rng)?;
    let ephemeral_point = public_point(&ephemeral)?;
    // The recipient point was checked on the curve when its JWK was built.
    let kek = agreement::agree(
        &ephemeral,
        UnparsedPublicKey::new(&ECDH_P384, recipient.sec1()),
        Error::Crypto("ECDH key agreement"),
        |z| Ok(derive_kek(z)),
    )?;

    let mut cek = Zeroizing::new([0u8; CEK_LEN]);
    aws_lc_rs::rand::fill(cek.as_mut_slice()).map_err(|_| Error::Rng)?;
    let mut iv = [0u8; IV_LEN];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| Error::Rng)?;

    let kw =
        KeyEncryptionKey::new(&AES_256, kek.as_slice()).map_err(|_| Error::Crypto("KEK length"))?;
    let mut wrapped = [0u8; WRAPPED_CEK_LEN];
    kw.wrap(cek.as_slice(), &mut wrapped)
        .map_err(|_| Error::Crypto("AES key wrap"))?;

    let (x, y) = coordinates(&ephemeral_point);
    let header = JweHeaderOut {
        alg: JWE_ALG,
        enc: JWE_ENC,
        kid: recipient.kid(),
        cty,
        epk: EpkOut {
            kty: "EC",
            crv: "P-384",
            x: &x,
            y: &y,
        },
    };
    let header = serde_json::to_vec(&header).map_err(|_| Error::Crypto("header encoding"))?;
    let header_b64 = b64::encode(header);

    let gcm = content_key(&cek)?;
    // Holds plaintext until encrypted in place: zeroized in case encryption fails.
    let mut buf = Zeroizing::new(plaintext.to_vec());
    let tag = gcm
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header_b64.as_bytes()),
            buf.as_mut_slice(),
        )
        .map_err(|_| Error::Crypto("AES-GCM encryption"))?;

    Ok([
        header_b64,
        b64::encode(wrapped),
        b64::encode(iv),
        b64::encode(&*buf),
        b64::encode(tag.as_ref()),
    ]
    .join("."))
}

/// Decrypts a compact JWE of the profile with whichever of `keys` its `kid` names. The
/// header must be exactly the profile's and carry `cty` = `expected_cty`.
pub fn open_jwe(token: &str, keys: &[PrivateJwk], expected_cty: &str) -> Result<OpenedJwe> {
    let parts = split::<5>(token, "JWE")?;
    let [header_b64, wrapped_b64, iv_b64, ct_b64, tag_b64] = parts;
    let header = JweHeader::parse(header_b64)?;
    if header.cty != expected_cty {
        return Err(Error::Header(format!(
            "cty is {:?}, expected {expected_cty:?}",
            clip(&header.cty)
        )));
    }
    let key = keys
        .iter()
        .find(|k| k.kid() == header.kid)
        .ok_or_else(|| Error::UnknownKid {
            kid: clip(&header.kid),
        })?;
    key.public().require_use(KeyUse::Enc)?;

    let wrapped = b64::decode(wrapped_b64, "JWE")?;
    if wrapped.len() != WRAPPED_CEK_LEN {
        return Err(Error::Malformed {
            what: "JWE",
            detail: "encrypted key is not 40 bytes (A256KW of a 256-bit key)",
        });
    }
    let iv = b64::decode(iv_b64, "JWE")?;
    let iv: [u8; IV_LEN] = iv.as_slice().try_into().map_err(|_| Error::Malformed {
        what: "JWE",
        detail: "IV is not 96 bits",
    })?;
    let tag = b64::decode(tag_b64, "JWE")?;
    let tag: [u8; TAG_LEN] = tag.as_slice().try_into().map_err(|_| Error::Malformed {
        what: "JWE",
        detail: "authentication tag is not 128 bits",
    })?;
    let mut buf = Zeroizing::new(b64::decode(ct_b64, "JWE")?);

    let agreement_key = key.agreement_key().ok_or(Error::InvalidKey(
        "key is not an encryption key (use must be \"enc\")",
    ))?;
    let kek = agreement::agree(agreement_key, header.epk, Error::KeyAgreement, |z| {
        Ok(derive_kek(z))
    })?;
    let kw =
        KeyEncryptionKey::new(&AES_256, kek.as_slice()).map_err(|_| Error::Crypto("KEK length"))?;
    let mut cek = Zeroizing::new([0u8; CEK_LEN]);
    let unwrapped = kw
        .unwrap(&wrapped, cek.as_mut_slice())
        .map_err(|_| Error::Unwrap)?;
    if unwrapped.len() != CEK_LEN {
        return Err(Error::Unwrap);
    }

    let gcm = content_key(&cek)?;
    gcm.open_in_place_separate_tag(
        Nonce::assume_unique_for_key(iv),
        Aad::from(header_b64.as_bytes()),
        &tag,
        buf.as_mut_slice(),
    )
    .map_err(|_| Error::Decrypt)?;

    Ok(OpenedJwe {
        kid: header.kid,
        cty: header.cty,
        plaintext: buf,
    })
}

/// The protected header of a JWE of the profile, validated.
struct JweHeader {
    kid: String,
    cty: String,
    /// Checked on P-384 while parsing the header.
    epk: ParsedPublicKey,
}

impl JweHeader {
    fn parse(header_b64: &str) -> Result<Self> {
        let h = header_object(header_b64, "JWE header")?;
        require_alg(&h, "alg", JWE_ALG)?;
        require_alg(&h, "enc", JWE_ENC)?;
        check_members(&h, &["alg", "enc", "kid", "cty", "epk", "apu", "apv"])?;
        for party in ["apu", "apv"] {
            if let Some(v) = h.get(party)
                && v.as_str() != Some("")
            {
                return Err(Error::UnsupportedAlgorithm {
                    which: if party == "apu" { "apu" } else { "apv" },
                    value: value_text(Some(v)),
                    allowed: "absent or empty",
                });
            }
        }
        let kid = string_member(&h, "kid")?.to_owned();
        let cty = string_member(&h, "cty")?.to_owned();
        let epk = match h.get("epk") {
            Some(Value::Object(epk)) => parse_epk(epk)?,
            Some(_) => return Err(Error::Header("epk must be a JWK object".into())),
            None => return Err(Error::Header("epk is missing".into())),
        };
        Ok(Self { kid, cty, epk })
    }
}

fn parse_epk(epk: &Map<String, Value>) -> Result<ParsedPublicKey> {
    if let Some(name) = epk
        .keys()
        .find(|k| !["kty", "crv", "x", "y"].contains(&k.as_str()))
    {
        return Err(Error::Header(format!(
            "epk has member {:?}; only kty, crv, x, y are allowed",
            clip(name)
        )));
    }
    if epk.get("kty").and_then(Value::as_str) != Some("EC") {
        return Err(Error::UnsupportedAlgorithm {
            which: "epk.kty",
            value: value_text(epk.get("kty")),
            allowed: "EC",
        });
    }
    if epk.get("crv").and_then(Value::as_str) != Some("P-384") {
        return Err(Error::UnsupportedAlgorithm {
            which: "epk.crv",
            value: value_text(epk.get("crv")),
            allowed: "P-384",
        });
    }
    let x = string_member(epk, "x")?;
    let y = string_member(epk, "y")?;
    parsed_point_from_xy(x, y)
        .map(|(_, parsed)| parsed)
        .map_err(|e| match e {
            Error::InvalidKey(_) => Error::KeyAgreement,
            other => other,
        })
}

/// The key-encryption key: Concat KDF over the ECDH shared secret, `AlgorithmID` =
/// `ECDH-ES+A256KW`, empty `apu`/`apv`, 256 bits.
fn derive_kek(z: &[u8]) -> Zeroizing<Vec<u8>> {
    kdf::concat_kdf(z, JWE_ALG.as_bytes(), &[], &[], 32)
}

/// The AES-256-GCM content key.
fn content_key(cek: &[u8; CEK_LEN]) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, cek)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Crypto("CEK length"))
}

#[derive(Serialize)]
struct JweHeaderOut<'a> {
    alg: &'a str,
    enc: &'a str,
    kid: &'a str,
    cty: &'a str,
    epk: EpkOut<'a>,
}

#[derive(Serialize)]
struct EpkOut<'a> {
    kty: &'a str,
    crv: &'a str,
    x: &'a str,
    y: &'a str,
}
