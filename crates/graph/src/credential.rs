//! How the app proves who it is to the Entra token service (entra.md §4):
//!
//! - [`ClientCredential::Secret`]: the client secret in the form body
//!   (`client_secret_post`), what the guide sets up.
//! - [`ClientCredential::SecretBasic`]: the same secret in HTTP Basic
//!   (`client_secret_basic`, RFC 6749 §2.3.1: id and secret each form-urlencoded, then
//!   `id:secret` in base64).
//! - [`ClientCredential::Certificate`]: a certificate registered on the app
//!   (Microsoft identity platform "certificate credentials"): the request carries
//!   `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a
//!   `client_assertion`, a JWT signed RS256 with the certificate's private key whose
//!   header names the certificate by `x5t` (base64url SHA-1 of its DER) and `x5t#S256`
//!   (SHA-256), with `aud` the token endpoint, `iss` = `sub` = the client id, `exp`,
//!   `nbf`, `iat` and a fresh `jti`.
//!
//! Private keys and secrets never reach `Debug`, logs or error messages.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};
use zeroize::Zeroizing;

use crate::client::Error;

/// `client_assertion_type` for a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: Microsoft suggests "5-10 minutes after nbf".
const ASSERTION_LIFETIME_SECS: u64 = 600;

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// The app's credential for the token service.
#[derive(Clone)]
pub enum ClientCredential {
    /// The client secret in the form body (`client_secret_post`).
    Secret(SecretString),
    /// The client secret in HTTP Basic (`client_secret_basic`).
    SecretBasic(SecretString),
    /// A certificate registered on the app, with its private key.
    Certificate(ClientCertificate),
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::SecretBasic(_) => f.write_str("SecretBasic([redacted])"),
            Self::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
        }
    }
}

impl ClientCredential {
    /// A certificate credential from PEM text: the certificate (the first `CERTIFICATE`
    /// block) and its RSA private key (`PRIVATE KEY`, PKCS#8, or `RSA PRIVATE KEY`,
    /// PKCS#1; not encrypted).
    pub fn certificate(cert_pem: &str, key_pem: &SecretString) -> Result<Self, Error> {
        ClientCertificate::from_pem(cert_pem, key_pem).map(Self::Certificate)
    }

    /// `appidacr` / `azpacr` a token issued for this credential carries: `1` secret,
    /// `2` certificate.
    pub fn acr(&self) -> &'static str {
        match self {
            Self::Secret(_) | Self::SecretBasic(_) => "1",
            Self::Certificate(_) => "2",
        }
    }
}

/// A certificate and the key that signs the assertions. Cheap to clone.
#[derive(Clone)]
pub struct ClientCertificate {
    x5t: String,
    x5t_s256: String,
    key: EncodingKey,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.x5t_s256)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct AssertionClaims {
    aud: String,
    iss: String,
    sub: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

impl ClientCertificate {
    /// Reads the certificate and its key; refuses a key that is not RSA or does not
    /// belong to the certificate (checked by signing and verifying a probe).
    pub fn from_pem(cert_pem: &str, key_pem: &SecretString) -> Result<Self, Error> {
        let cert_der = pem_block(cert_pem, &["CERTIFICATE"])
            .ok_or_else(|| config("the certificate is not PEM (-----BEGIN CERTIFICATE-----)"))?
            .1;
        let cert = Certificate::from_der(&cert_der)
            .map_err(|e| config(format!("the certificate is not valid X.509: {e}")))?;
        let cert_der = Zeroizing::new(cert.to_der().map_err(|e| config(e.to_string()))?);
        let spki = cert.tbs_certificate().subject_public_key_info();
        if spki.algorithm.oid.to_string() != OID_RSA_ENCRYPTION {
            return Err(config(
                "the certificate's key is not RSA; Entra certificate credentials are signed with RS256",
            ));
        }
        let public = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| config("the certificate's public key is not whole bytes"))?;
        let (label, key_der) = pem_block(
            key_pem.expose_secret(),
            &["PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"],
        )
        .ok_or_else(|| {
            config("the private key is not PEM (-----BEGIN PRIVATE KEY----- or RSA PRIVATE KEY)")
        })?;
        let key_der = Zeroizing::new(key_der);
        let pkcs1 = match label {
            "PRIVATE KEY" => {
                let info = pkcs8::PrivateKeyInfoRef::try_from(key_der.as_slice())
                    .map_err(|_| config("the private key is not valid PKCS#8"))?;
                if info.algorithm.oid.to_string() != OID_RSA_ENCRYPTION {
                    return Err(config(
                        "the private key is not RSA; Entra certificate credentials are signed with RS256",
                    ));
                }
                Zeroizing::new(info.private_key.as_bytes().to_vec())
            }
            "RSA PRIVATE KEY" => key_der.clone(),
            _ => {
                return Err(config(
                    "the private key is encrypted; give it unencrypted (and keep the file readable only by the service)",
                ));
            }
        };
        let key = EncodingKey::from_rsa_der(&pkcs1);
        let sha1 = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            cert_der.as_slice(),
        );
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert_der.as_slice());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let me = Self {
            x5t: b64.encode(sha1.as_ref()),
            x5t_s256: b64.encode(sha256.as_ref()),
            key,
        };
        // The key must sign, and what it signs must verify with the certificate's key.
        let probe = me.assertion("probe", "https://probe.invalid/token", 0)?;
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["https://probe.invalid/token"]);
        v.validate_exp = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<AssertionClaims>(&probe, &DecodingKey::from_rsa_der(public), &v)
            .map_err(|_| config("the private key does not belong to the certificate"))?;
        Ok(me)
    }

    /// The base64url SHA-1 thumbprint (`x5t`).
    pub fn x5t(&self) -> &str {
        &self.x5t
    }

    /// The base64url SHA-256 thumbprint (`x5t#S256`).
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// A fresh `client_assertion` for `client_id` at the token endpoint `token_url`,
    /// issued at `now` (seconds since the Unix epoch).
    pub fn assertion(&self, client_id: &str, token_url: &str, now: u64) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.x5t = Some(self.x5t.clone());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        let claims = AssertionClaims {
            aud: token_url.to_owned(),
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            iat: now,
            nbf: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            jti: jti()?,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| {
            config("signing the client assertion failed: the private key is not a usable RSA key")
        })
    }
}

fn config(why: impl Into<String>) -> Error {
    Error::Config(format!("certificate credential: {}", why.into()))
}

/// A random GUID-shaped `jti`.
fn jti() -> Result<String, Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|_| config("the system random number generator failed"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// The first PEM block whose label is one of `labels`: (label, DER).
fn pem_block<'a>(text: &str, labels: &[&'a str]) -> Option<(&'a str, Vec<u8>)> {
    for label in labels {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let Some(start) = text.find(&begin) else {
            continue;
        };
        let rest = &text[start + begin.len()..];
        let stop = rest.find(&end)?;
        let body: String = rest[..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .ok()?;
        return Some((label, der));
    }
    None
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 Appendix B):
/// unreserved characters stay, a space is `+`, every other byte `%XX`.
pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `Authorization` header value for `client_secret_basic`.
pub(crate) fn basic_header(client_id: &str, secret: &SecretString) -> SecretString {
    let joined = Zeroizing::new(format!(
        "{}:{}",
        form_encode(client_id),
        form_encode(secret.expose_secret())
    ));
    SecretString::from(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(joined.as_bytes())
    ))
}
