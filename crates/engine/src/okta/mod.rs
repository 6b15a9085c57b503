//! Okta mode: the triggers (MFA-initiated event hook, group add, batch, periodic
//! reconciliation), the per-user flow through Okta's preregistration API, the shipments
//! table an admin manages (retry, delete, resend PIN, approve).
//!
//! Requests of this mode live in the shared `requests` table with `idp = 'okta'` (so
//! the list API, the jobs, the audit trail and the console see them); what only Okta
//! needs lives in this module's own tables ([`store`]: `okta_requests`, `okta_open_users`,
//! `okta_events`).
//!
//! States: `creating` (enroll at Okta, order at the fulfiller) → `open` (polling the
//! fulfiller) → `awaiting_approval` (when `approval = "admin"`) → `pin_pending` (Okta
//! sends the PIN) → `complete`; `error`; `cancelling` (deleted while `creating`: the
//! processor undoes what was made) → `deleted`. The guide's shipments table shows
//! them as `ongoing` / `error` / `complete` ([`crate::domain::RequestState::table_state`]).

pub mod admin;
pub mod profile;
pub mod step;
pub mod store;
pub mod triggers;

use crate::config::{ConfigError, Section};
use crate::services::Services;
use secrecy::SecretString;
use std::sync::Arc;

pub use admin::approve;
pub(crate) use step::step;
pub use triggers::{Order, Started, reconcile, start_request, start_request_once};

/// How the connector authenticates to Okta.
#[derive(Clone)]
pub enum OktaAuth {
    /// `Authorization: SSWS <api_token>`.
    Ssws(SecretString),
    /// An API Services app with `private_key_jwt`.
    PrivateKeyJwt {
        /// The app's client id.
        client_id: String,
        /// PEM of its private key (read from `private_key_file`): PKCS#8 RSA or EC, or
        /// PKCS#1 RSA.
        private_key_pem: SecretString,
        /// The `kid` registered with the app.
        key_id: String,
        /// Space-separated scopes.
        scopes: String,
    },
}

impl std::fmt::Debug for OktaAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ssws(_) => f.write_str("Ssws([redacted])"),
            Self::PrivateKeyJwt {
                client_id,
                key_id,
                scopes,
                ..
            } => f
                .debug_struct("PrivateKeyJwt")
                .field("client_id", client_id)
                .field("key_id", key_id)
                .field("scopes", scopes)
                .finish_non_exhaustive(),
        }
    }
}

pub use crate::groups::GroupMapping;

/// Who confirms delivery before Okta sends the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// The PIN is sent right after activation.
    Auto,
    /// An admin approves that the key arrived (`POST /v1/okta/requests/{id}/approve`).
    Admin,
}

/// Okta-mode settings, from the `[okta]` table of the configuration file (environment
/// variables `OKTA_<KEY>`). Absent table: Okta mode is off.
#[derive(Debug, Clone)]
pub struct OktaConfig {
    /// The org (or its custom domain), e.g. `https://example.okta.com`.
    pub org_url: String,
    /// SSWS token or OAuth service app.
    pub auth: OktaAuth,
    /// The event hook's shared secret (the value of `event_hook_header`).
    pub event_hook_secret: Option<SecretString>,
    /// The header carrying it (default `Authorization`).
    pub event_hook_header: String,
    /// This connector's event hook URL (`https://.../v1/okta/events`): when set, the
    /// connector registers and verifies the hook at Okta at start.
    pub event_hook_url: Option<String>,
    /// React to the preregistration event raised by `initiate-fulfillment-request`.
    pub trigger_mfa_initiated: bool,
    /// React to `group.user_membership.add` for mapped groups.
    pub trigger_group_add: bool,
    /// Seconds between reconciliations of mapped groups' members (0: off).
    pub reconcile_interval_seconds: u64,
    /// Group → order line.
    pub groups: Vec<GroupMapping>,
    /// Approval gate before the PIN.
    pub approval: Approval,
    /// HR CSV keyed by login, read over the Okta profile (checked at start, read again
    /// for every request, so a fixed file needs no restart).
    pub hr_csv: Option<std::path::PathBuf>,
    /// Fulfiller delivery type: 1 standard, 2 expedited.
    pub delivery_type: u8,
    /// RP ids to enroll (default: the org URL's host).
    pub rp_ids: Vec<String>,
}

/// Every key of `[okta]`.
pub const KEYS: &[&str] = &[
    "org_url",
    "auth",
    "api_token",
    "client_id",
    "private_key_file",
    "key_id",
    "scopes",
    "event_hook_secret",
    "event_hook_header",
    "event_hook_url",
    "trigger_mfa_initiated",
    "trigger_group_add",
    "reconcile_interval_seconds",
    "groups",
    "approval",
    "hr_csv",
    "delivery_type",
    "rp_ids",
];

fn bool_key(s: &Section, key: &str, default: bool) -> Result<bool, ConfigError> {
    s.flag(key, default)
}

impl OktaConfig {
    /// Parses the `[okta]` section; every invalid value names its key.
    pub fn parse(s: &Section) -> Result<Self, ConfigError> {
        s.only(KEYS)?;
        let org_url = s.url("org_url", None)?;
        let auth_kind = s.or(
            "auth",
            if s.get("client_id")?.is_some() {
                "private_key_jwt"
            } else {
                "ssws"
            },
        )?;
        let auth = match auth_kind.trim() {
            "ssws" => OktaAuth::Ssws(SecretString::from(s.required("api_token")?)),
            "private_key_jwt" => {
                let client_id = s.required("client_id")?;
                let file = s.required("private_key_file")?;
                let pem = std::fs::read_to_string(&file)
                    .map_err(|e| s.err("private_key_file", format!("cannot read {file}: {e}")))?;
                // PKCS#8 (RSA, as the Admin Console generates, or EC) or PKCS#1 RSA.
                if let Err(e) = okta::check_assertion_key(&pem) {
                    return Err(s.err("private_key_file", format!("{file}: {e}")));
                }
                OktaAuth::PrivateKeyJwt {
                    client_id,
                    private_key_pem: SecretString::from(pem),
                    key_id: s.required("key_id")?,
                    scopes: s.or("scopes", okta::SCOPES)?,
                }
            }
            other => {
                return Err(s.err(
                    "auth",
                    format!("{other:?} is not \"ssws\" or \"private_key_jwt\""),
                ));
            }
        };
        let groups = crate::groups::mappings(s, "okta")?;
        let approval = match s.or("approval", "admin")?.trim() {
            "auto" => Approval::Auto,
            "admin" => Approval::Admin,
            other => {
                return Err(s.err(
                    "approval",
                    format!("{other:?} is not \"auto\" or \"admin\""),
                ));
            }
        };
        let hr_csv = s.get("hr_csv")?.filter(|v| !v.trim().is_empty());
        if let Some(p) = &hr_csv {
            profile::HrData::load(std::path::Path::new(p)).map_err(|e| s.err("hr_csv", e))?;
        }
        let delivery_type: u8 = s.parsed("delivery_type", 1u8)?;
        if !(1..=2).contains(&delivery_type) {
            return Err(s.err("delivery_type", "must be 1 (standard) or 2 (expedited)"));
        }
        let host = reqwest::Url::parse(&org_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        let rp_ids = match s.get("rp_ids")? {
            Some(_) => s.list("rp_ids")?,
            None => vec![host],
        };
        let secret = s.get("event_hook_secret")?.filter(|v| !v.trim().is_empty());
        let trigger_mfa_initiated = bool_key(s, "trigger_mfa_initiated", true)?;
        let trigger_group_add = bool_key(s, "trigger_group_add", true)?;
        if secret.is_none() && (trigger_mfa_initiated || trigger_group_add) {
            return Err(s.err(
                "event_hook_secret",
                "is required while an event trigger is on (the value Okta sends in the event hook's auth header); or set trigger_mfa_initiated and trigger_group_add to false",
            ));
        }
        Ok(Self {
            org_url,
            auth,
            event_hook_secret: secret.map(SecretString::from),
            event_hook_header: s.or("event_hook_header", "Authorization")?,
            event_hook_url: match s.get("event_hook_url")? {
                Some(v) if !v.trim().is_empty() => Some(s.url("event_hook_url", None)?),
                _ => None,
            },
            trigger_mfa_initiated,
            trigger_group_add,
            reconcile_interval_seconds: s.parsed("reconcile_interval_seconds", 3600u64)?,
            groups,
            approval,
            hr_csv: hr_csv.map(Into::into),
            delivery_type,
            rp_ids,
        })
    }

    /// The mapping of a group.
    pub fn group(&self, group_id: &str) -> Option<&GroupMapping> {
        self.groups.iter().find(|g| g.group_id == group_id)
    }
}

/// Okta-mode runtime state (clients, caches), built at start when Okta mode is on.
pub struct OktaState {
    /// The settings.
    pub config: OktaConfig,
    /// The Okta client.
    pub client: okta::Client,
    /// Users a trigger has just read, by Okta id, for the request's first step
    /// ([`OktaState::recent_user`]).
    recent: RecentUsers,
}

/// Users read at Okta in the last [`RecentUsers::FRESH`] seconds, by Okta id: a trigger
/// reads the user to refuse an unknown one, and the request's job, which usually runs
/// within seconds, takes that read instead of asking Okta again. Each entry is used once
/// and an older one is read again, so a profile fixed at Okta since is what ships. Kept
/// in memory only (personal data stays out of the database), at most [`RecentUsers::CAP`].
#[derive(Default)]
struct RecentUsers(
    std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, okta::User)>>,
);

impl RecentUsers {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(60);
    const CAP: usize = 5000;

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::HashMap<String, (std::time::Instant, okta::User)>,
    > {
        // A panic while holding this lock leaves a map of complete entries: usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl OktaState {
    /// Remembers a user just read at Okta for the request's first step.
    pub(crate) fn remember_user(&self, user: &okta::User) {
        let mut map = self.recent.lock();
        if map.len() >= RecentUsers::CAP {
            map.retain(|_, (at, _)| at.elapsed() < RecentUsers::FRESH);
            if map.len() >= RecentUsers::CAP {
                return;
            }
        }
        map.insert(user.id.clone(), (std::time::Instant::now(), user.clone()));
    }

    /// The user a trigger read under this Okta id less than a minute ago (taken: each
    /// read serves one step), or `None`: read it at Okta.
    pub(crate) fn recent_user(&self, okta_id: &str) -> Option<okta::User> {
        let (at, user) = self.recent.lock().remove(okta_id)?;
        (at.elapsed() < RecentUsers::FRESH).then_some(user)
    }
}

impl std::fmt::Debug for OktaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OktaState {
    /// Builds the runtime from the configuration.
    pub fn build(
        config: &OktaConfig,
        _http: &reqwest::Client,
        gate: gate::Gate,
    ) -> Result<Self, String> {
        let auth = match &config.auth {
            OktaAuth::Ssws(t) => okta::Auth::Ssws(t.clone()),
            OktaAuth::PrivateKeyJwt {
                client_id,
                private_key_pem,
                key_id,
                scopes,
            } => okta::Auth::PrivateKeyJwt {
                client_id: client_id.clone(),
                private_key_pem: private_key_pem.clone(),
                kid: key_id.clone(),
                scopes: scopes.clone(),
            },
        };
        let client = okta::Client::new(&config.org_url, auth)
            .map_err(|e| format!("building the Okta client: {e}"))?
            .with_gate(gate);
        Ok(Self {
            config: config.clone(),
            client,
            recent: RecentUsers::default(),
        })
    }
}

/// Background work of Okta mode: reconciles mapped groups' members every
/// `reconcile_interval_seconds` (0: off), so a missed group event is not a missed key.
pub async fn background(state: Arc<Services>) {
    let Some(o) = &state.okta else { return };
    if o.config.event_hook_url.is_some() {
        match register_hook(o).await {
            Ok(id) => tracing::info!(hook_id = %id, "Okta event hook registered and verified"),
            Err(e) => tracing::warn!(error = %e, "registering the Okta event hook failed"),
        }
    }
    if o.config.groups.is_empty() {
        return;
    }
    crate::groups::reconcile_every(
        &state,
        o.config.reconcile_interval_seconds,
        "Okta group reconciliation",
        || reconcile(&state),
    )
    .await;
}

/// Registers `event_hook_url` at Okta for the events of the triggers that are on and
/// asks Okta to verify it. A hook already registered for the URL is replaced in place
/// (`PUT`, keeping its id; its secret cannot be read back, so the configured one is
/// sent again) and activated if it was deactivated; further hooks for the same URL
/// are deactivated and deleted (Okta deletes only inactive hooks). Returns the hook id.
pub async fn register_hook(o: &OktaState) -> Result<String, String> {
    use okta::hooks::*;
    use secrecy::ExposeSecret;
    let Some(url) = &o.config.event_hook_url else {
        return Err("okta.event_hook_url is not set".into());
    };
    let Some(secret) = &o.config.event_hook_secret else {
        return Err("okta.event_hook_secret is not set".into());
    };
    let mut items = Vec::new();
    if o.config.trigger_group_add {
        items.push(GROUP_MEMBERSHIP_ADD.to_owned());
    }
    if o.config.trigger_mfa_initiated {
        items.push(PREREGISTRATION_EVENT.to_owned());
        items.push(PREREGISTER_INITIATE_EVENT.to_owned());
    }
    let hook = EventHook {
        id: None,
        name: "prereg connector".into(),
        status: None,
        verification_status: None,
        events: EventSubscriptions {
            kind: "EVENT_TYPE".into(),
            items,
        },
        channel: Channel {
            kind: "HTTP".into(),
            version: "1.0.0".into(),
            config: ChannelConfig {
                uri: url.clone(),
                headers: Vec::new(),
                auth_scheme: Some(AuthScheme {
                    kind: "HEADER".into(),
                    key: o.config.event_hook_header.clone(),
                    value: Some(secret.expose_secret().to_owned()),
                }),
            },
        },
        created: None,
        last_updated: None,
    };
    let hooks = o
        .client
        .list_event_hooks()
        .await
        .map_err(|e| format!("listing event hooks: {e}"))?;
    let mut ours = hooks
        .iter()
        .filter(|h| &h.channel.config.uri == url)
        .filter_map(|h| h.id.clone().map(|id| (id, h.status.clone())));
    let id = match ours.next() {
        Some((id, status)) => {
            o.client
                .replace_event_hook(&id, &hook)
                .await
                .map_err(|e| format!("replacing event hook {id}: {e}"))?;
            if status.as_deref() != Some("ACTIVE") {
                o.client
                    .activate_event_hook(&id)
                    .await
                    .map_err(|e| format!("activating event hook {id}: {e}"))?;
            }
            id
        }
        None => o
            .client
            .create_event_hook(&hook)
            .await
            .map_err(|e| format!("creating the event hook: {e}"))?
            .id
            .unwrap_or_default(),
    };
    for (extra, _) in ours {
        o.client
            .delete_event_hook(&extra)
            .await
            .map_err(|e| format!("removing the extra event hook {extra}: {e}"))?;
    }
    o.client
        .verify_event_hook(&id)
        .await
        .map_err(|e| format!("verifying event hook {id}: {e}"))?;
    Ok(id)
}
