//! A small async client for the fulfiller API (the real YubiEnterprise or the sandbox).
//! It only moves bytes: no retries (the caller decides what is idempotent), no
//! validation (call [`crate::validate`] first), and it never logs. The token lives in a
//! [`SecretString`] and is not printed by `Debug`.

use crate::error::{ApiError, ErrorCode};
use crate::exact::{CreateShipmentExact, ShipmentExact, ShipmentPage};
use crate::fpr::{CreateFprShipment, FprShipment, MailingAddress, UpdateFprShipment};
use crate::org::{Inventory, Product};
use crate::{ShipmentState, ShipmentType};
use envelope::Jwks;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status. `body` is the parsed error body, or a
    /// synthetic one when the body was not the documented shape.
    #[error("{status}: {body}")]
    Api {
        /// The status.
        status: u16,
        /// The body.
        body: ApiError,
        /// `Retry-After`, in seconds, when the server sent one (429, 503).
        retry_after: Option<u64>,
    },
    /// No answer: connection refused or dropped, timeout, TLS.
    #[error("calling the fulfiller API at {url}: {source}")]
    Transport {
        /// Where (without query).
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx answer that is not the documented shape.
    #[error("the fulfiller API at {url} answered with an unexpected body: {reason}")]
    Decode {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The base URL cannot be joined with a path.
    #[error("invalid fulfiller base URL {0:?}")]
    BaseUrl(String),
}

impl ClientError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code, when the server answered.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// The `Retry-After` seconds the server asked for, if any.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Worth retrying later with the same request: transport failures, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// `GET /v1/shipments_exact` parameters. All optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Page size, at most 100.
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u64>,
    /// Search value (with `search_field`).
    pub search: Option<String>,
    /// Field to search (see `GET /v1/shipments_exact/search-description`).
    pub search_field: Option<String>,
    /// Only this type.
    pub shipment_type: Option<ShipmentType>,
    /// Only this state.
    pub shipment_state_id: Option<ShipmentState>,
}

impl ListQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(v) = self.limit {
            q.push(("limit", v.to_string()));
        }
        if let Some(v) = self.offset {
            q.push(("offset", v.to_string()));
        }
        if let Some(v) = &self.search {
            q.push(("search", v.clone()));
        }
        if let Some(v) = &self.search_field {
            q.push(("search_field", v.clone()));
        }
        if let Some(v) = self.shipment_type {
            q.push(("shipment_type", v.as_str().to_owned()));
        }
        if let Some(v) = self.shipment_state_id {
            q.push(("shipment_state_id", v.id().to_string()));
        }
        q
    }
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// API base, e.g. `https://api.console.yubico.com/v1` or `http://127.0.0.1:8700/v1`.
    api_base: String,
    /// Where `/.well-known/...` lives, e.g. `https://console.yubico.com`.
    keys_base: String,
    token: SecretString,
    /// Concurrency limit and `Retry-After` pause shared by every caller.
    gate: gate::Gate,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_base", &self.api_base)
            .field("keys_base", &self.keys_base)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl Client {
    /// A client for `api_base` (ends in `/v1`) and `keys_base` (the origin serving the
    /// JWKS). Timeout 30 s per call.
    pub fn new(api_base: &str, keys_base: &str, token: SecretString) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| ClientError::Transport {
                url: api_base.to_owned(),
                source,
            })?;
        Ok(Self::with_http(http, api_base, keys_base, token))
    }

    /// Same, with a caller-built `reqwest::Client`.
    pub fn with_http(
        http: reqwest::Client,
        api_base: &str,
        keys_base: &str,
        token: SecretString,
    ) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
            keys_base: keys_base.trim_end_matches('/').to_owned(),
            token,
            gate: gate::Gate::default(),
        }
    }

    /// Sends every API call through `gate`: at most its limit in flight, and none while
    /// the fulfiller's `Retry-After` runs (any caller's 429 pauses them all).
    pub fn with_gate(mut self, gate: gate::Gate) -> Self {
        self.gate = gate;
        self
    }

    /// `GET /.well-known/yubico-transport-keys.jwks` (no token).
    pub async fn transport_keys(&self) -> Result<Jwks, ClientError> {
        self.jwks("yubico-transport-keys.jwks").await
    }

    /// `GET /.well-known/yubico-sign.jwks` (no token).
    pub async fn signing_keys(&self) -> Result<Jwks, ClientError> {
        self.jwks("yubico-sign.jwks").await
    }

    async fn jwks(&self, name: &str) -> Result<Jwks, ClientError> {
        self.jwks_at(&format!("{}/.well-known/{name}", self.keys_base))
            .await
    }

    /// A JWKS at `url` (no token): the configured `YE_JWKS_SIGN_ENDPOINT` or
    /// `YE_JWKS_TRANSPORT_ENDPOINT`, wherever it points.
    pub async fn jwks_at(&self, url: &str) -> Result<Jwks, ClientError> {
        let url = url.to_owned();
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let text = Self::body_text(&url, resp).await?;
        Jwks::parse(&text).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }

    /// `POST /v1/fpr/shipments`.
    pub async fn create_fpr_shipment(
        &self,
        body: &CreateFprShipment,
    ) -> Result<FprShipment, ClientError> {
        self.call(Method::POST, "/fpr/shipments", &[], Some(body))
            .await
    }

    /// `GET /v1/fpr/shipments/{id}`.
    pub async fn get_fpr_shipment(&self, id: &str) -> Result<FprShipment, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/fpr/shipments/{id}"), &[], None)
            .await
    }

    /// `PUT /v1/fpr/shipments/{id}`.
    pub async fn update_fpr_shipment(
        &self,
        id: &str,
        body: &UpdateFprShipment,
    ) -> Result<FprShipment, ClientError> {
        self.call(
            Method::PUT,
            &format!("/fpr/shipments/{id}"),
            &[],
            Some(body),
        )
        .await
    }

    /// `DELETE /v1/fpr/shipments/{id}`.
    pub async fn delete_fpr_shipment(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &format!("/fpr/shipments/{id}"))
            .await
    }

    /// `POST /v1/shipments_exact`.
    pub async fn create_shipment_exact(
        &self,
        body: &CreateShipmentExact,
    ) -> Result<ShipmentExact, ClientError> {
        self.call(Method::POST, "/shipments_exact", &[], Some(body))
            .await
    }

    /// `GET /v1/shipments_exact/{id}`.
    pub async fn get_shipment_exact(&self, id: &str) -> Result<ShipmentExact, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/shipments_exact/{id}"), &[], None)
            .await
    }

    /// `PUT /v1/shipments_exact/{id}`.
    pub async fn update_shipment_exact(
        &self,
        id: &str,
        body: &CreateShipmentExact,
    ) -> Result<ShipmentExact, ClientError> {
        self.call(
            Method::PUT,
            &format!("/shipments_exact/{id}"),
            &[],
            Some(body),
        )
        .await
    }

    /// `DELETE /v1/shipments_exact/{id}`.
    pub async fn delete_shipment_exact(&self, id: &str) -> Result<(), ClientError> {
        self.call_empty(Method::DELETE, &format!("/shipments_exact/{id}"))
            .await
    }

    /// `GET /v1/shipments_exact?...`: one page.
    pub async fn list_shipments_exact(
        &self,
        query: &ListQuery,
    ) -> Result<ShipmentPage, ClientError> {
        self.call::<(), _>(Method::GET, "/shipments_exact", &query.pairs(), None)
            .await
    }

    /// `POST /v1/validate-address`: `Ok` if the address is valid and deliverable, else
    /// the 400 with `validation_error` or `address_undeliverable`.
    pub async fn validate_address(&self, address: &MailingAddress) -> Result<(), ClientError> {
        let url = format!("{}/validate-address", self.api_base);
        self.send(Method::POST, &url, &[], Some(address))
            .await
            .map(|_| ())
    }

    /// `GET /v1/products`.
    pub async fn products(&self) -> Result<Vec<Product>, ClientError> {
        self.call::<(), _>(Method::GET, "/products", &[], None)
            .await
    }

    /// `GET /v1/inventory`.
    pub async fn inventory(&self) -> Result<Inventory, ClientError> {
        self.call::<(), _>(Method::GET, "/inventory", &[], None)
            .await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&'static str, String)],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.api_base);
        let text = self.send(method, &url, query, body).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Decode {
            url,
            reason: e.to_string(),
        })
    }

    async fn call_empty(&self, method: Method, path: &str) -> Result<(), ClientError> {
        let url = format!("{}{path}", self.api_base);
        self.send::<()>(method, &url, &[], None).await.map(|_| ())
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        url: &str,
        query: &[(&'static str, String)],
        body: Option<&B>,
    ) -> Result<String, ClientError> {
        let method_name = method.to_string();
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let started = std::time::Instant::now();
        let resp = {
            let _place = self.gate.enter().await;
            req.send().await.map_err(|source| ClientError::Transport {
                url: url.to_owned(),
                source,
            })?
        };
        tracing::info!(
            vendor = "fulfiller",
            method = %method_name,
            route = %gate::route_of(url),
            status = resp.status().as_u16(),
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "vendor call"
        );
        if resp.status() == StatusCode::TOO_MANY_REQUESTS
            && let Some(secs) = retry_after(resp.headers())
        {
            self.gate.pause(secs);
        }
        Self::body_text(url, resp).await
    }

    async fn body_text(url: &str, resp: reqwest::Response) -> Result<String, ClientError> {
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let text = resp.text().await.map_err(|source| ClientError::Transport {
            url: url.to_owned(),
            source,
        })?;
        if status.is_success() {
            return Ok(text);
        }
        let body = serde_json::from_str::<ApiError>(&text).unwrap_or_else(|_| {
            ApiError::new(
                fallback_code(status),
                format!(
                    "HTTP {status} with a body that is not the documented error shape ({} bytes)",
                    text.len()
                ),
            )
        });
        Err(ClientError::Api {
            status: status.as_u16(),
            body,
            retry_after,
        })
    }
}

/// A `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

fn fallback_code(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthorized,
        404 => ErrorCode::NotFound,
        429 => ErrorCode::RateLimited,
        s if s >= 500 => ErrorCode::InternalError,
        _ => ErrorCode::Other,
    }
}
