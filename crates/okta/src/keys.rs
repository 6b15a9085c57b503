//! The service app's private key for `private_key_jwt` (okta.md §10): Okta's Admin
//! Console generates RSA keys (RS256), and EC keys are accepted too. The JWS algorithm
//! follows the key: RSA → RS256, EC P-256 → ES256, EC P-384 → ES384.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use zeroize::Zeroizing;

use crate::client::ClientError;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

fn bad(why: &str) -> ClientError {
    ClientError::Config(format!("the service app key: {why}"))
}

/// Whether `pem` is a private key the client can sign its assertions with (what a
/// configuration check calls before anything is sent). Never puts key material in an
/// error.
pub fn check_assertion_key(pem: &str) -> Result<(), ClientError> {
    assertion_key(pem).map(drop)
}

/// Reads a PEM private key: PKCS#8 `PRIVATE KEY` (RSA or EC P-256/P-384) or PKCS#1
/// `RSA PRIVATE KEY`. Never puts key material in an error.
pub(crate) fn assertion_key(pem: &str) -> Result<(Algorithm, EncodingKey), ClientError> {
    let (label, der) = pem_block(pem)
        .ok_or_else(|| bad("not PEM (-----BEGIN PRIVATE KEY----- or RSA PRIVATE KEY)"))?;
    match label.as_str() {
        "RSA PRIVATE KEY" => Ok((Algorithm::RS256, EncodingKey::from_rsa_der(&der))),
        "PRIVATE KEY" => {
            let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice())
                .map_err(|_| bad("not valid PKCS#8"))?;
            match info.algorithm.oid.to_string().as_str() {
                // jsonwebtoken signs RSA with the PKCS#1 key inside the PKCS#8 wrapper.
                OID_RSA => Ok((
                    Algorithm::RS256,
                    EncodingKey::from_rsa_der(info.private_key.as_bytes()),
                )),
                OID_EC => {
                    let curve = info
                        .algorithm
                        .parameters_oid()
                        .map(|o| o.to_string())
                        .map_err(|_| bad("an EC key without a named curve"))?;
                    let alg = match curve.as_str() {
                        OID_P256 => Algorithm::ES256,
                        OID_P384 => Algorithm::ES384,
                        _ => return Err(bad("an EC key on a curve other than P-256 or P-384")),
                    };
                    Ok((alg, EncodingKey::from_ec_der(&der)))
                }
                _ => Err(bad("neither RSA nor EC")),
            }
        }
        "ENCRYPTED PRIVATE KEY" => Err(bad("encrypted; give it unencrypted")),
        _ => Err(bad("not a private key")),
    }
}

/// The label and DER of the first PEM block.
fn pem_block(pem: &str) -> Option<(String, Zeroizing<Vec<u8>>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_owned();
    let body_start = label_end + "-----".len();
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let body: Zeroizing<String> = Zeroizing::new(
        rest.get(body_start..body_end)?
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .ok()?;
    Some((label, Zeroizing::new(der)))
}
