//! The end user's proof: sign in with the registered passkey.
//!
//! `POST /sandbox/v1/signin/begin {"upn"}` returns assertion options (rpId
//! `login.microsoft.com`, the user's credentials, UV required, a five-minute challenge
//! bound to the user); `POST /sandbox/v1/signin/finish {"credential"}` verifies the
//! assertion against the stored credential with the `webauthn` crate (signature, UV,
//! counter), stores the new counter and answers who signed in.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn::options::{
    AssertionResponse, CredentialDescriptor, PublicKeyCredentialRequestOptions,
};

use super::challenge::Purpose;
use super::{Entra, GraphFailure};

/// How long a sign-in challenge lives, seconds.
pub const SIGNIN_TIMEOUT_SECS: u64 = 300;

/// `POST /sandbox/v1/signin/begin` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BeginRequest {
    /// UPN or object id.
    pub upn: String,
}

/// `POST /sandbox/v1/signin/begin` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeginResponse {
    pub public_key: PublicKeyCredentialRequestOptions,
    /// When the challenge expires, RFC 3339.
    pub expires_date_time: String,
}

/// `POST /sandbox/v1/signin/finish` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishRequest {
    /// `AuthenticationResponseJSON` from the client.
    pub credential: AssertionResponse,
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedIn {
    pub signed_in: bool,
    pub user: SignedInUser,
    /// The FIDO2 method used (as Graph lists it).
    pub method_id: String,
    pub aa_guid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub sign_count: u32,
    pub user_verified: bool,
}

/// The user who signed in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedInUser {
    pub id: String,
    pub user_principal_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

fn refused(reason: &'static str, message: impl Into<String>) -> GraphFailure {
    GraphFailure {
        reason: Some(reason),
        ..GraphFailure::new(StatusCode::UNAUTHORIZED, "signInFailed", message)
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], what: &str) -> Result<T, GraphFailure> {
    serde_json::from_slice(body)
        .map_err(|e| GraphFailure::invalid("invalidBody", format!("{what}: {e}")))
}

/// `POST /sandbox/v1/signin/begin`.
pub(crate) async fn begin(
    State(entra): State<Entra>,
    body: Bytes,
) -> Result<Json<BeginResponse>, GraphFailure> {
    let req: BeginRequest = parse(&body, "signin/begin takes {\"upn\": \"...\"}")?;
    let u = entra
        .find_user(&req.upn)
        .ok_or_else(|| GraphFailure::user_not_found(&req.upn))?;
    let allow: Vec<CredentialDescriptor> = entra
        .methods()
        .list
        .iter()
        .filter(|m| m.user_id == u.user.id)
        .map(|m| CredentialDescriptor::new(&m.credential_id))
        .collect();
    if allow.is_empty() {
        return Err(GraphFailure::invalid(
            "noPasskeyRegistered",
            format!(
                "{} has no passkey registered; register one with POST .../authentication/fido2Methods first.",
                req.upn
            ),
        ));
    }
    let oid = Uuid::parse_str(&u.user.id).map_err(|_| GraphFailure::user_not_found(&req.upn))?;
    let expires = entra.clock().now() + SIGNIN_TIMEOUT_SECS;
    let challenge = entra
        .0
        .challenges
        .issue(Purpose::SignIn, oid, expires)
        .map_err(|e| GraphFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", e))?;
    Ok(Json(BeginResponse {
        public_key: PublicKeyCredentialRequestOptions {
            challenge,
            timeout: Some(SIGNIN_TIMEOUT_SECS * 1000),
            rp_id: Some(graph::ENTRA_RP_ID.to_owned()),
            allow_credentials: allow,
            user_verification: Some("required".into()),
            extensions: serde_json::Map::new(),
        },
        expires_date_time: crate::time::rfc3339(expires),
    }))
}

/// `POST /sandbox/v1/signin/finish`.
pub(crate) async fn finish(
    State(entra): State<Entra>,
    body: Bytes,
) -> Result<Json<SignedIn>, GraphFailure> {
    let req: FinishRequest = parse(
        &body,
        "signin/finish takes {\"credential\": AuthenticationResponseJSON}",
    )?;
    let a = &req.credential;
    let cd = webauthn::ClientData::parse(&a.response.client_data_json)
        .map_err(|e| refused("invalidClientData", e.to_string()))?;
    let opened = entra
        .0
        .challenges
        .open(&cd.challenge)
        .filter(|o| o.purpose == Purpose::SignIn)
        .ok_or_else(|| {
            refused(
                "challengeNotIssued",
                "The sign-in challenge was not issued here; call signin/begin first.",
            )
        })?;
    let now = entra.clock().now();
    if now > opened.expires {
        return Err(refused(
            "challengeExpired",
            "The sign-in challenge expired; call signin/begin again.",
        ));
    }
    if entra.methods().used.iter().any(|(n, _)| *n == opened.nonce) {
        return Err(refused(
            "challengeAlreadyUsed",
            "The sign-in challenge was already used.",
        ));
    }
    let user_id = opened.user.to_string();
    let u = entra
        .find_user(&user_id)
        .ok_or_else(|| GraphFailure::user_not_found(&user_id))?;
    let method = entra
        .methods()
        .list
        .iter()
        .find(|m| m.user_id.eq_ignore_ascii_case(&user_id) && m.credential_id == a.id)
        .cloned()
        .ok_or_else(|| {
            refused(
                "credentialNotRegistered",
                "This passkey is not registered for the user who began the sign-in.",
            )
        })?;
    if let Some(handle) = &a.response.user_handle
        && *handle
            != entra
                .0
                .challenges
                .user_handle(&entra.tenant_id(), opened.user)
    {
        return Err(refused(
            "userHandleMismatch",
            "The passkey's user handle belongs to another account.",
        ));
    }
    let exp = webauthn::AssertionExpectations {
        rp_id: graph::ENTRA_RP_ID.to_owned(),
        origins: vec![graph::ENTRA_ORIGIN.to_owned()],
        challenge: cd.challenge.clone(),
        require_uv: true,
        public_key_cose: method.public_key_cose.clone(),
        sign_count: method.sign_count,
    };
    let out = webauthn::verify_assertion(
        &exp,
        &a.response.client_data_json,
        &a.response.authenticator_data,
        &a.response.signature,
    )
    .map_err(|e| {
        let reason = match e {
            webauthn::Error::AssertionSignature => "invalidSignature",
            webauthn::Error::UserVerificationRequired => "userVerificationRequired",
            webauthn::Error::SignCountNotIncreased { .. } => "signCountNotIncreased",
            webauthn::Error::OriginMismatch { .. } => "invalidOrigin",
            _ => "invalidAssertion",
        };
        refused(reason, format!("The assertion did not verify: {e}"))
    })?;
    {
        let mut methods = entra.methods();
        if methods.used.iter().any(|(n, _)| *n == opened.nonce) {
            return Err(refused(
                "challengeAlreadyUsed",
                "The sign-in challenge was already used.",
            ));
        }
        methods.used.retain(|(_, until)| *until >= now);
        methods.used.push((opened.nonce, opened.expires));
        if let Some(m) = methods.list.iter_mut().find(|m| m.id == method.id) {
            m.sign_count = out.sign_count;
        }
    }
    tracing::info!(user = %u.user.id, "signed in with a passkey");
    Ok(Json(SignedIn {
        signed_in: true,
        user: SignedInUser {
            id: u.user.id.clone(),
            user_principal_name: u.user.user_principal_name.clone().unwrap_or_default(),
            display_name: u.user.display_name.clone(),
        },
        method_id: method.id,
        aa_guid: method.aaguid.to_string(),
        model: method.model,
        sign_count: out.sign_count,
        user_verified: out.uv,
    }))
}
