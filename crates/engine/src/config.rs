//! Configuration: a TOML file plus environment variables with the guide's names.
//!
//! Every key has one name: lowercase in the TOML file (`ye_api_base_url = "..."`),
//! uppercase as an environment variable (`YE_API_BASE_URL`), which wins over the file.
//! Unknown keys in the file are refused, and every invalid value fails at start with a
//! message naming the key.

use crate::secrets::MasterKey;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;

pub mod console;

/// Every key the connector reads.
pub const KEYS: &[&str] = &[
    "listen_addr",
    "database_url",
    "master_key",
    "master_key_file",
    "master_key_old",
    "master_key_old_file",
    "log_format",
    "max_body_bytes",
    "ye_api_base_url",
    "yed_api_token",
    "ye_jwks_transport_endpoint",
    "ye_jwks_sign_endpoint",
    "azure_tenant_id",
    "entra_fido_api_client_id",
    "entra_fido_api_client_secret",
    "entra_fido_api_client_certificate_file",
    "entra_fido_api_client_key_file",
    "entra_fido_api_version",
    "entra_fido_api_challenge_timeout_minutes",
    "entra_authority_url",
    "graph_api_base_url",
    "auth_issuer",
    "auth_issuer_v1",
    "auth_required_role",
    "auth_jwks_url",
    "allowed_audiences",
    "allowed_client_apps",
    "cron_process_shipment_schedule",
    "cron_data_cleanup_schedule",
    "cron_data_cleanup_completed_days",
    "email_api_send_endpoint",
    "send_pin_url",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "smtp_password",
    "smtp_from",
    "tls_cert_file",
    "tls_key_file",
    "pin_retention_days",
    "retention_days",
    "fulfiller_keys_per_shipment",
    "smtp_ca_file",
    "processing_workers",
    "retry_base_seconds",
    "retry_max_seconds",
    "max_attempts",
    "job_lease_seconds",
    "vendor_concurrency",
    "trusted_proxies",
];

/// Sections of the file (TOML tables) owned by a module; their environment variables
/// are `<SECTION>_<KEY>`, e.g. `OKTA_ORG_URL` for `[okta] org_url`.
pub const SECTIONS: &[&str] = &["okta", "console", "entra"];

/// The keys a section reads (its module's list).
fn section_keys(section: &str) -> &'static [&'static str] {
    match section {
        "okta" => crate::okta::KEYS,
        "console" => console::KEYS,
        "entra" => crate::entra_groups::KEYS,
        _ => &[],
    }
}

/// The environment variable names of a section's keys, e.g. `OKTA_ORG_URL`. Only these
/// are read: other variables that happen to share the prefix (the Okta SDKs'
/// `OKTA_CLIENT_TOKEN`, say) neither turn a section on nor reach its parser.
fn section_env_names(section: &str) -> impl Iterator<Item = String> + '_ {
    section_keys(section)
        .iter()
        .map(move |k| format!("{section}_{k}").to_ascii_uppercase())
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration key {key} (env {env}): {problem}")]
pub struct ConfigError {
    /// The key, lowercase.
    pub key: String,
    /// Its environment variable name.
    pub env: String,
    /// What is wrong and what to do.
    pub problem: String,
}

fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        env: key.to_ascii_uppercase(),
        problem: problem.into(),
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Graph API version.
pub use graph::ApiVersion;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP upgraded with STARTTLS (port 587).
    StartTls,
    /// Implicit TLS (port 465).
    Tls,
    /// No TLS: allowed only to a loopback host.
    Plain,
}

/// SMTP delivery of PINs.
#[derive(Debug, Clone)]
pub struct Smtp {
    /// Server host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport security.
    pub security: SmtpSecurity,
    /// Optional login.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<SecretString>,
    /// The sender address.
    pub from: String,
    /// Extra CA certificates (PEM) to trust for the SMTP server, for private CAs.
    pub ca_pem: Option<Vec<u8>>,
}

/// Yubico's connector's default processing schedule: at the top of every hour.
pub const DEFAULT_PROCESS_SCHEDULE: &str = "0 0 * * * *";
/// Yubico's connector's default cleanup schedule: at half past every hour.
pub const DEFAULT_CLEANUP_SCHEDULE: &str = "0 30 * * * *";

/// The parsed configuration. `Debug` never prints secrets.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the API listens (port 0 picks one).
    pub listen_addr: SocketAddr,
    /// `sqlite://path` (default `sqlite://prereg-connector.db`) or `postgres://...`.
    pub database_url: String,
    /// Encrypts secrets at rest.
    pub master_key: MasterKey,
    /// Text or JSON logs.
    pub log_format: LogFormat,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Fulfiller API base, e.g. `https://api.console.yubico.com/v1`.
    pub ye_api_base_url: String,
    /// Fulfiller API token.
    pub yed_api_token: SecretString,
    /// Fulfiller transport keys JWKS URL.
    pub ye_jwks_transport_endpoint: String,
    /// Fulfiller signing keys JWKS URL.
    pub ye_jwks_sign_endpoint: String,
    /// Entra tenant id.
    pub azure_tenant_id: String,
    /// The connector app's client id.
    pub entra_fido_api_client_id: String,
    /// The connector app's client secret.
    pub entra_fido_api_client_secret: SecretString,
    /// A certificate registered on the connector's app, with its private key, used
    /// instead of the secret (`entra_fido_api_client_certificate_file` and
    /// `entra_fido_api_client_key_file`, PEM).
    pub entra_fido_api_client_certificate: Option<graph::ClientCredential>,
    /// Graph version for fido2Methods (beta by default).
    pub entra_fido_api_version: ApiVersion,
    /// `challengeTimeoutInMinutes`, 5..=43200.
    pub entra_fido_api_challenge_timeout_minutes: u32,
    /// Token service host.
    pub entra_authority_url: String,
    /// Graph host.
    pub graph_api_base_url: String,
    /// Expected `iss` of API callers' v2.0 tokens.
    pub auth_issuer: String,
    /// Expected `iss` of API callers' v1.0 tokens (an API app registered as the guide
    /// says, with no manifest change, gets v1.0 tokens); empty refuses v1.0 tokens.
    pub auth_issuer_v1: String,
    /// The app role (app-only `roles`) or scope (delegated `scp`) a caller's token must
    /// carry; empty checks none.
    pub auth_required_role: String,
    /// JWKS for API callers' tokens.
    pub auth_jwks_url: String,
    /// Accepted `aud` values.
    pub allowed_audiences: Vec<String>,
    /// Accepted `azp`/`appid` values.
    pub allowed_client_apps: Vec<String>,
    /// 6-field cron (seconds first) for processing.
    pub cron_process_shipment_schedule: String,
    /// 6-field cron for cleanup.
    pub cron_data_cleanup_schedule: String,
    /// Days a completed request is kept.
    pub cron_data_cleanup_completed_days: u32,
    /// HTTP webhook that receives PINs (the guide's `SEND_PIN_URL`), if any.
    pub send_pin_url: Option<String>,
    /// SMTP delivery of PINs (preferred over the webhook when both are set).
    pub smtp: Option<Smtp>,
    /// Serve HTTPS from these files instead of plain HTTP.
    pub tls: Option<Tls>,
    /// Days a delivered PIN stays sealed for resends (0: destroyed right after delivery).
    pub pin_retention_days: u32,
    /// Days after which a complete or deleted request loses its personal data (names,
    /// addresses, phones, e-mails); 0 keeps it forever ([`crate::retention`]).
    pub retention_days: u32,
    /// Keys the fulfiller ships in one FIDO Pre-reg shipment (Yubico's published API: 1,
    /// the default): a credential request's keys with only an Entra credential share
    /// shipments of up to this many ([`crate::credreq`]).
    pub fulfiller_keys_per_shipment: u32,
    /// How the runner processes jobs.
    pub processing: Processing,
    /// Okta mode (`[okta]`), off when absent.
    pub okta: Option<crate::okta::OktaConfig>,
    /// The admin console (`[console]`), off when absent.
    pub console: Option<console::ConsoleConfig>,
    /// Entra mode's group trigger (`[entra]`), off when absent.
    pub entra: Option<crate::entra_groups::EntraGroupsConfig>,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed (`trusted_proxies`, default none: the headers are
    /// ignored).
    pub trusted_proxies: Vec<IpNet>,
}

/// Whether `host` (a URL's host, an SMTP host) is this machine: `localhost`, an address
/// in 127.0.0.0/8 or `::1` (bracketed or not, or IPv4-mapped). Only such hosts may be
/// reached without TLS.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_end_matches('.');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    match h.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// Checks a URL that carries tokens, secrets or PINs, or whose answers are trusted (keys,
/// users, tokens): every URL of the configuration. It must be `https://`; plain
/// `http://` would hand those to anyone on the path, so it is allowed only to a loopback
/// host (the sandboxes, the demo, the tests). The error says why and what to do.
pub fn secure_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if parsed.host_str().is_some_and(is_loopback_host) => Ok(parsed),
        "http" => Err(format!(
            "{url:?} uses plain http://, which is refused here: this URL carries tokens, secrets or PINs, or its answers are trusted; use https:// (plain http:// is allowed only to a loopback host: 127.0.0.0/8, ::1, localhost)"
        )),
        other => Err(format!("{url:?}: must be an https URL, not {other}:")),
    }
}

/// An IP network from `trusted_proxies`: `10.0.0.0/8`, `fd00::/8`, or a bare address
/// (`192.0.2.10`, a /32; `::1`, a /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as its IPv4
    /// address, as a dual-stack socket reports IPv4 peers).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The runner's settings (top-level keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processing {
    /// Jobs run at once (`processing_workers`, default 64: the work waits on vendors,
    /// not on the CPU; a job makes two vendor calls in series at most per step, so 64
    /// keep each service's gate of 32 busy).
    pub workers: usize,
    /// The first retry's backoff after a transient failure (`retry_base_seconds`,
    /// default 30); it doubles with each further failure.
    pub retry_base_seconds: u64,
    /// The longest backoff (`retry_max_seconds`, default 3600).
    pub retry_max_seconds: u64,
    /// Consecutive transient failures after which a request goes to `error` naming the
    /// last one (`max_attempts`, default 20).
    pub max_attempts: u32,
    /// How long a job is leased to the run (or API call) processing it
    /// (`job_lease_seconds`, default 60); renewed every third of it while it runs, and
    /// how long a crashed holder's job waits before another run takes it over.
    pub lease_seconds: u64,
    /// Calls in flight to one vendor service at most (`vendor_concurrency`, default
    /// 32): each of the fulfiller, Graph and Okta has a gate of its own, which also
    /// holds every caller back while a `Retry-After` that service gave runs. Okta allows
    /// an org 75 concurrent API calls (35 on its free Integrator plan), shared with the
    /// org's other clients.
    pub vendor_concurrency: usize,
}

impl Processing {
    /// The lease, as a duration.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lease_seconds)
    }
}

impl Default for Processing {
    fn default() -> Self {
        Self {
            workers: 64,
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
            max_attempts: 20,
            lease_seconds: crate::runner::LEASE.as_secs(),
            vendor_concurrency: 32,
        }
    }
}

fn processing(raw: &Section) -> Result<Processing, ConfigError> {
    let d = Processing::default();
    let p = Processing {
        workers: raw.parsed("processing_workers", d.workers)?,
        retry_base_seconds: raw.parsed("retry_base_seconds", d.retry_base_seconds)?,
        retry_max_seconds: raw.parsed("retry_max_seconds", d.retry_max_seconds)?,
        max_attempts: raw.parsed("max_attempts", d.max_attempts)?,
        lease_seconds: raw.parsed("job_lease_seconds", d.lease_seconds)?,
        vendor_concurrency: raw.parsed("vendor_concurrency", d.vendor_concurrency)?,
    };
    if !(1..=1024).contains(&p.vendor_concurrency) {
        return Err(err("vendor_concurrency", "must be between 1 and 1024"));
    }
    if !(3..=3600).contains(&p.lease_seconds) {
        return Err(err("job_lease_seconds", "must be between 3 and 3600"));
    }
    if !(1..=1024).contains(&p.workers) {
        return Err(err("processing_workers", "must be between 1 and 1024"));
    }
    if !(1..=86400).contains(&p.retry_base_seconds) {
        return Err(err("retry_base_seconds", "must be between 1 and 86400"));
    }
    if !(p.retry_base_seconds..=7 * 86400).contains(&p.retry_max_seconds) {
        return Err(err(
            "retry_max_seconds",
            "must be at least retry_base_seconds and at most 604800 (7 days)",
        ));
    }
    if !(1..=10_000).contains(&p.max_attempts) {
        return Err(err("max_attempts", "must be between 1 and 10000"));
    }
    Ok(p)
}

/// The listener's certificate and key (PEM files).
#[derive(Debug, Clone)]
pub struct Tls {
    /// Certificate chain, PEM.
    pub cert_file: std::path::PathBuf,
    /// Private key, PEM.
    pub key_file: std::path::PathBuf,
}

/// Raw values of one part of the configuration: a TOML table (the top level or a
/// section such as `[okta]`) and the environment. Modules parse their section with it.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// `""` for the top level, else the section's name.
    prefix: String,
    file: toml::Table,
    env: BTreeMap<String, String>,
}

impl Section {
    /// The environment variable name of `key`.
    pub fn env_name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_ascii_uppercase()
        } else {
            format!("{}_{}", self.prefix, key).to_ascii_uppercase()
        }
    }

    /// An error naming `key` (as `section.key` and its environment variable).
    pub fn err(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            key: if self.prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.prefix)
            },
            env: self.env_name(key),
            problem: problem.into(),
        }
    }

    /// The section's TOML table as written in the file (for nested values such as
    /// per-group mappings).
    pub fn table(&self) -> &toml::Table {
        &self.file
    }

    /// Refuses keys of the file's table that are not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), ConfigError> {
        for key in self.file.keys() {
            if !known.contains(&key.as_str()) {
                return Err(self.err(key, "unknown key"));
            }
        }
        Ok(())
    }

    /// A value as a string (environment first, then the file); lists come back as a
    /// JSON array.
    pub fn get(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let err = |key: &str, p: &str| self.err(key, p);
        if let Some(v) = self.env.get(&self.env_name(key)) {
            return Ok(Some(v.clone()));
        }
        match self.file.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(toml::Value::Integer(i)) => Ok(Some(i.to_string())),
            Some(toml::Value::Array(a)) => {
                let mut out = Vec::new();
                for v in a {
                    match v {
                        toml::Value::String(s) => out.push(s.clone()),
                        _ => return Err(err(key, "list items must be strings")),
                    }
                }
                Ok(Some(serde_json::Value::from(out).to_string()))
            }
            Some(toml::Value::Boolean(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(err(
                key,
                "must be a string, integer, boolean or list of strings",
            )),
        }
    }

    /// A required, non-empty value.
    pub fn required(&self, key: &str) -> Result<String, ConfigError> {
        match self.get(key)? {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(self.err(key, "is required")),
        }
    }

    /// A value or its default.
    pub fn or(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        Ok(self.get(key)?.unwrap_or_else(|| default.to_owned()))
    }

    /// A value parsed with `FromStr`, or its default.
    pub fn parsed<T: FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        match self.get(key)? {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| self.err(key, format!("{v:?} is not a valid value"))),
        }
    }

    /// An https URL (plain http only to a loopback host) without a trailing slash;
    /// required when `default` is `None`.
    pub fn url(&self, key: &str, default: Option<&str>) -> Result<String, ConfigError> {
        let v = match default {
            Some(d) => self.or(key, d)?,
            None => self.required(key)?,
        };
        secure_url(&v).map_err(|p| self.err(key, p))?;
        Ok(v.trim_end_matches('/').to_owned())
    }

    /// A boolean (`true`/`false`, also `on`/`off`, `yes`/`no`, `1`/`0`) or its default.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key)? {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "on" | "yes" | "1" => Ok(true),
                "false" | "off" | "no" | "0" => Ok(false),
                _ => Err(self.err(key, format!("{v:?} is not on/off (true or false)"))),
            },
        }
    }

    /// An optional list (possibly empty): a TOML array, a JSON array or comma-separated.
    pub fn optional_list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.get(key)? {
            Some(v) if !v.trim().is_empty() && v.trim() != "[]" => self.list(key),
            _ => Ok(Vec::new()),
        }
    }

    /// A required list: a TOML array, a JSON array or comma-separated.
    pub fn list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let v = self.required(key)?;
        let t = v.trim();
        let items: Vec<String> = if t.starts_with('[') {
            serde_json::from_str(t)
                .map_err(|_| self.err(key, "must be a JSON array of strings, e.g. [\"a\",\"b\"]"))?
        } else {
            t.split(',').map(|s| s.trim().to_owned()).collect()
        };
        let items: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
        if items.is_empty() {
            return Err(self.err(key, "needs at least one value"));
        }
        Ok(items)
    }

    /// A 6-field cron expression or its default.
    pub fn cron(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        let v = self.or(key, default)?;
        parse_cron(&v).map_err(|p| self.err(key, p))?;
        Ok(v)
    }
}

/// Parses a 6-field cron expression (seconds first).
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "{expr:?} has {fields} fields; expected 6 (seconds minutes hours day month weekday)"
        ));
    }
    cron::Schedule::from_str(expr).map_err(|e| format!("{expr:?} is not a valid cron: {e}"))
}

impl Config {
    /// Reads `path` (if given) and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| err("config", format!("cannot read {}: {e}", p.display())))?,
            None => String::new(),
        };
        let mut env: BTreeMap<String, String> = KEYS
            .iter()
            .filter_map(|k| {
                let name = k.to_ascii_uppercase();
                std::env::var(&name).ok().map(|v| (name, v))
            })
            .collect();
        for name in SECTIONS.iter().flat_map(|s| section_env_names(s)) {
            if let Ok(v) = std::env::var(&name) {
                env.insert(name, v);
            }
        }
        Self::from_parts(&text, env)
    }

    /// Parses TOML text and explicit environment values (tests use this directly).
    pub fn from_parts(toml_text: &str, env: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let file: toml::Table = toml_text.parse().map_err(|e: toml::de::Error| {
            err("config", format!("not valid TOML: {}", e.message()))
        })?;
        for key in file.keys() {
            if SECTIONS.contains(&key.as_str()) {
                if !file.get(key).is_some_and(toml::Value::is_table) {
                    return Err(err(key, "must be a table, e.g. [okta]"));
                }
                continue;
            }
            if !KEYS.contains(&key.as_str()) {
                return Err(err(
                    key,
                    "unknown key (keys are lowercase, e.g. ye_api_base_url)",
                ));
            }
        }
        let section = |name: &str| -> Option<Section> {
            let has_env = section_env_names(name).any(|k| env.contains_key(&k));
            match file.get(name) {
                Some(toml::Value::Table(t)) => Some(t.clone()),
                _ if has_env => Some(toml::Table::new()),
                _ => None,
            }
            .map(|t| Section {
                prefix: name.to_owned(),
                file: t,
                env: env.clone(),
            })
        };
        let okta = section("okta")
            .map(|s| crate::okta::OktaConfig::parse(&s))
            .transpose()?;
        let console = section("console")
            .map(|s| console::ConsoleConfig::parse(&s))
            .transpose()?;
        let entra = section("entra")
            .map(|s| crate::entra_groups::EntraGroupsConfig::parse(&s))
            .transpose()?;
        let raw = Section {
            prefix: String::new(),
            file,
            env,
        };
        let tls = match (raw.get("tls_cert_file")?, raw.get("tls_key_file")?) {
            (Some(c), Some(k)) => Some(Tls {
                cert_file: c.into(),
                key_file: k.into(),
            }),
            (None, None) => None,
            (Some(_), None) => return Err(err("tls_key_file", "is required with tls_cert_file")),
            (None, Some(_)) => return Err(err("tls_cert_file", "is required with tls_key_file")),
        };

        let entra_certificate = match (
            raw.get("entra_fido_api_client_certificate_file")?,
            raw.get("entra_fido_api_client_key_file")?,
        ) {
            (Some(c), Some(k)) => {
                let read = |key: &str, path: &str| {
                    std::fs::read_to_string(path)
                        .map_err(|e| err(key, format!("cannot read {path}: {e}")))
                };
                let cert = read("entra_fido_api_client_certificate_file", &c)?;
                let key = SecretString::from(read("entra_fido_api_client_key_file", &k)?);
                // The parser's error never carries key material.
                Some(
                    graph::ClientCredential::certificate(&cert, &key).map_err(|e| {
                        err(
                            "entra_fido_api_client_key_file",
                            format!("{k} with {c} is not a usable certificate credential: {e}"),
                        )
                    })?,
                )
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(err(
                    "entra_fido_api_client_key_file",
                    "is required with entra_fido_api_client_certificate_file",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "entra_fido_api_client_certificate_file",
                    "is required with entra_fido_api_client_key_file",
                ));
            }
        };
        let listen_addr = raw.parsed("listen_addr", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        let database_url = raw.or("database_url", "sqlite://prereg-connector.db")?;
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(err(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        let master_key = match (raw.get("master_key")?, raw.get("master_key_file")?) {
            (Some(k), _) => {
                MasterKey::from_base64(&k).map_err(|e| err("master_key", e.to_string()))?
            }
            (None, Some(f)) => MasterKey::from_file(Path::new(&f))
                .map_err(|e| err("master_key_file", e.to_string()))?,
            (None, None) => {
                return Err(err(
                    "master_key_file",
                    "is required (or master_key): 32 random bytes, base64; keep it out of the database's backups",
                ));
            }
        };
        // Old keys open what they sealed until `prereg secrets rotate` re-sealed it.
        let master_key = match raw.get("master_key_old")? {
            Some(_) => master_key
                .with_old(&raw.list("master_key_old")?.join(","))
                .map_err(|e| err("master_key_old", e.to_string()))?,
            None => master_key,
        };
        let master_key = match raw.get("master_key_old_file")? {
            Some(f) => master_key
                .with_old_file(Path::new(&f))
                .map_err(|e| err("master_key_old_file", e.to_string()))?,
            None => master_key,
        };
        let log_format = match raw.or("log_format", "text")?.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(err("log_format", format!("{other:?}: use text or json"))),
        };
        let max_body_bytes = raw.parsed("max_body_bytes", 64 * 1024usize)?;
        if !(1024..=10 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(err("max_body_bytes", "must be between 1024 and 10485760"));
        }
        let azure_tenant_id = raw.required("azure_tenant_id")?;
        let entra_authority_url =
            raw.url("entra_authority_url", Some(graph::DEFAULT_AUTHORITY_URL))?;
        let version = match raw.or("entra_fido_api_version", "beta")?.as_str() {
            "beta" => ApiVersion::Beta,
            "v1.0" => ApiVersion::V1,
            other => {
                return Err(err(
                    "entra_fido_api_version",
                    format!("{other:?}: use beta or v1.0"),
                ));
            }
        };
        let timeout = raw.parsed("entra_fido_api_challenge_timeout_minutes", 20160u32)?;
        if !(5..=43200).contains(&timeout) {
            return Err(err(
                "entra_fido_api_challenge_timeout_minutes",
                "must be between 5 and 43200",
            ));
        }
        let pin_retention_days = raw.parsed("pin_retention_days", 14u32)?;
        if pin_retention_days > 3650 {
            return Err(err(
                "pin_retention_days",
                "must be between 0 (destroy right after delivery) and 3650",
            ));
        }
        let retention_days = raw.parsed("retention_days", 0u32)?;
        if retention_days > 36500 {
            return Err(err(
                "retention_days",
                "must be between 0 (keep personal data forever) and 36500",
            ));
        }
        let fulfiller_keys_per_shipment = raw.parsed("fulfiller_keys_per_shipment", 1u32)?;
        if !(1..=4).contains(&fulfiller_keys_per_shipment) {
            return Err(err(
                "fulfiller_keys_per_shipment",
                "must be between 1 (one key per shipment, Yubico's published API) and 4",
            ));
        }
        let default_issuer = format!("{entra_authority_url}/{azure_tenant_id}/v2.0");
        let default_jwks = format!("{entra_authority_url}/{azure_tenant_id}/discovery/v2.0/keys");
        Ok(Self {
            listen_addr,
            database_url,
            master_key,
            log_format,
            max_body_bytes,
            ye_api_base_url: raw.url("ye_api_base_url", None)?,
            yed_api_token: SecretString::from(raw.required("yed_api_token")?),
            ye_jwks_transport_endpoint: raw.url("ye_jwks_transport_endpoint", None)?,
            ye_jwks_sign_endpoint: raw.url("ye_jwks_sign_endpoint", None)?,
            entra_fido_api_client_id: raw.required("entra_fido_api_client_id")?,
            // With a certificate the secret may be left out.
            entra_fido_api_client_secret: SecretString::from(match &entra_certificate {
                Some(_) => raw.or("entra_fido_api_client_secret", "")?,
                None => raw.required("entra_fido_api_client_secret")?,
            }),
            entra_fido_api_client_certificate: entra_certificate,
            entra_fido_api_version: version,
            entra_fido_api_challenge_timeout_minutes: timeout,
            graph_api_base_url: raw.url("graph_api_base_url", Some(graph::DEFAULT_GRAPH_URL))?,
            auth_issuer: raw.or("auth_issuer", &default_issuer)?,
            auth_issuer_v1: raw.or(
                "auth_issuer_v1",
                &format!("https://sts.windows.net/{azure_tenant_id}/"),
            )?,
            auth_required_role: raw
                .or("auth_required_role", "create_request")?
                .trim()
                .to_owned(),
            auth_jwks_url: raw.url("auth_jwks_url", Some(&default_jwks))?,
            allowed_audiences: raw.list("allowed_audiences")?,
            allowed_client_apps: raw.list("allowed_client_apps")?,
            cron_process_shipment_schedule: raw
                .cron("cron_process_shipment_schedule", DEFAULT_PROCESS_SCHEDULE)?,
            cron_data_cleanup_schedule: raw
                .cron("cron_data_cleanup_schedule", DEFAULT_CLEANUP_SCHEDULE)?,
            cron_data_cleanup_completed_days: raw
                .parsed("cron_data_cleanup_completed_days", 0u32)?,
            send_pin_url: match raw
                .get("send_pin_url")?
                .or(raw.get("email_api_send_endpoint")?)
            {
                Some(_) => Some(match raw.get("send_pin_url")? {
                    Some(_) => raw.url("send_pin_url", None)?,
                    None => raw.url("email_api_send_endpoint", None)?,
                }),
                None => None,
            },
            smtp: smtp(&raw)?,
            tls,
            pin_retention_days,
            retention_days,
            fulfiller_keys_per_shipment,
            processing: processing(&raw)?,
            trusted_proxies: raw
                .optional_list("trusted_proxies")?
                .iter()
                .map(|p| p.parse().map_err(|e: String| err("trusted_proxies", e)))
                .collect::<Result<_, _>>()?,
            okta,
            console,
            entra,
            azure_tenant_id,
            entra_authority_url,
        })
    }
}

fn smtp(raw: &Section) -> Result<Option<Smtp>, ConfigError> {
    let Some(host) = raw.get("smtp_host")?.filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    let security = match raw.or("smtp_security", "starttls")?.as_str() {
        "starttls" => SmtpSecurity::StartTls,
        "tls" => SmtpSecurity::Tls,
        "plain" => SmtpSecurity::Plain,
        other => {
            return Err(err(
                "smtp_security",
                format!("{other:?}: use starttls, tls or plain"),
            ));
        }
    };
    if security == SmtpSecurity::Plain && !is_loopback_host(&host) {
        return Err(err(
            "smtp_security",
            "plain (no TLS) is allowed only to a loopback host; use starttls or tls",
        ));
    }
    let default_port = match security {
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Tls => 465,
        SmtpSecurity::Plain => 25,
    };
    let from = raw.required("smtp_from")?;
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(err(
            "smtp_from",
            format!("{from:?} is not an e-mail address"),
        ));
    }
    let ca_pem = match raw.get("smtp_ca_file")? {
        Some(f) => {
            let pem = std::fs::read(&f)
                .map_err(|e| err("smtp_ca_file", format!("cannot read {f}: {e}")))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----")
                || lettre::transport::smtp::client::Certificate::from_pem(&pem).is_err()
            {
                return Err(err("smtp_ca_file", format!("{f} holds no PEM certificate")));
            }
            Some(pem)
        }
        None => None,
    };
    Ok(Some(Smtp {
        host,
        port: raw.parsed("smtp_port", default_port)?,
        security,
        username: raw.get("smtp_username")?,
        password: raw.get("smtp_password")?.map(SecretString::from),
        from,
        ca_pem,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_days_defaults_to_keeping_personal_data_forever() {
        let c = Config::from_parts(&minimal(), BTreeMap::new()).unwrap();
        assert_eq!(c.retention_days, 0);
        let c = Config::from_parts(
            &format!("retention_days = 90\n{}", minimal()),
            BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c.retention_days, 90);
        let e = Config::from_parts(
            &format!("retention_days = 99999\n{}", minimal()),
            BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(e.key, "retention_days");
    }

    #[test]
    fn old_master_keys_open_and_the_current_one_seals() {
        use crate::secrets::Purpose;
        let old = MasterKey::generate().unwrap();
        let sealed = old.seal("r1", Purpose::Pin, b"1234").unwrap();
        let text = format!(
            "master_key_old = [\"{}\"]\n{}",
            old.to_base64().as_str(),
            minimal()
        );
        let c = Config::from_parts(&text, BTreeMap::new()).unwrap();
        assert_eq!(c.master_key.old_key_ids(), [old.key_id()]);
        assert_eq!(
            c.master_key
                .open("r1", Purpose::Pin, &sealed)
                .unwrap()
                .as_slice(),
            b"1234"
        );
        let e = Config::from_parts(
            &format!("master_key_old = \"nope\"\n{}", minimal()),
            BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(e.key, "master_key_old");
    }

    fn minimal() -> String {
        let key = MasterKey::generate().unwrap().to_base64();
        format!(
            r#"
master_key = "{}"
ye_api_base_url = "http://127.0.0.1:9/v1"
yed_api_token = "tok"
ye_jwks_transport_endpoint = "http://127.0.0.1:9/.well-known/yubico-transport-keys.jwks"
ye_jwks_sign_endpoint = "http://127.0.0.1:9/.well-known/yubico-sign.jwks"
azure_tenant_id = "t1"
entra_fido_api_client_id = "c1"
entra_fido_api_client_secret = "s1"
allowed_audiences = ["api://fido-connector-api.contoso"]
allowed_client_apps = ["app1"]
"#,
            key.as_str()
        )
    }

    #[test]
    fn only_a_sections_own_variables_turn_it_on() {
        // The Okta SDKs' variables share the prefix but are not ours.
        let env = BTreeMap::from([
            ("OKTA_CLIENT_TOKEN".to_owned(), "x".to_owned()),
            (
                "OKTA_CLIENT_ORGURL".to_owned(),
                "https://x.okta.com".to_owned(),
            ),
            ("CONSOLE_COLOR".to_owned(), "1".to_owned()),
        ]);
        let c = Config::from_parts(&minimal(), env).unwrap();
        assert!(c.okta.is_none() && c.console.is_none());
        // One of ours turns Okta mode on, and what it still lacks is named.
        let env = BTreeMap::from([(
            "OKTA_ORG_URL".to_owned(),
            "https://contoso.okta.com".to_owned(),
        )]);
        match Config::from_parts(&minimal(), env) {
            Ok(c) => assert!(c.okta.is_some()),
            Err(e) => assert!(e.key.starts_with("okta."), "{e}"),
        }
    }

    #[test]
    fn defaults_follow_the_guide() {
        let c = Config::from_parts(&minimal(), BTreeMap::new()).unwrap();
        assert_eq!(c.entra_fido_api_version, ApiVersion::Beta);
        assert_eq!(c.entra_fido_api_challenge_timeout_minutes, 20160);
        assert_eq!(c.auth_issuer, "https://login.microsoftonline.com/t1/v2.0");
        assert_eq!(c.auth_issuer_v1, "https://sts.windows.net/t1/");
        assert_eq!(c.auth_required_role, "create_request");
        // Yubico's connector's schedules, and 0 (never) for the completed requests'
        // cleanup.
        assert_eq!(c.cron_process_shipment_schedule, "0 0 * * * *");
        assert_eq!(c.cron_data_cleanup_schedule, "0 30 * * * *");
        assert_eq!(c.cron_data_cleanup_completed_days, 0);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("\"tok\"") && !dbg.contains("\"s1\""), "{dbg}");
    }

    #[test]
    fn environment_overrides_the_file_with_the_guides_names() {
        let env = BTreeMap::from([
            ("ENTRA_FIDO_API_VERSION".to_owned(), "v1.0".to_owned()),
            ("ALLOWED_CLIENT_APPS".to_owned(), "[\"x\",\"y\"]".to_owned()),
        ]);
        let c = Config::from_parts(&minimal(), env).unwrap();
        assert_eq!(c.entra_fido_api_version, ApiVersion::V1);
        assert_eq!(c.allowed_client_apps, ["x", "y"]);
    }

    #[test]
    fn invalid_values_name_their_key() {
        for (key, value) in [
            ("CRON_PROCESS_SHIPMENT_SCHEDULE", "*/5 * * * *"),
            ("ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES", "2"),
            ("YE_API_BASE_URL", "not a url"),
            ("ENTRA_FIDO_API_VERSION", "v2"),
            ("MASTER_KEY", "short"),
            ("ALLOWED_AUDIENCES", "[]"),
        ] {
            let env = BTreeMap::from([(key.to_owned(), value.to_owned())]);
            let e = Config::from_parts(&minimal(), env).unwrap_err();
            assert_eq!(e.env, key, "{e}");
        }
        let e = Config::from_parts(&format!("{}\nbogus = 1\n", minimal()), BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.key, "bogus");
        let e = Config::from_parts("", BTreeMap::new()).unwrap_err();
        assert_eq!(e.key, "master_key_file");
        let smtp = |pairs: &[(&str, &str)]| {
            let env = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Config::from_parts(&minimal(), env)
        };
        let e = smtp(&[
            ("SMTP_HOST", "mail.example.com"),
            ("SMTP_SECURITY", "plain"),
            ("SMTP_FROM", "a@b.c"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "smtp_security", "plain SMTP only to loopback");
        let e = smtp(&[("SMTP_HOST", "mail.example.com")]).unwrap_err();
        assert_eq!(e.key, "smtp_from");
        let c = smtp(&[
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_SECURITY", "plain"),
            ("SMTP_FROM", "pins@contoso.com"),
            ("SMTP_PASSWORD", "hunter2"),
        ])
        .unwrap();
        assert_eq!(c.smtp.as_ref().unwrap().port, 25);
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    fn with_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_parts(&minimal(), env)
    }

    #[test]
    fn plain_http_is_refused_for_every_url_except_to_loopback() {
        // Each URL key, alone or with what its section needs besides.
        let okta = [("OKTA_API_TOKEN", "t"), ("OKTA_EVENT_HOOK_SECRET", "s")];
        let console = [
            ("CONSOLE_OIDC_CLIENT_ID", "c"),
            ("CONSOLE_OIDC_CLIENT_SECRET", "s"),
            ("CONSOLE_OIDC_ALLOWED_USERS", "oid-1"),
        ];
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("YE_API_BASE_URL", vec![]),
            ("YE_JWKS_TRANSPORT_ENDPOINT", vec![]),
            ("YE_JWKS_SIGN_ENDPOINT", vec![]),
            ("ENTRA_AUTHORITY_URL", vec![]),
            ("GRAPH_API_BASE_URL", vec![]),
            ("AUTH_JWKS_URL", vec![]),
            ("SEND_PIN_URL", vec![]),
            ("EMAIL_API_SEND_ENDPOINT", vec![]),
            ("OKTA_ORG_URL", okta.to_vec()),
            (
                "OKTA_EVENT_HOOK_URL",
                [
                    okta.as_slice(),
                    &[("OKTA_ORG_URL", "https://contoso.okta.com")],
                ]
                .concat(),
            ),
            ("CONSOLE_OIDC_ISSUER", console.to_vec()),
            (
                "CONSOLE_OIDC_REDIRECT_URL",
                [
                    console.as_slice(),
                    &[("CONSOLE_OIDC_ISSUER", "https://login.example.com/t/v2.0")],
                ]
                .concat(),
            ),
        ];
        for (key, others) in &cases {
            let with = |url: &str| {
                let mut pairs = others.clone();
                pairs.push((key, url));
                with_env(&pairs)
            };
            let e = with("http://login.example.com/x").unwrap_err();
            assert_eq!(e.env, *key, "{e}");
            assert!(
                e.problem.contains("plain http://") && e.problem.contains("use https://"),
                "{e}"
            );
            assert!(
                e.to_string().contains(&format!("(env {key})")),
                "the message names the variable: {e}"
            );
            // A name that merely starts like loopback is not loopback.
            assert!(with("http://127.0.0.1.example.com/x").is_err(), "{key}");
            for ok in [
                "https://login.example.com/x",
                "http://127.0.0.1:9/x",
                "http://127.3.2.1/x",
                "http://localhost:9/x",
                "http://[::1]:9/x",
            ] {
                if let Err(e) = with(ok) {
                    panic!("{key}={ok} must be accepted: {e}");
                }
            }
        }
        // The auth JWKS default follows the authority: http to a remote authority is
        // refused at the authority itself.
        let e = with_env(&[("ENTRA_AUTHORITY_URL", "http://sts.example.com")]).unwrap_err();
        assert_eq!(e.key, "entra_authority_url");
        // Other schemes are refused too.
        let e = with_env(&[("SEND_PIN_URL", "ftp://127.0.0.1/pins")]).unwrap_err();
        assert_eq!(e.key, "send_pin_url");
    }

    #[test]
    fn loopback_hosts_are_localhost_127_slash_8_and_ipv6_one() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1",
            "128.0.0.1",
            "::2",
            "localhost.example.com",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks_and_default_to_none() {
        let c = with_env(&[]).unwrap();
        assert!(c.trusted_proxies.is_empty());
        let c = with_env(&[("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7, fd00::/8")]).unwrap();
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let trusted = |s: &str| c.trusted_proxies.iter().any(|n| n.contains(ip(s)));
        assert!(trusted("10.200.3.4") && trusted("192.0.2.7") && trusted("fd12::1"));
        assert!(trusted("::ffff:10.0.0.1"), "IPv4 on a dual-stack socket");
        assert!(!trusted("192.0.2.8") && !trusted("11.0.0.1") && !trusted("fe80::1"));
        let c = Config::from_parts(
            &format!("{}trusted_proxies = [\"0.0.0.0/0\"]\n", minimal()),
            BTreeMap::new(),
        )
        .unwrap();
        assert!(c.trusted_proxies[0].contains(ip("203.0.113.1")));
        for bad in ["10.0.0.0/33", "proxy.example.com", "10.0.0.0/x"] {
            let e = with_env(&[("TRUSTED_PROXIES", bad)]).unwrap_err();
            assert_eq!(e.key, "trusted_proxies", "{bad}: {e}");
        }
    }
}
