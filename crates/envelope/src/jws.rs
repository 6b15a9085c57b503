//! Compact JWS with `ES384` (RFC 7515, RFC 7518 §3.4): P-384, SHA-384, the signature is
//! the raw 96-byte `r || s`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::compact::{check_members, header_object, require_alg, split, string_member};
use crate::error::{Error, Result, clip};
use crate::jwk::{Jwks, KeyUse, PrivateJwk};
use crate::{MAX_INPUT, b64};

/// The only signature algorithm of the profile.
pub const JWS_ALG: &str = "ES384";
/// The `typ` every JWS of the profile carries.
pub const JWS_TYP: &str = "fido-prereg+jws";

const SIGNATURE_LEN: usize = 96;

/// A verified JWS: which trusted key signed it and its payload (zeroized on drop).
pub struct VerifiedJws {
    /// The signing key's `kid`.
    pub kid: String,
    /// The signed payload.
    pub payload: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for VerifiedJws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedJws")
            .field("kid", &self.kid)
            .field("payload", &"[redacted]")
            .finish()
    }
}

/// Signs `payload` with `signer` (a P-384 `use: sig` key) as a compact JWS with protected
/// header `{"alg":"ES384","kid":..,"typ":"fido-prereg+jws"}`.
pub fn sign_jws(payload: &[u8], signer: &PrivateJwk) -> Result<String> {
    signer.public().require_use(KeyUse::Sig)?;
    if payload.len() > MAX_INPUT {
        return Err(Error::TooLarge { max: MAX_INPUT });
    }
    let header = JwsHeaderOut {
        alg: JWS_ALG,
        kid: signer.kid(),
        typ: JWS_TYP,
    };
    let header = serde_json::to_vec(&header).map_err(|_| Error::Crypto("header encoding"))?;
    let mut token = b64::encode(header);
    token.push('.');
    token.push_str(&b64::encode(payload));
    let key = signer.signing_key().ok_or(Error::InvalidKey(
        "key is not a signing key (use must be \"sig\")",
    ))?;
    let signature = key
        .sign(&SystemRandom::new(), token.as_bytes())
        .map_err(|_| Error::Crypto("ECDSA signing"))?;
    token.push('.');
    token.push_str(&b64::encode(signature.as_ref()));
    Ok(token)
}

/// Verifies a compact JWS of the profile against the trusted signing keys and returns its
/// payload. The header must be exactly `alg` (ES384), `kid` (in `trusted`) and `typ`.
pub fn verify_jws(token: &str, trusted: &Jwks) -> Result<VerifiedJws> {
    let [header_b64, payload_b64, signature_b64] = split::<3>(token, "JWS")?;
    let h = header_object(header_b64, "JWS header")?;
    require_alg(&h, "alg", JWS_ALG)?;
    check_members(&h, &["alg", "kid", "typ"])?;
    let typ = string_member(&h, "typ")?;
    if typ != JWS_TYP {
        return Err(Error::Header(format!(
            "typ is {:?}, expected {JWS_TYP:?}",
            clip(typ)
        )));
    }
    let kid = string_member(&h, "kid")?;
    let key = trusted
        .get(kid)
        .ok_or_else(|| Error::UntrustedSigner { kid: clip(kid) })?;
    key.require_use(KeyUse::Sig)?;

    let signature = b64::decode(signature_b64, "JWS")?;
    if signature.len() != SIGNATURE_LEN {
        return Err(Error::Signature);
    }
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = token
        .get(..signing_input_len)
        .ok_or(Error::Malformed {
            what: "JWS",
            detail: "signing input",
        })?
        .as_bytes();
    // Fixed-format r || s; r and s must be in [1, n-1]. A DER signature is refused above
    // by its length.
    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, key.sec1())
        .verify(signing_input, &signature)
        .map_err(|_| Error::Signature)?;

    Ok(VerifiedJws {
        kid: kid.to_owned(),
        payload: Zeroizing::new(b64::decode(payload_b64, "JWS")?),
    })
}

#[derive(Serialize)]
struct JwsHeaderOut<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}
