//! The end user's proof, same wire shape as the Entra sandbox's:
//! `POST /sandbox/v1/signin/begin {"upn": login or id}` (`"login"` also read) answers
//! `{"publicKey": <request options for the factor's RP id>, "expiresDateTime"}`;
//! `POST /sandbox/v1/signin/finish {"credential": AuthenticationResponseJSON}` verifies
//! it against an ACTIVE pre-registered factor with `webauthn::verify_assertion` and
//! answers `{"signedIn": true, "user": {...}, "methodId", "signCount", "userVerified"}`.
//! The first success closes `send-pin` for that key.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use okta::error::codes;
use serde::Deserialize;
use serde_json::{Value, json};
use webauthn::options::{
    AssertionResponse, CredentialDescriptor, PublicKeyCredentialRequestOptions,
};

use super::{Failure, Okta, parse_body, prereg::ACTIVE};

/// Challenge lifetime, seconds.
pub const SIGNIN_TIMEOUT_SECS: u64 = 300;

/// An issued sign-in challenge.
pub(crate) struct Challenge {
    challenge: String,
    user_id: String,
    rp_id: String,
    expires: u64,
}

#[derive(Deserialize)]
struct Begin {
    #[serde(alias = "login")]
    upn: String,
    #[serde(default, rename = "rpId")]
    rp_id: Option<String>,
}

#[derive(Deserialize)]
struct Finish {
    credential: AssertionResponse,
}

fn refused(message: impl Into<String>) -> Failure {
    Failure::new(
        StatusCode::UNAUTHORIZED,
        "E0000004",
        "Authentication failed",
        vec![message.into()],
    )
}

/// `POST /sandbox/v1/signin/begin`.
pub(crate) async fn begin(State(okta): State<Okta>, body: Bytes) -> Result<Json<Value>, Failure> {
    let req: Begin = parse_body(&body, "signin/begin takes {\"upn\": \"<login or id>\"}")?;
    let mut org = okta.org();
    let user = org
        .find_user(&req.upn)
        .cloned()
        .ok_or_else(|| Failure::not_found(&req.upn))?;
    let factors: Vec<_> = org
        .factors
        .iter()
        .filter(|f| f.user_id == user.id && f.status == ACTIVE)
        .filter(|f| req.rp_id.as_ref().is_none_or(|r| *r == f.rp_id))
        .collect();
    let Some(first) = factors.first() else {
        return Err(Failure::validation(
            "signin",
            format!(
                "{} has no ACTIVE pre-registered key{}; activate one first",
                req.upn,
                req.rp_id.map(|r| format!(" for {r}")).unwrap_or_default()
            ),
        ));
    };
    let rp_id = first.rp_id.clone();
    let allow: Vec<CredentialDescriptor> = factors
        .iter()
        .filter(|f| f.rp_id == rp_id)
        .filter_map(|f| f.activated.as_ref())
        .map(|a| CredentialDescriptor::new(&a.credential_id))
        .collect();
    let bytes = crate::rng::bytes::<32>().ok_or_else(|| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "no randomness",
            vec![],
        )
    })?;
    let challenge = webauthn::b64::encode(bytes);
    let now = crate::time::now();
    let expires = now + SIGNIN_TIMEOUT_SECS;
    org.signin.retain(|c| c.expires >= now);
    org.signin.push(Challenge {
        challenge: challenge.clone(),
        user_id: user.id.clone(),
        rp_id: rp_id.clone(),
        expires,
    });
    let options = PublicKeyCredentialRequestOptions {
        challenge,
        timeout: Some(SIGNIN_TIMEOUT_SECS * 1000),
        rp_id: Some(rp_id),
        allow_credentials: allow,
        user_verification: Some("required".into()),
        extensions: serde_json::Map::new(),
    };
    Ok(Json(json!({
        "publicKey": options,
        "expiresDateTime": crate::time::rfc3339(expires),
    })))
}

/// `POST /sandbox/v1/signin/finish`.
pub(crate) async fn finish(State(okta): State<Okta>, body: Bytes) -> Result<Json<Value>, Failure> {
    let req: Finish = parse_body(
        &body,
        "signin/finish takes {\"credential\": AuthenticationResponseJSON}",
    )?;
    let a = &req.credential;
    let cd = webauthn::ClientData::parse(&a.response.client_data_json)
        .map_err(|e| refused(format!("clientDataJSON: {e}")))?;
    let mut org = okta.org();
    let now = crate::time::now();
    let pos = org
        .signin
        .iter()
        .position(|c| c.challenge == cd.challenge)
        .ok_or_else(|| refused("The sign-in challenge was not issued here or was already used; call signin/begin first."))?;
    // One use only, whatever the outcome.
    let ch = org.signin.remove(pos);
    if now > ch.expires {
        return Err(refused(
            "The sign-in challenge expired; call signin/begin again.",
        ));
    }
    let user = org
        .find_user(&ch.user_id)
        .cloned()
        .ok_or_else(|| Failure::not_found(&ch.user_id))?;
    let f = org
        .factors
        .iter_mut()
        .find(|f| {
            f.user_id == ch.user_id
                && f.rp_id == ch.rp_id
                && f.activated.as_ref().is_some_and(|x| x.credential_id == a.id)
        })
        .ok_or_else(|| refused("This key is not an ACTIVE pre-registered factor of the user who began the sign-in."))?;
    let Some(act) = f.activated.as_mut() else {
        return Err(refused("The factor is not active."));
    };
    let exp = webauthn::AssertionExpectations {
        rp_id: ch.rp_id.clone(),
        origins: vec![f.origin.clone()],
        challenge: cd.challenge.clone(),
        require_uv: true,
        public_key_cose: act.public_key_cose.clone(),
        sign_count: act.sign_count,
    };
    let out = webauthn::verify_assertion(
        &exp,
        &a.response.client_data_json,
        &a.response.authenticator_data,
        &a.response.signature,
    )
    .map_err(|e| refused(format!("The assertion did not verify: {e}")))?;
    act.sign_count = out.sign_count;
    let first = !act.signed_in;
    act.signed_in = true;
    let method_id = f.id.clone();
    drop(org);
    tracing::info!(user = %user.id, first, "Okta sandbox: signed in with a pre-registered key");
    Ok(Json(json!({
        "signedIn": true,
        "user": {"id": user.id, "login": user.profile.login, "userPrincipalName": user.profile.login, "displayName": user.profile.display_name()},
        "methodId": method_id,
        "signCount": out.sign_count,
        "userVerified": out.uv,
        "firstSignIn": first,
    })))
}
