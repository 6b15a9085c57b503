//! A depot (issue #19 item 2, on-site programming): a fulfiller for a desk that programs
//! keys itself. It speaks the same YubiEnterprise FIDO Pre-reg API as the fulfiller
//! sandbox (the same router, store and [`EnvelopeProgrammer`]), so a connector or Okta
//! orders from it exactly as from Yubico; but nothing moves by itself. A new shipment
//! waits (state 2) until the desk programs it: `POST /depot/v1/shipments/{id}/program`
//! opens the sealed requests, programs the key, seals the responses, takes the
//! shipment through to delivered (104) and answers the key's state file, which the
//! person takes away; the depot keeps no copy. The connector's next poll finds 104 with
//! the responses and completes the request as for a shipped key (registration, PIN
//! mail).
//!
//! Kept in `state_dir`, written atomically (temporary file, then rename), mode 0600
//! ([`authenticator::write_private`]):
//! - [`KEYS_FILE`]: the transport and signing private keys, generated on first start;
//!   the published key sets stay the same across restarts.
//! - [`STATE_FILE`]: the shipments (sealed requests until programming, sealed
//!   responses after), inventory and next serial number, saved after every request
//!   that may change them and before its answer is sent; read back on start.
//! - [`DESK_TOKEN_FILE`]: the bearer token of the desk routes, generated on first start.
//!
//! Routes: the service of [`fulfiller::service_routes`] (seed tokens) and, with the desk
//! token, `GET /depot/v1/waiting` and `POST /depot/v1/shipments/{id}/program`
//! (module `desk`; its optional body gives the key's serial number). No sandbox-only route
//! (clock, faults, holds, dumps) is served.
//!
//! Keys: virtual by default; with the `usb` feature, `DepotConfig::with_usb_keys`
//! programs the real key plugged in (module `usb`), whose serial number the desk gives.

mod client;
mod desk;
#[cfg(feature = "usb")]
pub mod usb;

pub use client::{DeskClient, DeskError};
pub use desk::{Handover, ProgramBody, Waiting};

use crate::faults::{FaultConfig, Faults};
use crate::fulfiller::keys::{KeyError, KeyRing};
use crate::fulfiller::seed::SeedError;
use crate::fulfiller::{self, EnvelopeProgrammer, Fulfiller, Programmer, Seed, Store, VirtualKeys};
use envelope::{KeyUse, PrivateJwk};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use zeroize::Zeroizing;

/// The key file in the state directory.
pub const KEYS_FILE: &str = "keys.json";
/// The shipments file in the state directory.
pub const STATE_FILE: &str = "shipments.json";
/// The desk token file in the state directory.
pub const DESK_TOKEN_FILE: &str = "desk-token";

/// How to run a depot.
#[derive(Clone)]
pub struct DepotConfig {
    /// Where it listens (loopback; port 0 for tests).
    pub listen: SocketAddr,
    /// The organisation: API tokens, products, inventory, customizations.
    pub seed: Seed,
    /// Where the keys, shipments and desk token are kept (created if absent).
    pub state_dir: PathBuf,
    /// Programs the keys (default: the envelope with virtual YubiKeys).
    pub programmer: Arc<dyn Programmer>,
    /// Each key's serial number comes from the desk (`prereg depot program --serial`),
    /// for keys whose own the depot cannot read (real keys over USB). Default: false,
    /// the seed's counter numbers the keys unless the desk gives a number.
    pub serial_from_desk: bool,
}

impl DepotConfig {
    /// The default seed on 127.0.0.1 port 0, virtual keys, state in `state_dir`.
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: Seed::default(),
            state_dir,
            programmer: Arc::new(EnvelopeProgrammer::new(VirtualKeys)),
            serial_from_desk: false,
        }
    }

    /// Programs real keys over USB (cargo feature `usb`, [`usb::UsbKeys`]): the one FIDO
    /// key plugged into the depot's machine, its serial number given at the desk.
    #[cfg(feature = "usb")]
    pub fn with_usb_keys(mut self) -> Self {
        self.programmer = Arc::new(EnvelopeProgrammer::new(usb::UsbKeys));
        self.serial_from_desk = true;
        self
    }
}

/// Why a depot could not start or save.
#[derive(Debug, thiserror::Error)]
pub enum DepotError {
    /// The seed is inconsistent.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// Key generation or the kept keys.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A file in the state directory.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file in the state directory is not what the depot wrote.
    #[error("{} is not a depot {what} file: {why}; restore it from a backup or move it away to start afresh (a new key file means requests sealed to the old keys cannot be opened)", path.display())]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// Why not.
        why: String,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// The address is taken or not allowed.
    #[error("binding the depot to {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A bound, not yet running, depot.
pub struct Depot {
    fulfiller: Fulfiller,
    desk: desk::Desk,
    listener: TcpListener,
    addr: SocketAddr,
    state_dir: PathBuf,
}

impl Depot {
    /// Reads or creates the state directory's keys, desk token and shipments, and binds.
    pub async fn build(config: DepotConfig) -> Result<Self, DepotError> {
        config.seed.check()?;
        let dir = config.state_dir;
        let mut mkdir = std::fs::DirBuilder::new();
        mkdir.recursive(true);
        // Only its owner may read the keys' directory (the files are 0600 as well).
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut mkdir, 0o700);
        mkdir.create(&dir).map_err(|source| DepotError::Io {
            what: "creating the state directory",
            path: dir.clone(),
            source,
        })?;
        let keys = load_or_make_keys(&dir.join(KEYS_FILE), config.seed.keys_per_set)?;
        let token = load_or_make_token(&dir.join(DESK_TOKEN_FILE))?;
        let store = Arc::new(Store::with_keys(config.seed, config.programmer, keys));
        let state_file = dir.join(STATE_FILE);
        if let Some(text) = read_if_exists(&state_file)? {
            let corrupt = |why: String| DepotError::Corrupt {
                path: state_file.clone(),
                what: "shipments",
                why,
            };
            let dump: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
            store.restore(&dump).map_err(corrupt)?;
            for id in store.fail_interrupted_programming() {
                tracing::warn!(shipment = %id, "the depot stopped while this shipment's key was being programmed: the shipment is failed (state 8); reset that key");
            }
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| DepotError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| DepotError::Bind {
            addr: config.listen,
            source,
        })?;
        Ok(Self {
            fulfiller: Fulfiller {
                store: store.clone(),
                faults: Faults::new(FaultConfig::none()),
            },
            desk: desk::Desk::new(store, token, state_file, config.serial_from_desk),
            listener,
            addr,
            state_dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`: serves `/.well-known/...`, `/v1/...` and `/depot/v1/...`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The one JSON line `prereg depot serve` prints when ready: the fulfiller as a
    /// requester sees it (the same shape as `prereg sandbox`'s `fulfiller`), the desk's
    /// URL and the state directory. Never the desk token.
    pub fn ready_info(&self) -> serde_json::Value {
        let base = self.url();
        serde_json::json!({
            "ready": true,
            "fulfiller": fulfiller::ready_info(&self.fulfiller.store, &base),
            "depot": {
                "desk_url": format!("{base}/depot/v1"),
                "state_dir": self.state_dir.display().to_string(),
                "desk_token_file": self.state_dir.join(DESK_TOKEN_FILE).display().to_string(),
            },
        })
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = desk::router(self.fulfiller, self.desk);
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Reads a file, or `None` when there is none.
fn read_if_exists(path: &Path) -> Result<Option<String>, DepotError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DepotError::Io {
            what: "reading",
            path: path.to_owned(),
            source,
        }),
    }
}

/// [`authenticator::write_private`], with the file named in the error.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DepotError> {
    authenticator::write_private(path, bytes).map_err(|source| DepotError::Io {
        what: "writing",
        path: path.to_owned(),
        source,
    })
}

/// The kept keys, or a fresh ring written to `path` first.
fn load_or_make_keys(path: &Path, keep: usize) -> Result<KeyRing, DepotError> {
    if let Some(text) = read_if_exists(path)? {
        let text = Zeroizing::new(text);
        let corrupt = |why: String| DepotError::Corrupt {
            path: path.to_owned(),
            what: "keys",
            why,
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        let set = |name: &str, key_use: KeyUse| -> Result<Vec<PrivateJwk>, DepotError> {
            value[name]
                .as_array()
                .ok_or_else(|| corrupt(format!("no {name:?} list")))?
                .iter()
                .map(|v| {
                    PrivateJwk::from_value(v)
                        .map_err(|e| corrupt(format!("a {name} key: {e}")))
                        .and_then(|k| {
                            (k.key_use() == key_use)
                                .then_some(k)
                                .ok_or_else(|| corrupt(format!("a {name} key has the wrong use")))
                        })
                })
                .collect()
        };
        let (transport, signing) = (set("transport", KeyUse::Enc)?, set("signing", KeyUse::Sig)?);
        return KeyRing::from_keys(transport, signing).map_err(|e| corrupt(e.to_string()));
    }
    let ring = KeyRing::generate(keep)?;
    let (transport, signing) = ring.published_private();
    let list = |keys: &[PrivateJwk]| {
        let parts: Vec<Zeroizing<String>> = keys.iter().map(PrivateJwk::to_json).collect();
        let mut out = Zeroizing::new(String::from("["));
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(p);
        }
        out.push(']');
        out
    };
    let text = Zeroizing::new(format!(
        "{{\"transport\":{},\"signing\":{}}}\n",
        list(transport).as_str(),
        list(signing).as_str()
    ));
    write_private(path, text.as_bytes())?;
    Ok(ring)
}

/// The desk token, or a fresh one (32 random bytes, hex) written to `path` first.
fn load_or_make_token(path: &Path) -> Result<Zeroizing<String>, DepotError> {
    if let Some(text) = read_if_exists(path)? {
        let token = Zeroizing::new(text.trim().to_owned());
        if token.len() < 32 {
            return Err(DepotError::Corrupt {
                path: path.to_owned(),
                what: "desk token",
                why: "a desk token has at least 32 characters".to_owned(),
            });
        }
        return Ok(token);
    }
    let bytes = Zeroizing::new(crate::rng::bytes::<32>().ok_or(DepotError::Rng)?);
    let mut token = Zeroizing::new(String::with_capacity(64));
    for b in bytes.iter() {
        token.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        token.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    let line = Zeroizing::new(format!("{}\n", token.as_str()));
    write_private(path, line.as_bytes())?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("prereg-depot-unit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn kept_keys_and_token_come_back_the_same_and_a_damaged_key_file_is_named() {
        let dir = temp_dir();
        let keys = dir.join(KEYS_FILE);
        let first = load_or_make_keys(&keys, 2).unwrap();
        let again = load_or_make_keys(&keys, 2).unwrap();
        assert_eq!(first.transport_jwks(), again.transport_jwks());
        assert_eq!(first.signing_jwks(), again.signing_jwks());
        assert_eq!(again.transport_jwks().len(), 2);
        let token = load_or_make_token(&dir.join(DESK_TOKEN_FILE)).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(
            *load_or_make_token(&dir.join(DESK_TOKEN_FILE)).unwrap(),
            *token
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&keys, "{\"transport\":[],\"signing\":[]}").unwrap();
        let e = load_or_make_keys(&keys, 2).unwrap_err().to_string();
        assert!(e.contains("needs at least one"), "{e}");
        std::fs::write(&keys, "not json").unwrap();
        let e = load_or_make_keys(&keys, 2).unwrap_err().to_string();
        assert!(e.contains(&keys.display().to_string()), "{e}");
        assert!(e.contains("not a depot keys file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
