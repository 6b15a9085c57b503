//! The application: what the HTTP handlers share ([`AppState`]: the engine's services
//! plus the API's own caches), and [`Application`], which binds (port 0 in tests) and
//! serves the API and the console while the runner and the schedulers run.

use crate::api;
use crate::config::Config;
use engine::{Services, StartError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What the HTTP handlers share: the engine's services (reached through `Deref`, so a
/// handler calls `engine` functions with `&state`), and the API token issuer's keys.
pub struct AppState {
    /// The services: store, vendor clients, runner.
    pub services: Arc<Services>,
    /// The API token issuer's keys.
    pub keys: api::auth::KeyCache,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// The services ([`Services::build`]) with the HTTP layer's caches.
    pub async fn build(config: Config) -> Result<Arc<Self>, StartError> {
        Ok(Arc::new(Self {
            services: Services::build(config).await?,
            keys: api::auth::KeyCache::default(),
        }))
    }
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
        let services = state.services.clone();
        let runner = tokio::spawn(crate::runner::run(services.clone()));
        let sched = tokio::spawn(engine::services::schedulers(services.clone()));
        let okta = services
            .okta
            .is_some()
            .then(|| tokio::spawn(crate::okta::background(services.clone())));
        let entra_groups = services
            .config
            .entra
            .is_some()
            .then(|| tokio::spawn(engine::entra_groups::background(services.clone())));
        // The client's address reaches handlers as `ConnectInfo` (console sign-in
        // throttling).
        let router = api::router(state)
            .layer(axum::middleware::from_fn(crate::trace::http))
            .into_make_service_with_connect_info::<SocketAddr>();
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
        for t in [okta, entra_groups].into_iter().flatten() {
            t.abort();
        }
        r
    }
}
