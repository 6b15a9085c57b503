//! The pre-registration envelope, profile v1 (`docs/envelope.md`, from
//! `shared/spec/envelope.md`).
//!
//! Lives here: P-384 JWKs and JWKS, compact JWE (`ECDH-ES+A256KW` / `A256GCM`), compact
//! JWS (`ES384`), the four message types and `request_hash` binding.
//! Does not live here: any I/O, clocks or key storage. Callers bring bytes and keys
//! (and `iat`).
//!
//! Every primitive (P-384 ECDH and ECDSA, AES-256-GCM, AES-KW, SHA-2, the RNG) comes from
//! aws-lc-rs, the provider rustls and jsonwebtoken already use; the `fips` feature builds
//! it on the FIPS module (`docs/envelope.md`).
//!
//! The usual calls:
//! - requester: [`seal_request`] to a fulfiller transport key, later [`open_response`]
//!   (or [`open_credential_response`] / [`open_pin_response`]) with its response keys,
//!   the trusted signing JWKS and the request JWE it sent;
//! - fulfiller: [`open_request`] with its transport keys, then [`seal_response`] signed
//!   with its signing key to the request's [`Request::response_key`].
#![forbid(unsafe_code)]

mod b64;
mod compact;
mod error;
mod json;
mod jwe;
mod jwk;
mod jws;
pub mod kdf;
mod message;

use aws_lc_rs::digest::{SHA256, digest};
use serde_json::Value;

pub use error::{Error, Result};
pub use jwe::{CTY_REQUEST, CTY_RESPONSE, JWE_ALG, JWE_ENC, OpenedJwe, open_jwe, seal_jwe};
pub use jwk::{Jwks, KeyUse, PrivateJwk, PublicJwk};
pub use jws::{JWS_ALG, JWS_TYP, VerifiedJws, sign_jws, verify_jws};
pub use message::{
    CREDENTIAL_REQUEST_TYP, CREDENTIAL_RESPONSE_TYP, CredentialRequest, CredentialResponse,
    PIN_LEN, PIN_REQUEST_TYP, PIN_RESPONSE_TYP, Pin, PinChoice, PinRequest, PinResponse, Request,
    Response,
};

/// The most any token or key document may be: 256 KiB. Larger inputs are refused before
/// parsing.
pub const MAX_INPUT: usize = 256 * 1024;

/// `base64url(SHA-256(request JWE compact string, ASCII))`: binds a response to the
/// request it answers.
pub fn request_hash(request_jwe: &str) -> String {
    b64::encode(digest(&SHA256, request_jwe.as_bytes()))
}

/// Encrypts a request to a fulfiller transport key (`use: enc`).
pub fn seal_request(request: &Request, transport: &PublicJwk) -> Result<String> {
    request.validate()?;
    seal_jwe(&request.to_json_bytes()?, transport, CTY_REQUEST)
}

/// Decrypts a request with whichever transport key its `kid` names, and validates it.
pub fn open_request(jwe: &str, transport_keys: &[PrivateJwk]) -> Result<Request> {
    let opened = open_jwe(jwe, transport_keys, CTY_REQUEST)?;
    Request::from_json_bytes(&opened.plaintext)
}

/// Signs a response with a fulfiller signing key (`use: sig`) and encrypts the JWS to
/// the requester's response key. An empty `request_hash` in `response` is filled from
/// `request_jwe`; a non-empty one must match it.
pub fn seal_response(
    response: &Response,
    request_jwe: &str,
    signing: &PrivateJwk,
    response_key: &PublicJwk,
) -> Result<String> {
    let hash = request_hash(request_jwe);
    let mut response = response.clone();
    let slot = response.request_hash_mut();
    if slot.is_empty() {
        *slot = hash;
    } else if *slot != hash {
        return Err(Error::RequestHashMismatch);
    }
    response.validate()?;
    // The JWS carries the payload (perhaps a PIN) in base64url: zeroize it too.
    let jws = zeroize::Zeroizing::new(sign_jws(&response.to_json_bytes()?, signing)?);
    seal_jwe(jws.as_bytes(), response_key, CTY_RESPONSE)
}

/// Opens a response: decrypts it with whichever response key its `kid` names, verifies
/// the inner JWS against `trusted_signing`, and checks that it answers `request_jwe`.
pub fn open_response(
    jwe: &str,
    response_keys: &[PrivateJwk],
    trusted_signing: &Jwks,
    request_jwe: &str,
) -> Result<Response> {
    let opened = open_jwe(jwe, response_keys, CTY_RESPONSE)?;
    let jws = std::str::from_utf8(&opened.plaintext).map_err(|_| Error::Malformed {
        what: "JWS",
        detail: "not ASCII",
    })?;
    let verified = verify_jws(jws, trusted_signing)?;
    let response = Response::from_json_bytes(&verified.payload)?;
    if response.request_hash() != request_hash(request_jwe) {
        return Err(Error::RequestHashMismatch);
    }
    Ok(response)
}

/// [`open_response`] that also requires a credential response.
pub fn open_credential_response(
    jwe: &str,
    response_keys: &[PrivateJwk],
    trusted_signing: &Jwks,
    request_jwe: &str,
) -> Result<CredentialResponse> {
    match open_response(jwe, response_keys, trusted_signing, request_jwe)? {
        Response::Credential(r) => Ok(r),
        other => Err(Error::WrongMessageType {
            expected: CREDENTIAL_RESPONSE_TYP,
            found: other.typ().to_owned(),
        }),
    }
}

/// [`open_response`] that also requires a PIN response.
pub fn open_pin_response(
    jwe: &str,
    response_keys: &[PrivateJwk],
    trusted_signing: &Jwks,
    request_jwe: &str,
) -> Result<PinResponse> {
    match open_response(jwe, response_keys, trusted_signing, request_jwe)? {
        Response::Pin(r) => Ok(r),
        other => Err(Error::WrongMessageType {
            expected: PIN_RESPONSE_TYP,
            found: other.typ().to_owned(),
        }),
    }
}

/// Checks that the credential and PIN responses for one key name the same serial.
pub fn check_same_serial(credential: &CredentialResponse, pin: &PinResponse) -> Result<()> {
    if credential.serial == pin.serial {
        Ok(())
    } else {
        Err(Error::SerialMismatch)
    }
}

/// The protected header of a compact JWE (`{"jwe": header}`) or JWS (`{"jws": header}`),
/// without decrypting or verifying anything.
pub fn inspect(token: &str) -> Result<Value> {
    if token.len() > MAX_INPUT {
        return Err(Error::TooLarge { max: MAX_INPUT });
    }
    let (kind, header_b64) = match token.split('.').count() {
        5 => ("jwe", compact::split::<5>(token, "JWE")?[0]),
        3 => ("jws", compact::split::<3>(token, "JWS")?[0]),
        _ => {
            return Err(Error::Malformed {
                what: "token",
                detail: "neither a compact JWE (5 parts) nor a compact JWS (3 parts)",
            });
        }
    };
    let header = compact::header_object(header_b64, "header")?;
    let mut out = serde_json::Map::new();
    out.insert(kind.to_owned(), Value::Object(header));
    Ok(Value::Object(out))
}
