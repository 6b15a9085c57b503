//! The person's side of a sandbox sign-in: what a browser does with a security key at the
//! Entra or Okta sandbox (`POST /sandbox/v1/signin/begin {"upn"}`, an assertion made
//! by the key through the platform half `authenticator::client`, `POST
//! /sandbox/v1/signin/finish {"credential"}`). Both sandboxes speak the same two routes
//! ([`crate::entra::signin`], [`crate::okta`]); `prereg key sign-in`, the demo and the
//! tests sign in through this one function.

use crate::entra::signin::{BeginRequest, BeginResponse, FinishRequest};
use authenticator::{KeyProgrammer, Pin};
use serde_json::Value;

/// A sandbox's answer (to `signin/finish`, as [`sign_in`] returns it): its status and
/// body (the signed-in user, or the error saying why not).
#[derive(Debug, Clone)]
pub struct Finished {
    /// The HTTP status.
    pub status: u16,
    /// The body: JSON, or the text as a JSON string when it was not JSON.
    pub body: Value,
}

impl Finished {
    /// The sandbox let the person in.
    pub fn signed_in(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The refusal's message, in either sandbox's error shape (Graph's
    /// `{"error":{"message"}}`, Okta's `errorSummary` or `errorCauses`).
    pub fn message(&self) -> &str {
        refusal(&self.body)
    }
}

/// Why no `signin/finish` answer was had.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The sandbox could not be reached, or its answer not read.
    #[error("calling the sandbox at {base}: {message}")]
    Http {
        /// The sandbox's base URL.
        base: String,
        /// What went wrong.
        message: String,
    },
    /// `signin/begin` refused (an unknown user, a user without a passkey).
    #[error("sign-in begin refused ({status}): {message}")]
    Begin {
        /// The HTTP status.
        status: u16,
        /// The sandbox's message.
        message: String,
    },
    /// `signin/begin` answered something that is not assertion options.
    #[error("signin/begin answered an unexpected body: {0}")]
    Options(String),
    /// The key made no assertion (no matching credential, wrong PIN, PIN change forced).
    #[error(transparent)]
    Key(#[from] authenticator::Error),
}

fn refusal(body: &Value) -> &str {
    body["error"]["message"]
        .as_str()
        .or(body["errorCauses"][0]["errorSummary"].as_str())
        .or(body["errorSummary"].as_str())
        .or(body.as_str())
        .unwrap_or("no error message")
}

/// Signs `upn` in at the sandbox at `base` with `key` and `pin` (user verification):
/// begin, an assertion for the challenge at origin `https://<rpId>`, finish. Any
/// `finish` answer, a refusal included, is [`Finished`]; only a failure before it is an
/// error.
pub async fn sign_in<K: KeyProgrammer + Send + ?Sized>(
    http: &reqwest::Client,
    base: &str,
    key: &mut K,
    upn: &str,
    pin: &Pin,
) -> Result<Finished, SignInError> {
    let base = base.trim_end_matches('/');
    let begin = post(
        http,
        base,
        "begin",
        &BeginRequest {
            upn: upn.to_owned(),
        },
    )
    .await?;
    if !(200..300).contains(&begin.status) {
        return Err(SignInError::Begin {
            status: begin.status,
            message: begin.message().to_owned(),
        });
    }
    let begun: BeginResponse =
        serde_json::from_value(begin.body).map_err(|e| SignInError::Options(e.to_string()))?;
    let options = &begun.public_key;
    // The Entra sandbox always names its RP; Entra's own default is this one.
    let rp_id = options.rp_id.as_deref().unwrap_or("login.microsoft.com");
    let allow: Vec<Vec<u8>> = options
        .allow_credentials
        .iter()
        .flat_map(|d| d.id_candidates())
        .collect();
    let credential = authenticator::client::get_assertion(
        key,
        rp_id,
        &options.challenge,
        &format!("https://{rp_id}"),
        &allow,
        Some(pin),
    )?;
    post(http, base, "finish", &FinishRequest { credential }).await
}

async fn post<B: serde::Serialize>(
    http: &reqwest::Client,
    base: &str,
    route: &str,
    body: &B,
) -> Result<Finished, SignInError> {
    let failed = |e: reqwest::Error| SignInError::Http {
        base: base.to_owned(),
        message: e.to_string(),
    };
    let resp = http
        .post(format!("{base}/sandbox/v1/signin/{route}"))
        .json(body)
        .send()
        .await
        .map_err(failed)?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(failed)?;
    Ok(Finished {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    })
}
