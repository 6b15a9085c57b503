//! A small async client for the calls prereg makes in Okta mode.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::error::ErrorBody;
use crate::oauth::{ASSERTION_TYPE, AssertionClaims, TOKEN_PATH, TokenResponse};
use crate::prereg::*;
use crate::users::User;

/// How the client authenticates.
pub enum Auth {
    /// `Authorization: SSWS <token>`.
    Ssws(SecretString),
    /// OAuth client credentials with a signed client assertion. The algorithm follows
    /// the key: RS256 for an RSA key (what Okta's Admin Console generates), ES256 for a
    /// P-256 key, ES384 for a P-384 key.
    PrivateKeyJwt {
        client_id: String,
        /// PEM of the app's private key: PKCS#8 (`PRIVATE KEY`, RSA or EC) or PKCS#1
        /// (`RSA PRIVATE KEY`).
        private_key_pem: SecretString,
        /// The `kid` registered with the app.
        kid: String,
        /// Space-separated, default [`crate::SCOPES`].
        scopes: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Ssws(_) => f.write_str("Ssws([redacted])"),
            Auth::PrivateKeyJwt {
                client_id,
                kid,
                scopes,
                ..
            } => f
                .debug_struct("PrivateKeyJwt")
                .field("client_id", client_id)
                .field("kid", kid)
                .field("scopes", scopes)
                .finish_non_exhaustive(),
        }
    }
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Okta answered with its error body.
    #[error("Okta answered {status}: {body}")]
    Okta { status: u16, body: ErrorBody },
    /// Another non-success answer.
    #[error("Okta answered {status} without its error body")]
    Status { status: u16 },
    /// The token service refused the assertion.
    #[error("the token service refused: {0}")]
    Token(String),
    /// The network or TLS.
    #[error("calling Okta: {0}")]
    Http(#[from] reqwest::Error),
    /// The answer did not parse.
    #[error("reading Okta's answer: {0}")]
    Decode(String),
    /// The key or configuration.
    #[error("client configuration: {0}")]
    Config(String),
}

/// An Okta org client.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    auth: Arc<Auth>,
    /// The assertion key, read once from `Auth::PrivateKeyJwt`.
    signer: Option<Arc<(jsonwebtoken::Algorithm, jsonwebtoken::EncodingKey)>>,
    token: Arc<Mutex<Option<(SecretString, u64)>>>,
    /// Concurrency limit and `Retry-After` pause shared by every caller.
    gate: gate::Gate,
}

/// Most pages a list call follows (a guard against a server that never ends).
const MAX_PAGES: usize = 10_000;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Client {
    /// A client for the org at `base_url` (`https://example.okta.com`, no trailing path).
    /// A `PrivateKeyJwt` key is read here: one that is not RSA, P-256 or P-384 is refused.
    pub fn new(base_url: &str, auth: Auth) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let signer = match &auth {
            Auth::Ssws(_) => None,
            Auth::PrivateKeyJwt {
                private_key_pem, ..
            } => Some(Arc::new(crate::keys::assertion_key(
                private_key_pem.expose_secret(),
            )?)),
        };
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            auth: Arc::new(auth),
            signer,
            token: Arc::new(Mutex::new(None)),
            gate: gate::Gate::default(),
        })
    }

    /// Sends every Okta call through `gate`: at most its limit in flight, and none
    /// while a `Retry-After` Okta gave runs (any caller's 429 pauses them all).
    pub fn with_gate(mut self, gate: gate::Gate) -> Self {
        self.gate = gate;
        self
    }

    /// The JWS algorithm of the client assertion (`None` with an SSWS token).
    pub fn assertion_algorithm(&self) -> Option<jsonwebtoken::Algorithm> {
        self.signer.as_ref().map(|s| s.0)
    }

    async fn authorization(&self) -> Result<String, ClientError> {
        match &*self.auth {
            Auth::Ssws(t) => Ok(format!("SSWS {}", t.expose_secret())),
            Auth::PrivateKeyJwt {
                client_id,
                kid,
                scopes,
                ..
            } => {
                let mut cached = self.token.lock().await;
                if let Some((tok, until)) = &*cached
                    && *until > now() + 60
                {
                    return Ok(format!("Bearer {}", tok.expose_secret()));
                }
                let aud = format!("{}{TOKEN_PATH}", self.base);
                let iat = now();
                let claims = AssertionClaims {
                    iss: client_id.clone(),
                    sub: client_id.clone(),
                    aud: aud.clone(),
                    iat,
                    exp: iat + 300,
                    jti: uuid::Uuid::new_v4().to_string(),
                };
                let (alg, key) = self
                    .signer
                    .as_deref()
                    .ok_or_else(|| ClientError::Config("no assertion key".into()))?;
                let mut header = jsonwebtoken::Header::new(*alg);
                header.kid = Some(kid.clone());
                let assertion = jsonwebtoken::encode(&header, &claims, key)
                    .map_err(|e| ClientError::Config(format!("signing the assertion: {e}")))?;
                let resp = self
                    .http
                    .post(&aud)
                    .form(&[
                        ("grant_type", "client_credentials"),
                        ("scope", scopes.as_str()),
                        ("client_assertion_type", ASSERTION_TYPE),
                        ("client_assertion", assertion.as_str()),
                    ])
                    .send()
                    .await?;
                let status = resp.status();
                let text = resp.text().await?;
                if !status.is_success() {
                    let why = serde_json::from_str::<crate::oauth::OAuthError>(&text)
                        .map(|e| format!("{}: {}", e.error, e.error_description))
                        .unwrap_or_else(|_| format!("status {status}"));
                    return Err(ClientError::Token(why));
                }
                let t: TokenResponse = serde_json::from_str(&text)
                    .map_err(|e| ClientError::Decode(format!("token answer: {e}")))?;
                let header = format!("Bearer {}", t.access_token);
                *cached = Some((SecretString::from(t.access_token), iat + t.expires_in));
                Ok(header)
            }
        }
    }

    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, String), ClientError> {
        let url = format!("{}{path}", self.base);
        self.call_url(method, &url, body)
            .await
            .map(|(status, _, text)| (status, text))
    }

    /// One call to an absolute URL; the answer's status, headers and body.
    async fn call_url<B: Serialize>(
        &self,
        method: Method,
        url: &str,
        body: Option<&B>,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, String), ClientError> {
        // A 429 means the call was not processed: wait as told (at most MAX_WAIT) and
        // try again, up to RATE_LIMIT_TRIES in all; then report Okta's 429.
        const RATE_LIMIT_TRIES: u32 = 3;
        const MAX_WAIT: u64 = 30;
        let mut tries = 0;
        let (status, headers, text) = loop {
            tries += 1;
            let mut req = self
                .http
                .request(method.clone(), url)
                .header("Authorization", self.authorization().await?)
                .header("Accept", "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let started = std::time::Instant::now();
            let resp = {
                let _place = self.gate.enter().await;
                req.send().await?
            };
            let status = resp.status();
            tracing::info!(
                vendor = "okta",
                method = %method,
                route = %gate::route_of(url),
                status = status.as_u16(),
                duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "vendor call"
            );
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1)
                    .min(MAX_WAIT);
                // Every caller of this org waits it out (the gate), this one included.
                self.gate.pause(wait);
                if tries < RATE_LIMIT_TRIES {
                    continue;
                }
            }
            let headers = resp.headers().clone();
            break (status, headers, resp.text().await?);
        };
        if status.is_success() {
            Ok((status, headers, text))
        } else {
            match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) => Err(ClientError::Okta {
                    status: status.as_u16(),
                    body,
                }),
                Err(_) => Err(ClientError::Status {
                    status: status.as_u16(),
                }),
            }
        }
    }

    /// Every item of a list call: `GET path`, then each `Link: <...>; rel="next"` until
    /// there is none (Okta's cursor pagination). A next link must stay on this org's
    /// origin: the client never sends its credentials elsewhere.
    async fn all_pages<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        let mut url = format!("{}{path}", self.base);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let (_, headers, text) = self.call_url::<()>(Method::GET, &url, None).await?;
            let page: Vec<T> = serde_json::from_str(&text)
                .map_err(|e| ClientError::Decode(format!("{path}: {e}")))?;
            out.extend(page);
            seen.insert(url.clone());
            match crate::paging::next_link(&headers) {
                None => return Ok(out),
                Some(next) => {
                    if !same_origin(&next, &self.base) {
                        return Err(ClientError::Decode(format!(
                            "{path}: the next page link {next:?} leaves the org {}",
                            self.base
                        )));
                    }
                    if seen.contains(&next) {
                        return Ok(out);
                    }
                    url = next;
                }
            }
        }
        Err(ClientError::Decode(format!(
            "{path}: more than {MAX_PAGES} pages"
        )))
    }

    async fn json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let (_, text) = self.call(method, path, body).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    /// `GET /api/v1/users/{id or login}`.
    pub async fn get_user(&self, id_or_login: &str) -> Result<User, ClientError> {
        self.json::<(), _>(
            Method::GET,
            &format!("/api/v1/users/{}", enc(id_or_login)),
            None,
        )
        .await
    }

    /// `GET /api/v1/users` (optionally `?search=`): every user, page after page by the
    /// `Link: rel="next"` headers.
    pub async fn list_users(&self, search: Option<&str>) -> Result<Vec<User>, ClientError> {
        let path = match search {
            None => "/api/v1/users?limit=200".to_owned(),
            Some(s) => format!("/api/v1/users?search={}&limit=200", query(s)),
        };
        self.all_pages(&path).await
    }

    /// `GET /api/v1/groups/{id}/users`: every member, page after page by the `Link:
    /// rel="next"` headers.
    pub async fn list_group_members(&self, group_id: &str) -> Result<Vec<User>, ClientError> {
        self.all_pages(&format!("/api/v1/groups/{}/users?limit=200", enc(group_id)))
            .await
    }

    /// `GET /api/v1/eventHooks`, every page (Okta documents no paging for it; a `Link:
    /// rel="next"` is followed if one comes).
    pub async fn list_event_hooks(&self) -> Result<Vec<crate::hooks::EventHook>, ClientError> {
        self.all_pages("/api/v1/eventHooks").await
    }

    /// `POST /api/v1/eventHooks`.
    pub async fn create_event_hook(
        &self,
        hook: &crate::hooks::EventHook,
    ) -> Result<crate::hooks::EventHook, ClientError> {
        self.json(Method::POST, "/api/v1/eventHooks", Some(hook))
            .await
    }

    /// `POST /api/v1/eventHooks/{id}/lifecycle/verify`: Okta calls the hook with the
    /// verification challenge.
    pub async fn verify_event_hook(
        &self,
        id: &str,
    ) -> Result<crate::hooks::EventHook, ClientError> {
        self.json::<(), _>(
            Method::POST,
            &format!("/api/v1/eventHooks/{}/lifecycle/verify", enc(id)),
            None,
        )
        .await
    }

    /// `POST /api/v1/eventHooks/{id}/lifecycle/activate`.
    pub async fn activate_event_hook(
        &self,
        id: &str,
    ) -> Result<crate::hooks::EventHook, ClientError> {
        self.json::<(), _>(
            Method::POST,
            &format!("/api/v1/eventHooks/{}/lifecycle/activate", enc(id)),
            None,
        )
        .await
    }

    /// `POST /api/v1/eventHooks/{id}/lifecycle/deactivate`.
    pub async fn deactivate_event_hook(
        &self,
        id: &str,
    ) -> Result<crate::hooks::EventHook, ClientError> {
        self.json::<(), _>(
            Method::POST,
            &format!("/api/v1/eventHooks/{}/lifecycle/deactivate", enc(id)),
            None,
        )
        .await
    }

    /// `PUT /api/v1/eventHooks/{id}`: replaces the hook's name, events and channel.
    pub async fn replace_event_hook(
        &self,
        id: &str,
        hook: &crate::hooks::EventHook,
    ) -> Result<crate::hooks::EventHook, ClientError> {
        self.json(
            Method::PUT,
            &format!("/api/v1/eventHooks/{}", enc(id)),
            Some(hook),
        )
        .await
    }

    /// Deletes a hook the way Okta requires: `POST .../lifecycle/deactivate` (only an
    /// `INACTIVE` hook can be deleted), then `DELETE /api/v1/eventHooks/{id}` (204).
    pub async fn delete_event_hook(&self, id: &str) -> Result<(), ClientError> {
        self.deactivate_event_hook(id).await?;
        self.call::<()>(
            Method::DELETE,
            &format!("/api/v1/eventHooks/{}", enc(id)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `POST .../initiate-fulfillment-request` (204).
    pub async fn initiate_fulfillment(&self, req: &FulfillmentRequest) -> Result<(), ClientError> {
        self.call(
            Method::POST,
            &prereg_path("initiate-fulfillment-request"),
            Some(req),
        )
        .await
        .map(|_| ())
    }

    /// `POST .../enroll`.
    pub async fn enroll(
        &self,
        req: &EnrollmentInitializationRequest,
    ) -> Result<EnrollmentInitializationResponse, ClientError> {
        self.json(Method::POST, &prereg_path("enroll"), Some(req))
            .await
    }

    /// `POST .../activate`.
    pub async fn activate(
        &self,
        req: &EnrollmentActivationRequest,
    ) -> Result<EnrollmentActivationResponse, ClientError> {
        self.json(Method::POST, &prereg_path("activate"), Some(req))
            .await
    }

    /// `POST .../send-pin` (204).
    pub async fn send_pin(&self, req: &PinRequest) -> Result<(), ClientError> {
        self.call(Method::POST, &prereg_path("send-pin"), Some(req))
            .await
            .map(|_| ())
    }

    /// `GET .../users/{userId}/enrollments`, every page (Okta documents no paging for
    /// it; a `Link: rel="next"` is followed if one comes).
    pub async fn list_enrollments(
        &self,
        user_id: &str,
    ) -> Result<Vec<WebAuthnPreregistrationFactor>, ClientError> {
        self.all_pages(&prereg_path(&format!("users/{}/enrollments", enc(user_id))))
            .await
    }

    /// `DELETE .../users/{userId}/enrollments/{id}` (204).
    pub async fn delete_enrollment(&self, user_id: &str, id: &str) -> Result<(), ClientError> {
        self.call::<()>(
            Method::DELETE,
            &prereg_path(&format!("users/{}/enrollments/{}", enc(user_id), enc(id))),
            None,
        )
        .await
        .map(|_| ())
    }

    /// `POST .../users/{userId}/enrollments/{id}/mark-error` (204).
    pub async fn mark_error(&self, user_id: &str, id: &str) -> Result<(), ClientError> {
        self.call::<()>(
            Method::POST,
            &prereg_path(&format!(
                "users/{}/enrollments/{}/mark-error",
                enc(user_id),
                enc(id)
            )),
            None,
        )
        .await
        .map(|_| ())
    }
}

/// Whether `url` is on the origin (scheme, host, port) of `base`.
fn same_origin(url: &str, base: &str) -> bool {
    match (reqwest::Url::parse(url), reqwest::Url::parse(base)) {
        (Ok(u), Ok(b)) => u.origin() == b.origin(),
        _ => false,
    }
}

/// Percent-encodes a query value.
fn query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn prereg_path(rest: &str) -> String {
    format!("/webauthn-registration/api/v1/{rest}")
}

/// What a path segment keeps as it is: RFC 3986 unreserved characters and `@`
/// (logins contain `@`; `+` and the rest are encoded).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// Percent-encodes a path segment.
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}
