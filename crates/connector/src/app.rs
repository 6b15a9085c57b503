//! The application: state shared by the API and the workers, the router, the
//! schedulers, and [`Application`], which binds (port 0 in tests) and runs.

use crate::api;
use crate::config::Config;
use crate::secrets::MasterKey;
use crate::store::SqlStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What every handler and worker shares.
pub struct AppState {
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
    /// The API token issuer's keys.
    pub keys: api::auth::KeyCache,
    /// Okta mode's runtime, when `[okta]` is configured.
    pub okta: Option<crate::okta::OktaState>,
    /// The fulfiller's transport keys, cached.
    pub transport: JwksCache,
    /// The runner's handle: kick it, wait for it ([`crate::runner`]).
    pub runner: crate::runner::Runner,
    /// The fulfiller's signing keys (from `ye_jwks_sign_endpoint`), cached.
    pub signing: JwksCache,
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

impl AppState {
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
        // Each worker may hold a connection, plus the API's.
        let connections = u32::try_from(config.processing.workers).unwrap_or(64) + 8;
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
        let fulfiller = yubienterprise::Client::with_http(
            http.clone(),
            &config.ye_api_base_url,
            &keys_base,
            config.yed_api_token.clone(),
        )
        .with_gate(gate::Gate::new(limit));
        let mut gc = graph::GraphConfig::new(
            &config.azure_tenant_id,
            &config.entra_fido_api_client_id,
            config.entra_fido_api_client_secret.clone(),
        );
        gc.authority_url = config.entra_authority_url.clone();
        gc.graph_url = config.graph_api_base_url.clone();
        let graph = graph::GraphClient::new(gc)
            .map_err(|e| StartError::Client(e.to_string()))?
            .with_gate(gate::Gate::new(limit));
        let okta = match &config.okta {
            Some(c) => Some(
                crate::okta::OktaState::build(c, &http, gate::Gate::new(limit))
                    .map_err(StartError::Client)?,
            ),
            None => None,
        };
        Ok(Arc::new(AppState {
            okta,
            master_key: config.master_key.clone(),
            config,
            store,
            fulfiller,
            graph,
            http,
            keys: api::auth::KeyCache::default(),
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

/// A built, bound application.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
}

fn tls_err(key: &str, problem: String) -> crate::config::ConfigError {
    crate::config::ConfigError {
        key: key.to_owned(),
        env: key.to_ascii_uppercase(),
        problem,
    }
}

/// Reads the listener's certificate chain and private key (PEM) into a rustls server
/// configuration (aws-lc-rs provider; TLS 1.2 and 1.3; HTTP/1.1). Every problem names
/// the key whose file is at fault.
pub fn tls_server_config(
    tls: &crate::config::Tls,
) -> Result<tokio_rustls::rustls::ServerConfig, crate::config::ConfigError> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_pem = std::fs::read(&tls.cert_file).map_err(|e| {
        tls_err(
            "tls_cert_file",
            format!("cannot read {}: {e}", tls.cert_file.display()),
        )
    })?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tls_err(
                "tls_cert_file",
                format!(
                    "{} is not a PEM certificate chain: {e}",
                    tls.cert_file.display()
                ),
            )
        })?;
    if certs.is_empty() {
        return Err(tls_err(
            "tls_cert_file",
            format!("{} holds no PEM certificate", tls.cert_file.display()),
        ));
    }
    let key_pem = zeroize::Zeroizing::new(std::fs::read(&tls.key_file).map_err(|e| {
        tls_err(
            "tls_key_file",
            format!("cannot read {}: {e}", tls.key_file.display()),
        )
    })?);
    // The parser's error never carries key material.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        tls_err(
            "tls_key_file",
            format!("{} holds no PEM private key: {e}", tls.key_file.display()),
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("tls_cert_file", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_err(
                "tls_key_file",
                format!(
                    "{} does not fit the certificate in {}: {e}",
                    tls.key_file.display(),
                    tls.cert_file.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A listener that completes TLS handshakes off the accept path (a slow client cannot
/// hold up others) and hands axum only established TLS streams.
struct TlsListener {
    rx: tokio::sync::mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    addr: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(listener: TcpListener, config: Arc<tokio_rustls::rustls::ServerConfig>) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Self { rx, addr, acceptor }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The acceptor task ended (only when aborted): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

impl Application {
    /// Connects the store (running migrations), builds the clients, binds.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let tls = match &config.tls {
            Some(t) => Some(Arc::new(tls_server_config(t)?)),
            None => None,
        };
        let listen = config.listen_addr;
        let state = AppState::build(config).await?;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: listen,
            source,
        })?;
        Ok(Self {
            listener,
            addr,
            state,
            tls,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, or `https://addr` when TLS is configured.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The shared state (tests and the admin commands use it).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves the API and runs the schedulers until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let runner = tokio::spawn(crate::runner::run(state.clone()));
        let sched = tokio::spawn(schedulers(state.clone()));
        let okta = state
            .okta
            .is_some()
            .then(|| tokio::spawn(crate::okta::background(state.clone())));
        // The client's address reaches handlers as `ConnectInfo` (console sign-in
        // throttling).
        let router = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let r = match self.tls {
            Some(config) => {
                // A (no-op) tap: axum gives a tapped listener's address (`SocketAddr`)
                // to handlers as `ConnectInfo`, as it does for a plain `TcpListener`.
                let tls = TlsListener::new(self.listener, config);
                axum::serve(axum::serve::ListenerExt::tap_io(tls, |_| {}), router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(self.listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        sched.abort();
        runner.abort();
        if let Some(t) = okta {
            t.abort();
        }
        r
    }
}

async fn schedulers(state: Arc<AppState>) {
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
        }
    }
}
