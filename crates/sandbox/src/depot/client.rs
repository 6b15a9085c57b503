//! The desk's client of a running depot: what `prereg depot list` and `prereg depot
//! program` call, and what the tests call for the desk.

use super::{Handover, ProgramBody, Waiting};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// Why a desk call failed: what the depot said, or why it could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeskError(String);

/// A client of one depot's desk routes.
#[derive(Clone)]
pub struct DeskClient {
    http: reqwest::Client,
    base: String,
    token: std::sync::Arc<Zeroizing<String>>,
}

impl std::fmt::Debug for DeskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskClient")
            .field("base", &self.base)
            .field("token", &"[redacted]")
            .finish()
    }
}

impl DeskClient {
    /// The depot at `base_url` (`http://127.0.0.1:8710`), with the desk token.
    pub fn new(http: reqwest::Client, base_url: &str, token: &str) -> Self {
        Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            token: std::sync::Arc::new(Zeroizing::new(token.trim().to_owned())),
        }
    }

    /// The shipments waiting to be programmed, oldest first.
    pub async fn waiting(&self) -> Result<Vec<Waiting>, DeskError> {
        self.call(reqwest::Method::GET, "/depot/v1/waiting").await
    }

    /// Programs the key of shipment `id` and takes it: the depot keeps no copy.
    /// `serial_number`: the number printed on the key (required by a depot with real
    /// keys over USB).
    pub async fn program(
        &self,
        id: &str,
        serial_number: Option<&str>,
    ) -> Result<Handover, DeskError> {
        let id: String =
            percent_encoding::utf8_percent_encode(id.trim(), percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let body = ProgramBody {
            serial_number: serial_number.map(str::to_owned),
        };
        self.call_with(
            reqwest::Method::POST,
            &format!("/depot/v1/shipments/{id}/program"),
            Some(&body),
        )
        .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<T, DeskError> {
        self.call_with::<T, ()>(method, path, None).await
    }

    async fn call_with<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, DeskError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(self.token.as_str());
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| DeskError(format!("calling the depot at {}: {e}", self.base)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| DeskError(format!("reading the depot's answer: {e}")))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "no error message".to_owned());
            return Err(DeskError(format!(
                "the depot refused ({status}): {message}"
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|e| DeskError(format!("the depot answered an unexpected body: {e}")))
    }
}
