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

use serde_json::{Map, Value};
use webauthn::ClientData;
use webauthn::client_data::hash_bytes;
use webauthn::options::{
    AssertionResponse, AttestationResponse, AuthenticatorAssertionResponse,
    PublicKeyCredentialCreationOptions, RegistrationResponse,
};

use crate::cbor::COSE_ES256;
use crate::device::{
    GetAssertionRequest, KeyProgrammer, MakeCredentialRequest, RelyingParty, User,
};
use crate::error::{Error, Result};
use crate::secret::Pin;

/// clientDataJSON bytes, in the member order browsers write:
/// `{"type":...,"challenge":...,"origin":...,"crossOrigin":false}`.
pub fn client_data_json(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
    let cd = if kind == webauthn::client_data::TYPE_GET {
        ClientData::get(challenge, origin)
    } else {
        ClientData::create(challenge, origin)
    };
    cd.to_json_bytes()
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
    let opts = PublicKeyCredentialCreationOptions::from_json(options_json.as_bytes())
        .map_err(|e| Error::Request(format!("creation options: {e}")))?;
    let rp_id = match opts.rp_id() {
        Some(id) => id.to_owned(),
        None => host_of(origin)?.to_owned(),
    };
    check_origin(origin, &rp_id)?;
    if opts.user.id.is_empty() {
        return Err(req("user.id is empty"));
    }
    let challenge = opts.challenge.as_str();
    if challenge.is_empty() {
        return Err(req("challenge is empty"));
    }
    let algorithms: Vec<i64> = if opts.pub_key_cred_params.is_empty() {
        // WebAuthn: an empty list means ES256 and RS256.
        vec![COSE_ES256, webauthn::options::ALG_RS256]
    } else {
        opts.pub_key_cred_params
            .iter()
            .filter(|p| p.typ == "public-key")
            .map(|p| p.alg)
            .collect()
    };
    let mut exclude_list = Vec::new();
    for (i, d) in opts.exclude_credentials.iter().enumerate() {
        let readings = d.id_candidates();
        if readings.is_empty() {
            return Err(Error::Request(format!(
                "excludeCredentials[{i}].id {:?} is not base64url, base64, or UrlTokenEncode \
                 text",
                d.id
            )));
        }
        exclude_list.extend(readings);
    }

    let sel = opts.authenticator_selection.clone().unwrap_or_default();
    let resident_key = match sel.resident_key.as_deref() {
        // The key supports resident keys, so "preferred" means yes, as in browsers.
        Some(rk) => rk == "required" || rk == "preferred",
        None => sel.require_resident_key.unwrap_or(false),
    };
    let uv_pref = sel.user_verification.as_deref().unwrap_or("preferred");

    let ext = opts.extensions.clone().unwrap_or_default();
    let cred_protect = ext.cred_protect_level();
    if let (Some(policy), None) = (&ext.credential_protection_policy, cred_protect) {
        return Err(Error::Request(format!(
            "unknown credentialProtectionPolicy {policy:?}"
        )));
    }
    let hmac_secret = ext.hmac_create_secret.unwrap_or(false);

    let info = key.get_info()?;
    if cred_protect.is_some_and(|l| l > 1)
        && ext.enforce_credential_protection_policy.unwrap_or(false)
        && !info.extensions.contains(&"credProtect")
    {
        return Err(req(
            "the RP enforces a credential protection policy this key's firmware lacks",
        ));
    }

    let client_data = client_data_json("webauthn.create", challenge, origin);
    let request = MakeCredentialRequest {
        client_data_hash: hash_bytes(&client_data),
        client_data_json: Some(client_data.clone()),
        rp: RelyingParty {
            id: rp_id,
            name: non_empty(&opts.rp.name),
        },
        user: User {
            id: opts.user.id.clone(),
            name: non_empty(&opts.user.name),
            display_name: non_empty(&opts.user.display_name),
        },
        algorithms,
        exclude_list,
        resident_key,
        user_verification: uv_pref == "required",
        cred_protect,
        hmac_secret,
    };
    // A browser skips the PIN prompt for "discouraged", except where the key needs it
    // anyway: a discoverable credential on a PIN-protected key.
    let pin = if uv_pref == "discouraged"
        && !(resident_key && info.options.get("clientPin") == Some(&true))
    {
        None
    } else {
        pin
    };
    let made = key.make_credential(&request, pin)?;
    // As browsers do: attestation "none" (also the default) strips the statement and
    // the AAGUID; "direct", "indirect" and "enterprise" pass the key's attestation on.
    let attestation_object = match opts.attestation.as_deref().unwrap_or("none") {
        "none" => crate::cbor::none_attestation_object(&made.auth_data)?,
        _ => made.attestation_object,
    };

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
    if ext.cred_props == Some(true) {
        results.insert(
            "credProps".into(),
            serde_json::json!({ "rk": resident_key }),
        );
    }
    Ok(RegistrationResponse {
        raw_id: Some(made.credential_id.clone()),
        id: made.credential_id,
        typ: Some("public-key".to_owned()),
        authenticator_attachment: Some("cross-platform".to_owned()),
        response: AttestationResponse {
            client_data_json: client_data,
            attestation_object,
            transports: info.transports.iter().map(|t| (*t).to_owned()).collect(),
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
            client_data_hash: hash_bytes(&client_data),
            client_data_json: Some(client_data.clone()),
            allow_list: allow_credentials.to_vec(),
            user_verification: pin.is_some(),
        },
        pin,
    )?;
    Ok(AssertionResponse {
        raw_id: Some(got.credential_id.clone()),
        id: got.credential_id,
        typ: Some("public-key".to_owned()),
        authenticator_attachment: Some("cross-platform".to_owned()),
        response: AuthenticatorAssertionResponse {
            client_data_json: client_data,
            authenticator_data: got.auth_data,
            signature: got.signature,
            user_handle: got.user.map(|u| u.id),
        },
        client_extension_results: Map::new(),
    })
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

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
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
    fn origin_must_match_rp_id() {
        check_origin("https://login.microsoft.com", "login.microsoft.com").unwrap();
        check_origin("https://a.example.com:8443", "example.com").unwrap();
        check_origin("http://localhost:8080", "localhost").unwrap();
        assert!(check_origin("https://evil.com", "login.microsoft.com").is_err());
        assert!(check_origin("http://login.microsoft.com", "login.microsoft.com").is_err());
        assert!(check_origin("https://notexample.com", "example.com").is_err());
    }
}
