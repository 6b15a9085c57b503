//! A small async client for the token service and Graph. The connector's Entra mode
//! uses it; tests point it at the Entra sandbox.
//!
//! - [`TokenClient`]: client credentials with a client secret (in the body or HTTP
//!   Basic) or a certificate ([`crate::credential`]), one cached token per scope, renewed
//!   five minutes before it expires (or when Graph says it is invalid).
//! - [`GraphClient`]: the calls the connector makes. 429 is retried after `Retry-After`
//!   (capped), 5xx and transport failures with exponential backoff, but a POST only on
//!   429 and 503 (the request was not processed), so a registration is never sent twice
//!   after an answer that may have been acted upon.
//!
//! Secrets never reach `Debug`, logs or error messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::credential::ClientCredential;
use crate::error::GraphErrorBody;
use crate::fido2::{CreationOptions, Fido2AuthenticationMethod, NewFido2Method};
use crate::token::{TokenError, TokenRequest, TokenResponse};
use crate::users::{Collection, DirectoryObject, Group, User};

/// Which Graph endpoint family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    /// `/v1.0`.
    V1,
    /// `/beta`.
    Beta,
}

impl ApiVersion {
    /// The path segment: `v1.0` or `beta`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1.0",
            Self::Beta => "beta",
        }
    }
}

/// Shortest and longest custom challenge timeouts (beta), minutes.
pub const CHALLENGE_TIMEOUT_MINUTES: std::ops::RangeInclusive<u32> = 5..=43200;

/// When to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// First backoff for 5xx and transport failures; doubles each time.
    pub base_delay: Duration,
    /// Longest backoff.
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a longer one ends the retries with the 429.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Where and who.
#[derive(Clone)]
pub struct GraphConfig {
    /// The token service host, default `https://login.microsoftonline.com`.
    pub authority_url: String,
    /// The Graph host, default `https://graph.microsoft.com` (no version segment).
    pub graph_url: String,
    /// Tenant id or verified domain.
    pub tenant: String,
    /// The app's client id.
    pub client_id: String,
    /// How the app authenticates: a client secret (what the guide sets up) or a
    /// certificate registered on the app.
    pub credential: ClientCredential,
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphConfig")
            .field("authority_url", &self.authority_url)
            .field("graph_url", &self.graph_url)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("retry", &self.retry)
            .finish()
    }
}

impl GraphConfig {
    /// The real hosts, default retries and a 30 s timeout, with a client secret sent in
    /// the form body.
    pub fn new(tenant: &str, client_id: &str, client_secret: SecretString) -> Self {
        Self::with_credential(tenant, client_id, ClientCredential::Secret(client_secret))
    }

    /// The same with any credential, e.g. [`ClientCredential::certificate`].
    pub fn with_credential(tenant: &str, client_id: &str, credential: ClientCredential) -> Self {
        Self {
            authority_url: crate::DEFAULT_AUTHORITY_URL.to_owned(),
            graph_url: crate::DEFAULT_GRAPH_URL.to_owned(),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            credential,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (bad URL, timeout out of range, ...).
    #[error("Graph client configuration: {0}")]
    Config(String),
    /// No answer (connection refused or dropped, timeout, TLS), after retries.
    #[error("calling {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The token service refused (AADSTS error).
    #[error("the token service at {url} refused a token for client {client_id} ({status} {}): {}{}", body.error, body.error_description, token_hint(body))]
    Token {
        url: String,
        client_id: String,
        status: u16,
        body: Box<TokenError>,
    },
    /// Graph answered with an error status, after retries.
    #[error("Graph {method} {path} answered {status} {}: {}{}", body.error.code, body.error.message, graph_hint(*status, &body.error.code))]
    Graph {
        method: String,
        /// Path and query, no host.
        path: String,
        status: u16,
        body: Box<GraphErrorBody>,
        /// `Retry-After`, seconds (a 429 that outlasted the retries).
        retry_after: Option<u64>,
    },
    /// A success status with a body that is not the documented shape.
    #[error("{url} answered with an unexpected body: {reason}")]
    Decode { url: String, reason: String },
}

impl Error {
    /// The HTTP status, when a server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Graph { status, .. } | Self::Token { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Graph's error code (`Request_ResourceNotFound`, ...), when Graph answered.
    pub fn graph_code(&self) -> Option<&str> {
        match self {
            Self::Graph { body, .. } => Some(&body.error.code),
            _ => None,
        }
    }

    /// Worth trying again later: transport failures, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Graph { status, .. } | Self::Token { status, .. } => {
                *status == 429 || *status >= 500
            }
            _ => false,
        }
    }
}

fn token_hint(body: &TokenError) -> &'static str {
    match body.error.as_str() {
        "invalid_client" => {
            "; check the client secret (its value, not its id) and its expiry, or the certificate registered on the app and its private key"
        }
        "unauthorized_client" => "; check the client id and the tenant",
        "invalid_scope" => "; client credentials need a scope of the form {resource}/.default",
        _ => "",
    }
}

fn graph_hint(status: u16, code: &str) -> &'static str {
    match (status, code) {
        (401, _) => "; the access token was refused: check the tenant and the app registration",
        (403, _) => {
            "; grant the app the application permission this call needs (UserAuthenticationMethod.ReadWrite.All or UserAuthMethod-Passkey.ReadWrite.All for passkeys, User.Read.All for users and managers, GroupMember.Read.All for groups) and grant admin consent"
        }
        (404, "Request_ResourceNotFound") => "; check the user's object id or UPN",
        _ => "",
    }
}

struct CachedToken {
    token: SecretString,
    renew_at: Instant,
}

/// Client-credentials tokens, cached per scope. Cheap to clone (shared cache).
#[derive(Clone)]
pub struct TokenClient {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    credential: ClientCredential,
    retry: RetryPolicy,
    cache: Arc<Mutex<HashMap<String, CachedToken>>>,
    /// Held while a token is fetched: callers that find no fresh token at the same
    /// moment (a burst of orders after a start) wait for one fetch instead of each
    /// asking the token service.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenClient")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Renew this long before a token expires.
const RENEW_MARGIN: Duration = Duration::from_secs(300);

impl TokenClient {
    /// `{authority_url}/{tenant}/oauth2/v2.0/token` with the app's client secret (sent in
    /// the form body).
    pub fn new(
        http: reqwest::Client,
        authority_url: &str,
        tenant: &str,
        client_id: &str,
        client_secret: SecretString,
        retry: RetryPolicy,
    ) -> Result<Self, Error> {
        Self::with_credential(
            http,
            authority_url,
            tenant,
            client_id,
            ClientCredential::Secret(client_secret),
            retry,
        )
    }

    /// The same with any credential.
    pub fn with_credential(
        http: reqwest::Client,
        authority_url: &str,
        tenant: &str,
        client_id: &str,
        credential: ClientCredential,
        retry: RetryPolicy,
    ) -> Result<Self, Error> {
        if tenant.is_empty() || tenant.contains('/') {
            return Err(Error::Config(format!(
                "tenant {tenant:?} must be a tenant id or domain"
            )));
        }
        let token_url = join(authority_url, &[tenant, "oauth2", "v2.0", "token"])?;
        Ok(Self {
            http,
            token_url: token_url.to_string(),
            client_id: client_id.to_owned(),
            credential,
            retry,
            cache: Arc::new(Mutex::new(HashMap::new())),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// A token for `scope` (`{resource}/.default`), from the cache when still fresh.
    pub async fn token(&self, scope: &str) -> Result<SecretString, Error> {
        if let Some(t) = self.cached(scope) {
            return Ok(t);
        }
        let _fetching = self.fetching.lock().await;
        // Another caller may have fetched it while this one waited.
        if let Some(t) = self.cached(scope) {
            return Ok(t);
        }
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            // Built per attempt: a certificate assertion is single-use (fresh `jti`).
            let sent = self.token_request(scope)?.send().await;
            let resp = match sent {
                Ok(r) => r,
                Err(source) if attempt < self.retry.max_attempts => {
                    tracing::debug!(error = %source, "token request failed; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
                    continue;
                }
                Err(source) => {
                    return Err(Error::Transport {
                        url: self.token_url.clone(),
                        source,
                    });
                }
            };
            let status = resp.status();
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error())
                && attempt < self.retry.max_attempts
                && let Some(wait) = wait_for(&self.retry, attempt, &resp)
            {
                tokio::time::sleep(wait).await;
                continue;
            }
            break resp;
        };
        let status = resp.status();
        let text = resp.text().await.map_err(|source| Error::Transport {
            url: self.token_url.clone(),
            source,
        })?;
        if !status.is_success() {
            let body = serde_json::from_str::<TokenError>(&text).unwrap_or_else(|_| TokenError {
                error: format!("http_{}", status.as_u16()),
                error_description: snippet(&text),
                error_codes: vec![],
                timestamp: None,
                trace_id: None,
                correlation_id: None,
                error_uri: None,
            });
            return Err(Error::Token {
                url: self.token_url.clone(),
                client_id: self.client_id.clone(),
                status: status.as_u16(),
                body: Box::new(body),
            });
        }
        let parsed: TokenResponse = serde_json::from_str(&text).map_err(|e| Error::Decode {
            url: self.token_url.clone(),
            reason: format!("not a token response: {e}"),
        })?;
        let token = SecretString::from(parsed.access_token);
        let life = Duration::from_secs(parsed.expires_in);
        let renew_at = Instant::now() + life.saturating_sub(RENEW_MARGIN).max(life / 2);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                scope.to_owned(),
                CachedToken {
                    token: token.clone(),
                    renew_at,
                },
            );
        }
        Ok(token)
    }

    /// The token request for `scope` with this client's credential.
    fn token_request(&self, scope: &str) -> Result<reqwest::RequestBuilder, Error> {
        let post = self.http.post(&self.token_url);
        Ok(match &self.credential {
            ClientCredential::Secret(secret) => {
                let req = TokenRequest::client_credentials(&self.client_id, secret, scope);
                post.form(&req.form())
            }
            ClientCredential::SecretBasic(secret) => post
                .header(
                    reqwest::header::AUTHORIZATION,
                    crate::credential::basic_header(&self.client_id, secret).expose_secret(),
                )
                .form(&[
                    ("grant_type", crate::token::CLIENT_CREDENTIALS),
                    ("scope", scope),
                ]),
            ClientCredential::Certificate(cert) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let assertion = cert.assertion(&self.client_id, &self.token_url, now)?;
                post.form(&[
                    ("grant_type", crate::token::CLIENT_CREDENTIALS),
                    ("client_id", self.client_id.as_str()),
                    ("scope", scope),
                    ("client_assertion_type", crate::credential::ASSERTION_TYPE),
                    ("client_assertion", assertion.as_str()),
                ])
            }
        })
    }

    /// Forgets the cached token for `scope` (e.g. after a 401).
    pub fn invalidate(&self, scope: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(scope);
        }
    }

    fn cached(&self, scope: &str) -> Option<SecretString> {
        let cache = self.cache.lock().ok()?;
        let c = cache.get(scope)?;
        (Instant::now() < c.renew_at).then(|| c.token.clone())
    }
}

/// How long to wait before the next attempt, or `None` when not worth retrying.
fn wait_for(retry: &RetryPolicy, attempt: u32, resp: &reqwest::Response) -> Option<Duration> {
    let after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match after {
        Some(d) if d > retry.max_retry_after => None,
        Some(d) => Some(d),
        None => Some(retry.backoff(attempt - 1)),
    }
}

fn snippet(text: &str) -> String {
    let t: String = text.chars().take(200).collect();
    if t.is_empty() {
        "(empty body)".to_owned()
    } else {
        t
    }
}

fn join(base: &str, segments: &[&str]) -> Result<Url, Error> {
    let mut url = Url::parse(base).map_err(|e| Error::Config(format!("base URL {base:?}: {e}")))?;
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| Error::Config(format!("base URL {base:?} cannot take a path")))?;
        path.pop_if_empty();
        path.extend(segments);
    }
    Ok(url)
}

/// Graph calls as one app. Cheap to clone.
#[derive(Clone, Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    graph_url: String,
    tokens: TokenClient,
    scope: String,
    retry: RetryPolicy,
    /// Concurrency limit and `Retry-After` pause shared by every caller.
    gate: gate::Gate,
}

impl GraphClient {
    /// A client for `config` (builds its own HTTP client with the configured timeout).
    pub fn new(config: GraphConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::Config(format!("building the HTTP client: {e}")))?;
        let tokens = TokenClient::with_credential(
            http.clone(),
            &config.authority_url,
            &config.tenant,
            &config.client_id,
            config.credential,
            config.retry.clone(),
        )?;
        join(&config.graph_url, &[])?;
        Ok(Self {
            http,
            graph_url: config.graph_url.trim_end_matches('/').to_owned(),
            scope: format!("{}/.default", crate::GRAPH_RESOURCE),
            tokens,
            retry: config.retry,
            gate: gate::Gate::default(),
        })
    }

    /// Sends every Graph call through `gate`: at most its limit in flight, and none
    /// while a `Retry-After` Graph gave runs (any caller's 429 pauses them all).
    pub fn with_gate(mut self, gate: gate::Gate) -> Self {
        self.gate = gate;
        self
    }

    /// The token client (shares its cache with this client).
    pub fn tokens(&self) -> &TokenClient {
        &self.tokens
    }

    /// `GET /users/{id|upn}?$select=...`; an empty `select` gets Graph's default set.
    pub async fn get_user(
        &self,
        version: ApiVersion,
        user: &str,
        select: &[&str],
    ) -> Result<User, Error> {
        let query = select_query(select);
        self.call(Method::GET, version, &["users", user], &query, None::<&()>)
            .await
    }

    /// `GET /users/{id|upn}/manager`; `None` when the user has no manager (404
    /// `Request_ResourceNotFound`).
    pub async fn get_manager(
        &self,
        version: ApiVersion,
        user: &str,
        select: &[&str],
    ) -> Result<Option<DirectoryObject>, Error> {
        let query = select_query(select);
        match self
            .call(
                Method::GET,
                version,
                &["users", user, "manager"],
                &query,
                None::<&()>,
            )
            .await
        {
            Ok(m) => Ok(Some(m)),
            Err(Error::Graph {
                status: 404, body, ..
            }) if body.error.code == "Request_ResourceNotFound" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /groups?$filter=displayName eq '<name>'`.
    pub async fn find_groups(&self, version: ApiVersion, name: &str) -> Result<Vec<Group>, Error> {
        let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
        self.all_pages(version, &["groups"], &[("$filter", filter)])
            .await
    }

    /// `GET /groups/{id}/members?$select=...`, every page.
    pub async fn group_members(
        &self,
        version: ApiVersion,
        group_id: &str,
        select: &[&str],
    ) -> Result<Vec<DirectoryObject>, Error> {
        self.all_pages(
            version,
            &["groups", group_id, "members"],
            &select_query(select),
        )
        .await
    }

    /// `GET /users/{id}/authentication/fido2Methods`.
    pub async fn list_fido2_methods(
        &self,
        version: ApiVersion,
        user: &str,
    ) -> Result<Vec<Fido2AuthenticationMethod>, Error> {
        self.all_pages(
            version,
            &["users", user, "authentication", "fido2Methods"],
            &[],
        )
        .await
    }

    /// `DELETE /users/{id}/authentication/fido2Methods/{methodId}` (204).
    pub async fn delete_fido2_method(
        &self,
        version: ApiVersion,
        user: &str,
        method_id: &str,
    ) -> Result<(), Error> {
        self.call_empty(
            Method::DELETE,
            version,
            &["users", user, "authentication", "fido2Methods", method_id],
        )
        .await
    }

    /// Creation options: v1.0 `creationOptions` (5 minutes, `timeout_minutes` must be
    /// `None`), or beta `creationOptions(challengeTimeoutInMinutes=N)` (5..=43200).
    pub async fn creation_options(
        &self,
        version: ApiVersion,
        user: &str,
        timeout_minutes: Option<u32>,
    ) -> Result<CreationOptions, Error> {
        let last = match (version, timeout_minutes) {
            (_, None) => "creationOptions".to_owned(),
            (ApiVersion::V1, Some(_)) => {
                return Err(Error::Config(
                    "custom challenge timeouts are not supported in v1.0; use beta".into(),
                ));
            }
            (ApiVersion::Beta, Some(n)) if CHALLENGE_TIMEOUT_MINUTES.contains(&n) => {
                format!("creationOptions(challengeTimeoutInMinutes={n})")
            }
            (ApiVersion::Beta, Some(n)) => {
                return Err(Error::Config(format!(
                    "challenge timeout {n} minutes is outside 5..=43200"
                )));
            }
        };
        self.call(
            Method::GET,
            version,
            &["users", user, "authentication", "fido2Methods", &last],
            &[],
            None::<&()>,
        )
        .await
    }

    /// `POST /users/{id}/authentication/fido2Methods` (201 with the new method).
    pub async fn register_fido2_method(
        &self,
        version: ApiVersion,
        user: &str,
        body: &NewFido2Method,
    ) -> Result<Fido2AuthenticationMethod, Error> {
        self.call(
            Method::POST,
            version,
            &["users", user, "authentication", "fido2Methods"],
            &[],
            Some(body),
        )
        .await
    }

    async fn all_pages<T: DeserializeOwned>(
        &self,
        version: ApiVersion,
        segments: &[&str],
        query: &[(&'static str, String)],
    ) -> Result<Vec<T>, Error> {
        let mut page: Collection<T> = self
            .call(Method::GET, version, segments, query, None::<&()>)
            .await?;
        let mut out = std::mem::take(&mut page.value);
        // A bound on pages keeps a misbehaving server from looping us forever.
        for _ in 0..10_000 {
            let Some(next) = page.next_link.take() else {
                return Ok(out);
            };
            let url = Url::parse(&next).map_err(|e| Error::Decode {
                url: next.clone(),
                reason: format!("@odata.nextLink is not a URL: {e}"),
            })?;
            page = self.send(Method::GET, url, None::<&()>).await?;
            out.append(&mut page.value);
        }
        Err(Error::Decode {
            url: self.graph_url.clone(),
            reason: "more than 10000 pages".into(),
        })
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        version: ApiVersion,
        segments: &[&str],
        query: &[(&'static str, String)],
        body: Option<&B>,
    ) -> Result<T, Error> {
        let url = self.url(version, segments, query)?;
        self.send(method, url, body).await
    }

    async fn call_empty(
        &self,
        method: Method,
        version: ApiVersion,
        segments: &[&str],
    ) -> Result<(), Error> {
        let url = self.url(version, segments, &[])?;
        self.exchange(method, url, None::<&()>).await.map(|_| ())
    }

    fn url(
        &self,
        version: ApiVersion,
        segments: &[&str],
        query: &[(&'static str, String)],
    ) -> Result<Url, Error> {
        let mut all = vec![version.as_str()];
        all.extend_from_slice(segments);
        let mut url = join(&self.graph_url, &all)?;
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn send<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<T, Error> {
        let shown = url.to_string();
        let text = self.exchange(method, url, body).await?;
        serde_json::from_str(&text).map_err(|e| Error::Decode {
            url: shown,
            reason: e.to_string(),
        })
    }

    /// Sends with retries; returns the body text of a 2xx.
    async fn exchange<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<String, Error> {
        let shown = url.to_string();
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let idempotent = method != Method::POST;
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.tokens.token(&self.scope).await?;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
                .header("client-request-id", request_id());
            if let Some(b) = body {
                req = req.json(b);
            }
            let started = std::time::Instant::now();
            let sent = {
                let _place = self.gate.enter().await;
                req.send().await
            };
            tracing::info!(
                vendor = "graph",
                method = %method,
                route = %gate::route_of(url.as_str()),
                status = sent.as_ref().map_or(0, |r| r.status().as_u16()),
                duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "vendor call"
            );
            let resp = match sent {
                Ok(r) => r,
                // Only when nothing was sent can a POST be repeated safely.
                Err(source)
                    if attempt < self.retry.max_attempts && (idempotent || source.is_connect()) =>
                {
                    tracing::debug!(url = %shown, error = %source, "Graph call failed; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt - 1)).await;
                    continue;
                }
                Err(source) => return Err(Error::Transport { url: shown, source }),
            };
            let status = resp.status();
            if status.is_success() {
                return resp
                    .text()
                    .await
                    .map_err(|source| Error::Transport { url: shown, source });
            }
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                // The cached token may have expired or been revoked: one fresh try.
                refreshed = true;
                self.tokens.invalidate(&self.scope);
                attempt -= 1;
                continue;
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE
                || (idempotent && status.is_server_error());
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if status == StatusCode::TOO_MANY_REQUESTS
                && let Some(secs) = retry_after
            {
                self.gate.pause(secs);
            }
            if retryable
                && attempt < self.retry.max_attempts
                && let Some(wait) = wait_for(&self.retry, attempt, &resp)
            {
                tracing::debug!(url = %shown, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "Graph asked us to retry");
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = resp.text().await.unwrap_or_default();
            let body = serde_json::from_str::<GraphErrorBody>(&text).unwrap_or_else(|_| {
                GraphErrorBody::new(format!("http_{}", status.as_u16()), snippet(&text))
            });
            return Err(Error::Graph {
                method: method.to_string(),
                path,
                status: status.as_u16(),
                body: Box::new(body),
                retry_after,
            });
        }
    }
}

fn select_query(select: &[&str]) -> Vec<(&'static str, String)> {
    if select.is_empty() {
        vec![]
    } else {
        vec![("$select", select.join(","))]
    }
}

/// A random GUID for `client-request-id` (Graph echoes it in error bodies).
fn request_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        return "00000000-0000-4000-8000-000000000000".to_owned();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_upns_and_function_calls_readable() {
        let u = join(
            "http://127.0.0.1:1/",
            &[
                "beta",
                "users",
                "adele@contoso.com",
                "creationOptions(challengeTimeoutInMinutes=60)",
            ],
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:1/beta/users/adele@contoso.com/creationOptions(challengeTimeoutInMinutes=60)"
        );
        let u = join(
            "https://login.microsoftonline.com",
            &["t", "oauth2", "v2.0", "token"],
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let r = RetryPolicy::default();
        assert_eq!(r.backoff(0), Duration::from_millis(500));
        assert_eq!(r.backoff(1), Duration::from_secs(1));
        assert_eq!(r.backoff(10), Duration::from_secs(30));
    }

    #[test]
    fn request_ids_are_v4_guids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}
