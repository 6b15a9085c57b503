//! Certificate credentials (Microsoft identity platform "certificate credentials",
//! entra.md §4): an app authenticates with `client_assertion_type`
//! `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a `client_assertion`, a
//! JWT signed with the private key of a certificate registered on the app. The header
//! names the certificate by `x5t` (base64url SHA-1 of its DER, the older doc) or
//! `x5t#S256` (SHA-256, the current doc); `alg` is RS256 (older doc) or PS256 (current);
//! the claims are `aud` = the token endpoint, `iss` = `sub` = the client id, `exp`,
//! `nbf`, `iat`, `jti`.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

/// `client_assertion_type` for a JWT assertion (RFC 7523 §2.2).
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// A certificate registered on an app, with the thumbprints an assertion names it by.
pub(crate) struct Registered {
    /// base64url SHA-1 of the DER.
    pub x5t: String,
    /// base64url SHA-256 of the DER.
    pub x5t_s256: String,
    key: DecodingKey,
}

impl Registered {
    /// Reads a PEM certificate with an RSA key.
    pub(crate) fn from_pem(pem: &str) -> Result<Self, String> {
        let cert = Certificate::from_pem(pem.trim().as_bytes())
            .map_err(|e| format!("not a PEM X.509 certificate: {e}"))?;
        let der = cert
            .to_der()
            .map_err(|e| format!("certificate encoding: {e}"))?;
        let spki = cert.tbs_certificate().subject_public_key_info();
        if spki.algorithm.oid.to_string() != OID_RSA_ENCRYPTION {
            return Err(format!(
                "the certificate's key is {}, not RSA: certificate credentials are signed with RS256 or PS256",
                spki.algorithm.oid
            ));
        }
        let pkcs1 = spki
            .subject_public_key
            .as_bytes()
            .ok_or("the certificate's public key is not whole bytes")?;
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
        Ok(Self {
            x5t: webauthn::b64::encode(sha1.as_ref()),
            x5t_s256: webauthn::b64::encode(sha256.as_ref()),
            key: DecodingKey::from_rsa_der(pkcs1),
        })
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    #[serde(default)]
    jti: Option<String>,
}

/// Why an assertion was refused: the AADSTS code and its text.
pub(crate) type Refusal = (u32, String);

/// Checks `assertion` for the app `client_id` whose registered certificates are
/// `certificates` (PEM); `token_urls` are the audiences the token endpoint answers to.
pub(crate) fn verify(
    assertion: &str,
    client_id: &str,
    certificates: &[String],
    token_urls: &[String],
) -> Result<(), Refusal> {
    let malformed = || (50027, "JWT token is invalid or malformed.".to_owned());
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed())?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err((
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The algorithm {:?} is not supported: sign with RS256 or PS256.]",
                header.alg
            ),
        ));
    }
    let named = header
        .x5t_s256
        .as_deref()
        .or(header.x5t.as_deref())
        .unwrap_or_default()
        .to_owned();
    let registered = certificates
        .iter()
        .filter_map(|pem| Registered::from_pem(pem).ok())
        .find(|c| {
            header.x5t_s256.as_deref() == Some(c.x5t_s256.as_str())
                || header.x5t.as_deref() == Some(c.x5t.as_str())
        })
        .ok_or_else(|| {
            (
                700027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{named}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
                ),
            )
        })?;
    let mut v = Validation::new(header.alg);
    v.set_audience(token_urls);
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    v.leeway = 60;
    v.validate_nbf = true;
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &registered.key, &v).map_err(
        |e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature
            | jsonwebtoken::errors::ErrorKind::ImmatureSignature => (
                700024,
                "Client assertion is not within its valid time range.".to_owned(),
            ),
            jsonwebtoken::errors::ErrorKind::InvalidAudience => (
                700027,
                format!(
                    "Client assertion failed signature validation. [Reason - The audience claim must be the token endpoint, {}.]",
                    token_urls.first().map(String::as_str).unwrap_or_default()
                ),
            ),
            jsonwebtoken::errors::ErrorKind::InvalidSignature => (
                700027,
                "Client assertion contains an invalid signature. [Reason - The signature does not verify with the registered certificate.]"
                    .to_owned(),
            ),
            jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(c) => (
                50027,
                format!("JWT token is invalid or malformed: the claim '{c}' is missing."),
            ),
            _ => malformed(),
        },
    )?;
    let c = data.claims;
    if !c.iss.eq_ignore_ascii_case(client_id) || !c.sub.eq_ignore_ascii_case(client_id) {
        return Err((
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Set iss and sub to the client id."
                .to_owned(),
        ));
    }
    if c.jti.as_deref().is_none_or(str::is_empty) {
        return Err((
            50027,
            "JWT token is invalid or malformed: the claim 'jti' is missing.".to_owned(),
        ));
    }
    Ok(())
}
