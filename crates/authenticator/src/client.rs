//! The platform half: what a browser (or python-fido2's `Fido2Client`) does between an
//! IdP and the key. It reads PublicKeyCredentialCreationOptions / RequestOptions in their
//! JSON form, builds clientDataJSON, drives a [`KeyProgrammer`], and returns the
//! WebAuthn response JSON (`RegistrationResponseJSON` / `AuthenticationResponseJSON`).
//!
//! Entra quirks handled here (shared/spec/entra.md §1): options arrive bare or wrapped in
//! `{"publicKey": {...}}`; the challenge goes into clientDataJSON exactly as received;
//! `excludeCredentials[].id` may be base64url, standard base64, or .NET UrlTokenEncode
//! (base64url with a trailing padding-count digit); credProtect comes as
//! `credentialProtectionPolicy` and hmac-secret as `hmacCreateSecret`.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::b64;
use crate::cbor::COSE_ES256;
use crate::device::{
    GetAssertionRequest, KeyProgrammer, MakeCredentialRequest, RelyingParty, User,
};
use crate::error::{Error, Result};
use crate::secret::Pin;

/// `PublicKeyCredential.toJSON()` of a registration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationResponse {
    /// Credential ID, base64url.
    pub id: String,
    /// Same as `id`.
    pub raw_id: String,
    /// `"public-key"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `"cross-platform"`.
    pub authenticator_attachment: &'static str,
    /// The attestation response.
    pub response: AttestationResponse,
    /// Client extension outputs.
    pub client_extension_results: Map<String, Value>,
}

/// `AuthenticatorAttestationResponseJSON`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttestationResponse {
    /// clientDataJSON, base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// Attestation object, base64url.
    pub attestation_object: String,
    /// authenticatorData, base64url.
    pub authenticator_data: String,
    /// Transports the key has.
    pub transports: Vec<&'static str>,
    /// COSE algorithm of the credential key.
    pub public_key_algorithm: i64,
}

/// `PublicKeyCredential.toJSON()` of an assertion.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponse {
    /// Credential ID, base64url.
    pub id: String,
    /// Same as `id`.
    pub raw_id: String,
    /// `"public-key"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `"cross-platform"`.
    pub authenticator_attachment: &'static str,
    /// The assertion response.
    pub response: AssertionResponseData,
    /// Client extension outputs.
    pub client_extension_results: Map<String, Value>,
}

/// `AuthenticatorAssertionResponseJSON`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssertionResponseData {
    /// clientDataJSON, base64url.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// authenticatorData, base64url.
    pub authenticator_data: String,
    /// DER ECDSA signature, base64url.
    pub signature: String,
    /// User handle, base64url (discoverable credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_handle: Option<String>,
}

/// clientDataJSON bytes, in the member order browsers write:
/// `{"type":...,"challenge":...,"origin":...,"crossOrigin":false}`.
pub fn client_data_json(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
    let q = |s: &str| Value::String(s.to_owned()).to_string();
    format!(
        "{{\"type\":{},\"challenge\":{},\"origin\":{},\"crossOrigin\":false}}",
        q(kind),
        q(challenge),
        q(origin)
    )
    .into_bytes()
}

/// Registers a credential: `options_json` is PublicKeyCredentialCreationOptions as an
/// IdP returns them (bare or `{"publicKey": {...}}`), `origin` the page origin (e.g.
/// `https://login.microsoft.com`). Returns the registration JSON for the IdP.
///
/// User verification happens when `pin` is given; the RP's `userVerification:
/// "required"` without a PIN fails as a browser would.
pub fn make_credential<K: KeyProgrammer + ?Sized>(
    key: &mut K,
    options_json: &str,
    origin: &str,
    pin: Option<&Pin>,
) -> Result<RegistrationResponse> {
    let root: Value = serde_json::from_str(options_json)
        .map_err(|e| Error::Request(format!("creation options are not JSON: {e}")))?;
    let opts = root.get("publicKey").unwrap_or(&root);
    let opts = opts
        .as_object()
        .ok_or_else(|| req("creation options must be a JSON object"))?;

    let rp = obj(opts, "rp")?;
    let rp_id = match rp.get("id") {
        Some(Value::String(s)) => s.clone(),
        None => host_of(origin)?.to_owned(),
        Some(_) => return Err(req("rp.id must be a string")),
    };
    check_origin(origin, &rp_id)?;
    let user = obj(opts, "user")?;
    let user_id = user
        .get("id")
        .and_then(Value::as_str)
        .and_then(decode_lenient)
        .ok_or_else(|| req("user.id must be a base64url string"))?;
    let challenge = opts
        .get("challenge")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| req("challenge must be a non-empty base64url string"))?;

    let mut algorithms = Vec::new();
    if let Some(params) = opts.get("pubKeyCredParams") {
        for p in params
            .as_array()
            .ok_or_else(|| req("pubKeyCredParams must be an array"))?
        {
            if p.get("type").and_then(Value::as_str) == Some("public-key")
                && let Some(alg) = p.get("alg").and_then(Value::as_i64)
            {
                algorithms.push(alg);
            }
        }
    } else {
        // WebAuthn: an empty list means ES256 and RS256.
        algorithms = vec![COSE_ES256, -257];
    }

    let mut exclude_list = Vec::new();
    if let Some(list) = opts.get("excludeCredentials") {
        for (i, c) in list
            .as_array()
            .ok_or_else(|| req("excludeCredentials must be an array"))?
            .iter()
            .enumerate()
        {
            let id = c.get("id").and_then(Value::as_str).unwrap_or_default();
            let readings = decode_candidates(id);
            if readings.is_empty() {
                return Err(Error::Request(format!(
                    "excludeCredentials[{i}].id {id:?} is not base64url, base64, or \
                     UrlTokenEncode text"
                )));
            }
            exclude_list.extend(readings);
        }
    }

    let sel = opts.get("authenticatorSelection");
    let sel_str = |k: &str| sel.and_then(|s| s.get(k)).and_then(Value::as_str);
    let resident_key = sel_str("residentKey").map_or_else(
        || {
            sel.and_then(|s| s.get("requireResidentKey"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        },
        // The key supports resident keys, so "preferred" means yes, as in browsers.
        |rk| rk == "required" || rk == "preferred",
    );
    let uv_pref = sel_str("userVerification").unwrap_or("preferred");

    let ext = opts.get("extensions").and_then(Value::as_object);
    let cred_protect = match ext.and_then(|e| e.get("credentialProtectionPolicy")) {
        None => None,
        Some(Value::String(p)) => Some(match p.as_str() {
            "userVerificationOptional" => 1,
            "userVerificationOptionalWithCredentialIDList" => 2,
            "userVerificationRequired" => 3,
            other => {
                return Err(Error::Request(format!(
                    "unknown credentialProtectionPolicy {other:?}"
                )));
            }
        }),
        Some(_) => return Err(req("credentialProtectionPolicy must be a string")),
    };
    let hmac_secret = ext
        .and_then(|e| e.get("hmacCreateSecret"))
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let info = key.get_info()?;
    if cred_protect.is_some_and(|l| l > 1)
        && ext
            .and_then(|e| e.get("enforceCredentialProtectionPolicy"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
        && !info.extensions.contains(&"credProtect")
    {
        return Err(req(
            "the RP enforces a credential protection policy this key's firmware lacks",
        ));
    }

    let client_data = client_data_json("webauthn.create", challenge, origin);
    let request = MakeCredentialRequest {
        client_data_hash: Sha256::digest(&client_data).into(),
        rp: RelyingParty {
            id: rp_id,
            name: rp.get("name").and_then(Value::as_str).map(str::to_owned),
        },
        user: User {
            id: user_id,
            name: user.get("name").and_then(Value::as_str).map(str::to_owned),
            display_name: user
                .get("displayName")
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        algorithms,
        exclude_list,
        resident_key,
        user_verification: uv_pref == "required",
        cred_protect,
        hmac_secret,
    };
    let pin = if uv_pref == "discouraged" { None } else { pin };
    let made = key.make_credential(&request, pin)?;

    let mut results = Map::new();
    if hmac_secret {
        results.insert(
            "hmacCreateSecret".into(),
            Value::Bool(made.extensions.hmac_secret == Some(true)),
        );
    }
    if let Some(level) = made.extensions.cred_protect
        && cred_protect.is_some()
    {
        let name = match level {
            1 => "userVerificationOptional",
            2 => "userVerificationOptionalWithCredentialIDList",
            _ => "userVerificationRequired",
        };
        results.insert("credentialProtectionPolicy".into(), name.into());
    }
    if ext.is_some_and(|e| e.get("credProps").and_then(Value::as_bool) == Some(true)) {
        results.insert(
            "credProps".into(),
            serde_json::json!({ "rk": resident_key }),
        );
    }
    let id = b64::encode(&made.credential_id);
    Ok(RegistrationResponse {
        raw_id: id.clone(),
        id,
        kind: "public-key",
        authenticator_attachment: "cross-platform",
        response: AttestationResponse {
            client_data_json: b64::encode(&client_data),
            attestation_object: b64::encode(&made.attestation_object),
            authenticator_data: b64::encode(&made.auth_data),
            transports: info.transports,
            public_key_algorithm: COSE_ES256,
        },
        client_extension_results: results,
    })
}

/// Signs in: an assertion for `rp_id` over a clientDataJSON with `challenge` (put in as
/// given: pass base64url) and `origin`. With an empty `allow_credentials`, the key picks
/// its newest discoverable credential for the RP.
pub fn get_assertion<K: KeyProgrammer + ?Sized>(
    key: &mut K,
    rp_id: &str,
    challenge: &str,
    origin: &str,
    allow_credentials: &[Vec<u8>],
    pin: Option<&Pin>,
) -> Result<AssertionResponse> {
    check_origin(origin, rp_id)?;
    if challenge.is_empty() {
        return Err(req("the challenge is empty"));
    }
    let client_data = client_data_json("webauthn.get", challenge, origin);
    let got = key.get_assertion(
        &GetAssertionRequest {
            rp_id: rp_id.to_owned(),
            client_data_hash: Sha256::digest(&client_data).into(),
            allow_list: allow_credentials.to_vec(),
            user_verification: pin.is_some(),
        },
        pin,
    )?;
    let id = b64::encode(&got.credential_id);
    Ok(AssertionResponse {
        raw_id: id.clone(),
        id,
        kind: "public-key",
        authenticator_attachment: "cross-platform",
        response: AssertionResponseData {
            client_data_json: b64::encode(&client_data),
            authenticator_data: b64::encode(&got.auth_data),
            signature: b64::encode(&got.signature),
            user_handle: got.user.map(|u| b64::encode(u.id)),
        },
        client_extension_results: Map::new(),
    })
}

/// Every reading of an ID as IdPs actually send them: base64url (padded or not),
/// standard base64, or .NET `UrlTokenEncode` (base64url whose last character is the
/// number of `=` it dropped). Some strings are valid in two forms (a UrlTokenEncode
/// string with one dropped `=` is also valid unpadded base64url), so all readings are
/// returned; matching a credential ID against either is safe for random IDs.
pub fn decode_candidates(s: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut add = |v: Option<Vec<u8>>| {
        if let Some(v) = v
            && !out.contains(&v)
        {
            out.push(v);
        }
    };
    if s.contains(['+', '/']) {
        add(STANDARD.decode(s).ok());
        add(STANDARD_NO_PAD.decode(s.trim_end_matches('=')).ok());
        return out;
    }
    add(b64::decode(s));
    if let Some(pad) = s.chars().last().and_then(|c| c.to_digit(10))
        && pad <= 2
    {
        let body = &s[..s.len() - 1];
        if !body.is_empty() && (body.len() + pad as usize).is_multiple_of(4) {
            add(b64::decode(body));
        }
    }
    out
}

/// The most likely reading of an ID (see [`decode_candidates`]): plain base64url or
/// base64 first, UrlTokenEncode otherwise.
pub fn decode_lenient(s: &str) -> Option<Vec<u8>> {
    decode_candidates(s).into_iter().next()
}

fn check_origin(origin: &str, rp_id: &str) -> Result<()> {
    let host = host_of(origin)?;
    let https = origin.starts_with("https://");
    let localhost = origin.starts_with("http://") && host == "localhost";
    if !(https || localhost) {
        return Err(Error::Request(format!(
            "origin {origin:?} must be https:// (or http://localhost)"
        )));
    }
    if rp_id.is_empty() || !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
        return Err(Error::Request(format!(
            "rp.id {rp_id:?} is not the origin's host or a parent domain of it ({origin:?})"
        )));
    }
    Ok(())
}

fn host_of(origin: &str) -> Result<&str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| Error::Request(format!("origin {origin:?} has no http(s) scheme")))?;
    if rest.contains('/') || rest.is_empty() {
        return Err(Error::Request(format!(
            "origin {origin:?} must be scheme://host[:port] with no path"
        )));
    }
    Ok(rest.split(':').next().unwrap_or(rest))
}

fn obj<'a>(m: &'a Map<String, Value>, k: &str) -> Result<&'a Map<String, Value>> {
    m.get(k)
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Request(format!("{k} must be an object")))
}

fn req(msg: &str) -> Error {
    Error::Request(msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_data_is_byte_exact() {
        assert_eq!(
            client_data_json("webauthn.create", "abc", "https://login.microsoft.com"),
            br#"{"type":"webauthn.create","challenge":"abc","origin":"https://login.microsoft.com","crossOrigin":false}"#
        );
    }

    #[test]
    fn ids_decode_in_all_three_entra_forms() {
        // From the DSI test response: standard base64 with padding.
        assert_eq!(
            decode_lenient("GshyINLMaOOwqt1LNUi0gQ==").unwrap().len(),
            16
        );
        assert_eq!(
            decode_lenient("TZ2KrDEawbrIGQsnheGZ/BG9Nfnb7blSGwQYMGyJIhM=")
                .unwrap()
                .len(),
            32
        );
        let bytes: Vec<u8> = (0..16).collect();
        let url = b64::encode(&bytes); // 22 chars, 2 padding dropped
        assert_eq!(decode_lenient(&url).unwrap(), bytes);
        assert_eq!(decode_candidates(&format!("{url}2")), vec![bytes.clone()]);
        assert_eq!(decode_lenient(&format!("{url}==")).unwrap(), bytes);
        let bytes: Vec<u8> = (0..18).collect(); // 24 chars, no padding
        let url = b64::encode(&bytes);
        assert_eq!(decode_candidates(&format!("{url}0")), vec![bytes.clone()]);
        let bytes: Vec<u8> = (0..17).collect(); // 23 chars, 1 padding dropped
        let url = b64::encode(&bytes);
        assert!(decode_candidates(&format!("{url}1")).contains(&bytes));
        assert_eq!(decode_lenient(&url).unwrap(), bytes);
    }

    #[test]
    fn origin_must_match_rp_id() {
        check_origin("https://login.microsoft.com", "login.microsoft.com").unwrap();
        check_origin("https://a.example.com:8443", "example.com").unwrap();
        check_origin("http://localhost:8080", "localhost").unwrap();
        assert!(check_origin("https://evil.com", "login.microsoft.com").is_err());
        assert!(check_origin("http://login.microsoft.com", "login.microsoft.com").is_err());
        assert!(check_origin("https://notexample.com", "example.com").is_err());
    }
}
