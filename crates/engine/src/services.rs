//! The services every part of the connector shares, without the HTTP layer: the
//! configuration, the store, the vendor clients (each behind its gate), Okta mode's
//! runtime and the runner's handle. `prereg serve` puts the HTTP API and the console in
//! front of them; the admin commands (`prereg okta`) use them without serving anything.

use crate::config::Config;
use crate::secrets::MasterKey;
use crate::store::SqlStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What every handler and worker shares.
pub struct Services {
    /// The configuration.
    pub config: Config,
    /// The database.
    pub store: SqlStore,
    /// The fulfiller.
    pub fulfiller: yubienterprise::Client,
    /// Microsoft Graph.
    pub graph: graph::GraphClient,
    /// Encrypts secrets at rest.
    pub master_key: MasterKey,
    /// Plain HTTP (JWKS of the token issuer, the PIN webhook).
    pub http: reqwest::Client,
    /// Okta mode's runtime, when `[okta]` is configured.
    pub okta: Option<crate::okta::OktaState>,
    /// The fulfiller's transport keys, cached.
    pub transport: JwksCache,
    /// The runner's handle: kick it, wait for it ([`crate::runner`]).
    pub runner: crate::runner::Runner,
    /// The fulfiller's signing keys (from `ye_jwks_sign_endpoint`), cached.
    pub signing: JwksCache,
    /// PIN mail (when `smtp_host` is set): one pooled SMTP transport.
    pub mailer: Option<crate::pin::Mailer>,
    /// Each vendor's gate, by name (`fulfiller`, `graph`, `okta`): the clients enter
    /// them; the metrics read them.
    pub gates: [(&'static str, gate::Gate); 3],
}

/// A key set read from the fulfiller, kept for [`JwksCache::TTL`].
#[derive(Debug, Default)]
pub struct JwksCache(tokio::sync::Mutex<Option<(std::time::Instant, envelope::Jwks)>>);

impl JwksCache {
    /// How long a set is kept.
    pub const TTL: Duration = Duration::from_secs(600);

    /// The kept set while it is younger than [`Self::TTL`] (and `fresh` is false), else
    /// the one `fetch` reads, kept when it succeeds. Concurrent callers wait for one
    /// fetch.
    pub async fn get<E>(
        &self,
        fresh: bool,
        fetch: impl std::future::Future<Output = Result<envelope::Jwks, E>>,
    ) -> Result<envelope::Jwks, E> {
        let mut g = self.0.lock().await;
        if !fresh
            && let Some((at, jwks)) = g.as_ref()
            && at.elapsed() < Self::TTL
        {
            return Ok(jwks.clone());
        }
        let jwks = fetch.await?;
        *g = Some((std::time::Instant::now(), jwks.clone()));
        Ok(jwks)
    }
}

impl Services {
    /// A fulfiller transport key to seal requests to (cached; fetched with retries).
    pub async fn transport_key(&self) -> Result<envelope::PublicJwk, String> {
        let first = |jwks: envelope::Jwks| jwks.keys().first().cloned();
        // A kept set without a key is read again rather than trusted for the TTL.
        for fresh in [false, true] {
            let jwks = self
                .transport
                .get(fresh, self.read_transport_keys())
                .await?;
            if let Some(k) = first(jwks) {
                return Ok(k);
            }
        }
        Err("the fulfiller publishes no transport key".to_owned())
    }

    /// The transport keys from the fulfiller, with retries.
    async fn read_transport_keys(&self) -> Result<envelope::Jwks, String> {
        let mut last = String::new();
        for attempt in 0..4u32 {
            match self.fulfiller.transport_keys().await {
                Ok(jwks) => return Ok(jwks),
                Err(e) => {
                    last = e.to_string();
                    let wait = e
                        .retry_after()
                        .map_or(100u64 << attempt, |s| s.min(30) * 1000);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
            }
        }
        Err(last)
    }

    /// The services without the HTTP layer: the store (migrated), the vendor clients
    /// (each behind its gate), Okta mode's runtime and the runner's handle. What
    /// `prereg serve` serves, and what the admin commands (`prereg okta`) use without
    /// serving anything.
    pub async fn build(config: Config) -> Result<Arc<Self>, StartError> {
        // A worker holds a connection only for a statement or a short transaction (never
        // across a vendor call), so the pool need not grow with the workers: up to 32 of
        // them, plus the API's 8. Two replicas then stay under PostgreSQL's default
        // `max_connections` (100).
        let connections = u32::try_from(config.processing.workers.min(32)).unwrap_or(32) + 8;
        let store = SqlStore::connect_sized(&config.database_url, connections).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| StartError::Client(e.to_string()))?;
        let keys_base = config
            .ye_jwks_transport_endpoint
            .split("/.well-known/")
            .next()
            .unwrap_or_default()
            .to_owned();
        let limit = config.processing.vendor_concurrency;
        let gates = [
            ("fulfiller", gate::Gate::new(limit)),
            ("graph", gate::Gate::new(limit)),
            ("okta", gate::Gate::new(limit)),
        ];
        let fulfiller = yubienterprise::Client::with_http(
            http.clone(),
            &config.ye_api_base_url,
            &keys_base,
            config.yed_api_token.clone(),
        )
        .with_gate(gates[0].1.clone());
        let credential = match &config.entra_fido_api_client_certificate {
            Some(c) => c.clone(),
            None => graph::ClientCredential::Secret(config.entra_fido_api_client_secret.clone()),
        };
        let mut gc = graph::GraphConfig::with_credential(
            &config.azure_tenant_id,
            &config.entra_fido_api_client_id,
            credential,
        );
        gc.authority_url = config.entra_authority_url.clone();
        gc.graph_url = config.graph_api_base_url.clone();
        let graph = graph::GraphClient::new(gc)
            .map_err(|e| StartError::Client(e.to_string()))?
            .with_gate(gates[1].1.clone());
        let okta = match &config.okta {
            Some(c) => Some(
                crate::okta::OktaState::build(c, &http, gates[2].1.clone())
                    .map_err(StartError::Client)?,
            ),
            None => None,
        };
        let mailer = match &config.smtp {
            Some(smtp) => Some(crate::pin::Mailer::new(smtp).map_err(StartError::Client)?),
            None => None,
        };
        Ok(Arc::new(Services {
            gates,
            mailer,
            okta,
            master_key: config.master_key.clone(),
            config,
            store,
            fulfiller,
            graph,
            http,
            transport: JwksCache::default(),
            runner: crate::runner::Runner::default(),
            signing: JwksCache::default(),
        }))
    }

    /// The fulfiller's signing keys from `ye_jwks_sign_endpoint`: the cached set (up to
    /// 10 minutes old), or with `fresh` (a response signed by a key the cached set does
    /// not have: the fulfiller rotated) read again.
    pub async fn signing_keys(
        &self,
        fresh: bool,
    ) -> Result<envelope::Jwks, yubienterprise::ClientError> {
        let url = &self.config.ye_jwks_sign_endpoint;
        self.signing.get(fresh, self.fulfiller.jwks_at(url)).await
    }
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Database.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A client could not be built.
    #[error("{0}")]
    Client(String),
    /// A configuration file could not be used (the TLS certificate or key).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Binding the listener.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The schedules of `cron_process_shipment_schedule` (a processing tick) and
/// `cron_data_cleanup_schedule` (the PIN cleanup, then retention of personal data when
/// `retention_days` is set), until the task is aborted.
pub async fn schedulers(state: Arc<Services>) {
    let process = crate::config::parse_cron(&state.config.cron_process_shipment_schedule).ok();
    let cleanup = crate::config::parse_cron(&state.config.cron_data_cleanup_schedule).ok();
    let (Some(process), Some(cleanup)) = (process, cleanup) else {
        return;
    };
    loop {
        let now = chrono::Utc::now();
        let next_p = process.after(&now).next();
        let next_c = cleanup.after(&now).next();
        let next = match (next_p, next_c) {
            (Some(p), Some(c)) => p.min(c),
            (Some(p), None) => p,
            (None, Some(c)) => c,
            (None, None) => return,
        };
        let wait = (next - now).to_std().unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        if next_p == Some(next) {
            // The tick makes due what waits for the fulfiller; a job waiting out a
            // retry backoff keeps waiting (the runner picks it up when it is due).
            match crate::runner::tick(&state).await {
                Ok(n) => tracing::info!(made_due = n, "scheduled processing tick"),
                Err(e) => tracing::warn!(error = %e, "scheduled processing tick failed"),
            }
        }
        if next_c == Some(next) {
            match crate::pin::cleanup(&state, crate::store::now()).await {
                Ok(n) => tracing::info!(purged_pins = n, "cleanup run"),
                Err(e) => tracing::warn!(error = %e, "cleanup run failed"),
            }
            let days = state.config.retention_days;
            match crate::retention::apply(&state.store, days, crate::store::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(requests = n, "retention: personal data removed"),
                Err(e) => tracing::warn!(error = %e, "retention run failed"),
            }
        }
    }
}
