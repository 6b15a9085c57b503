//! Binding and running the sandbox servers. Tests bind port 0 on 127.0.0.1 and read the
//! chosen port back; `prereg sandbox` binds the configured address and prints
//! [`App::ready_info`] once.

use crate::entra::{self, Entra, TenantSeed};
use crate::faults::{FaultConfig, Faults};
use crate::fulfiller::{self, EnvelopeProgrammer, Fulfiller, Programmer, Seed, Store, VirtualKeys};
use crate::mail::{MailCatcher, SmtpTarget};
use crate::okta::{self, Okta, OrgSeed};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How to run.
#[derive(Clone)]
pub struct Config {
    /// Where the fulfiller listens (default 127.0.0.1:8700; port 0 for tests).
    pub fulfiller_addr: SocketAddr,
    /// The organisation.
    pub seed: Seed,
    /// Faults from the start.
    pub faults: FaultConfig,
    /// Run a processing round this often, by itself (`--auto-fulfil`).
    pub auto_fulfil: Option<Duration>,
    /// Programs FIDO Pre-reg keys (default: the envelope with virtual YubiKeys).
    pub programmer: Arc<dyn Programmer>,
    /// Where the Entra sandbox listens (default 127.0.0.1:8701; port 0 for tests).
    pub entra_addr: SocketAddr,
    /// The Entra tenant.
    pub entra_seed: TenantSeed,
    /// Where the Okta sandbox listens (default 127.0.0.1:8702; port 0 for tests).
    pub okta_addr: SocketAddr,
    /// The Okta org.
    pub okta_seed: OrgSeed,
    /// Fulfiller signing keys the Okta org trusts (default: the fulfiller sandbox's).
    pub okta_trusted_signing: Option<envelope::Jwks>,
    /// Where the mail catcher listens (default 127.0.0.1:8725; port 0 for tests).
    pub smtp_addr: SocketAddr,
    /// Where the Okta sandbox sends mail (default: the catcher).
    pub smtp_target: Option<SmtpTarget>,
}

/// The programmer the sandbox ships with: requests opened and responses sealed with the
/// envelope, keys made as `VirtualYubiKey`s.
pub fn default_programmer() -> Arc<dyn Programmer> {
    Arc::new(EnvelopeProgrammer::new(VirtualKeys))
}

impl Config {
    /// The default seed on 127.0.0.1 port 0, no faults, manual clock, virtual keys.
    pub fn for_tests() -> Self {
        Self {
            fulfiller_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: Seed::default(),
            faults: FaultConfig::none(),
            auto_fulfil: None,
            programmer: default_programmer(),
            entra_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            entra_seed: TenantSeed::default(),
            okta_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            okta_seed: OrgSeed::default(),
            okta_trusted_signing: None,
            smtp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            smtp_target: None,
        }
    }
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The seed is inconsistent.
    #[error(transparent)]
    Seed(#[from] fulfiller::seed::SeedError),
    /// Key generation failed.
    #[error(transparent)]
    Keys(#[from] fulfiller::keys::KeyError),
    /// The Entra tenant or keys.
    #[error(transparent)]
    Entra(#[from] entra::EntraError),
    /// The Entra sandbox's address is taken or not allowed.
    #[error("binding the Entra sandbox to {addr}: {source}")]
    BindEntra {
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The Okta org.
    #[error(transparent)]
    Okta(#[from] okta::SeedError),
    /// The Okta sandbox's or mail catcher's address is taken or not allowed.
    #[error("binding the {what} to {addr}: {source}")]
    BindOther {
        /// Which server.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The address is taken or not allowed.
    #[error("binding the fulfiller sandbox to {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A bound, not yet running, sandbox.
pub struct App {
    fulfiller: Fulfiller,
    listener: TcpListener,
    addr: SocketAddr,
    auto_fulfil: Option<Duration>,
    entra: Entra,
    entra_listener: TcpListener,
    okta: Okta,
    okta_listener: TcpListener,
    catcher: MailCatcher,
}

impl App {
    /// Seeds the state, generates the key sets and binds.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        config.seed.check()?;
        let store = Arc::new(Store::new(config.seed, config.programmer)?);
        let fulfiller = Fulfiller {
            store,
            faults: Faults::new(config.faults.clone()),
        };
        let listener = TcpListener::bind(config.fulfiller_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.fulfiller_addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.fulfiller_addr,
            source,
        })?;
        let entra_listener = TcpListener::bind(config.entra_addr)
            .await
            .map_err(|source| StartError::BindEntra {
                addr: config.entra_addr,
                source,
            })?;
        let entra_addr = entra_listener
            .local_addr()
            .map_err(|source| StartError::BindEntra {
                addr: config.entra_addr,
                source,
            })?;
        let entra = Entra::new(
            config.entra_seed,
            &format!("http://{entra_addr}"),
            Faults::new(config.faults.clone()),
        )?;
        let bind_other = |what: &'static str, addr: SocketAddr| {
            move |source| StartError::BindOther { what, addr, source }
        };
        let catcher = MailCatcher::start(config.smtp_addr)
            .await
            .map_err(bind_other("mail catcher", config.smtp_addr))?;
        let okta_listener = TcpListener::bind(config.okta_addr)
            .await
            .map_err(bind_other("Okta sandbox", config.okta_addr))?;
        let okta_addr = okta_listener
            .local_addr()
            .map_err(bind_other("Okta sandbox", config.okta_addr))?;
        let smtp = config.smtp_target.unwrap_or_else(|| SmtpTarget {
            host: catcher.addr().ip().to_string(),
            port: catcher.addr().port(),
            from: config.okta_seed.mail_from.clone(),
        });
        let okta = Okta::new(
            config.okta_seed,
            &format!("http://{okta_addr}"),
            okta::OktaOptions {
                trusted_signing: config
                    .okta_trusted_signing
                    .unwrap_or_else(|| fulfiller.store.signing_jwks()),
                smtp,
                catcher: Some(catcher.clone()),
                faults: config.faults,
            },
        )?;
        Ok(Self {
            fulfiller,
            listener,
            addr,
            auto_fulfil: config.auto_fulfil,
            entra,
            entra_listener,
            okta,
            okta_listener,
            catcher,
        })
    }

    /// The fulfiller's bound address.
    pub fn fulfiller_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: serves `/.well-known/...`, `/v1/...` and `/sandbox/...`.
    pub fn fulfiller_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fulfiller's live fault setting (tests script one-shot faults with it).
    pub fn fulfiller_faults(&self) -> Faults {
        self.fulfiller.faults.clone()
    }

    /// The fulfiller's state (tests read it directly).
    pub fn fulfiller_store(&self) -> Arc<Store> {
        self.fulfiller.store.clone()
    }

    /// The Entra sandbox's base URL, `http://127.0.0.1:PORT`: the token service (the
    /// authority host), Graph (`/v1.0`, `/beta`) and `/sandbox/v1/...`.
    pub fn entra_url(&self) -> String {
        self.entra.base_url()
    }

    /// The Entra sandbox's state (tests read and steer it directly).
    pub fn entra(&self) -> Entra {
        self.entra.clone()
    }

    /// The Okta sandbox's base URL, `http://127.0.0.1:PORT`: `/api/v1`,
    /// `/oauth2/v1/token`, `/webauthn-registration/api/v1` and `/sandbox/v1/...`.
    pub fn okta_url(&self) -> String {
        self.okta.base_url()
    }

    /// The Okta sandbox's state (tests read and steer it directly).
    pub fn okta(&self) -> Okta {
        self.okta.clone()
    }

    /// The mail catcher (SMTP).
    pub fn mail_catcher(&self) -> MailCatcher {
        self.catcher.clone()
    }

    /// The one JSON line `prereg sandbox` prints when ready: base URLs, seeded tokens,
    /// the seeded organisation.
    pub fn ready_info(&self) -> serde_json::Value {
        let mut fulfiller = fulfiller::ready_info(&self.fulfiller.store, &self.fulfiller_url());
        fulfiller["sandbox_url"] = format!("{}/sandbox/v1", self.fulfiller_url()).into();
        fulfiller["auto_fulfil_secs"] = self.auto_fulfil.map(|d| d.as_secs_f64()).into();
        serde_json::json!({
            "ready": true,
            "fulfiller": fulfiller,
            "entra": entra::ready_info(&self.entra),
            "okta": okta::ready_info(&self.okta),
            "mail": {
                "smtp": self.catcher.addr().to_string(),
                "messages_url": format!("{}/sandbox/v1/mail", self.okta.base_url()),
            },
        })
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let ticker = self.auto_fulfil.map(|every| {
            let store = self.fulfiller.store.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let store = store.clone();
                    match tokio::task::spawn_blocking(move || store.advance_round()).await {
                        Ok(moved) if !moved.is_empty() => {
                            tracing::info!(
                                count = moved.len(),
                                "auto-fulfil round moved shipments"
                            );
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "auto-fulfil round failed"),
                    }
                }
            })
        });
        use futures_util::FutureExt as _;
        let shutdown = shutdown.boxed().shared();
        let router = fulfiller::router(self.fulfiller);
        let fulfiller = axum::serve(self.listener, router).with_graceful_shutdown(shutdown.clone());
        let entra = axum::serve(self.entra_listener, entra::router(self.entra))
            .with_graceful_shutdown(shutdown.clone());
        let okta = axum::serve(self.okta_listener, okta::router(self.okta))
            .with_graceful_shutdown(shutdown);
        let (a, b, c) = tokio::join!(
            fulfiller.into_future(),
            entra.into_future(),
            okta.into_future()
        );
        let result = a.and(b).and(c);
        if let Some(t) = ticker {
            t.abort();
        }
        result
    }
}
