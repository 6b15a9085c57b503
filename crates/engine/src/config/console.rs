//! The `[console]` section: who may sign in to the admin console and how (a local
//! admin account and/or OIDC), sessions and sign-in throttling.

use super::{ConfigError, Section};

/// OIDC sign-in settings.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer (`iss`); its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The console's client id at the issuer.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: secrecy::SecretString,
    /// Who may sign in: object ids (`oid`) or subjects (`sub`) of the id_token; UPNs /
    /// e-mail addresses (`preferred_username`, `email`) too when
    /// [`Self::issuer_verifies_email`] (case-insensitive).
    pub allowed_users: Vec<String>,
    /// The issuer vouches for `preferred_username` and `email` (no guest or user can set
    /// them to someone else's), so `allowed_users` may name users by them
    /// (`oidc_issuer_verifies_email`, default false: Entra's are unverified for guests
    /// and can be changed by users in some tenants).
    pub issuer_verifies_email: bool,
    /// The redirect URI registered at the issuer; when absent, derived from the request
    /// (`{scheme}://{Host}/console/oidc/callback`).
    pub redirect_url: Option<String>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("allowed_users", &self.allowed_users)
            .field("issuer_verifies_email", &self.issuer_verifies_email)
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

/// Console settings, from the `[console]` table of the configuration file (environment
/// variables `CONSOLE_<KEY>`). Absent table: the console is off.
#[derive(Clone)]
pub struct ConsoleConfig {
    /// The local admin's user name (small installations).
    pub admin_user: Option<String>,
    /// Its password as an argon2 PHC string (`prereg console hash-password`).
    pub admin_password_hash: Option<String>,
    /// OIDC sign-in, when `oidc_issuer` is set.
    pub oidc: Option<OidcConfig>,
    /// How long a session lasts, minutes.
    pub session_minutes: u32,
    /// Failed sign-ins for one user name within the lockout window before further
    /// attempts are refused (the console's `throttle::ADDRESS_FACTOR`, 4, times as many from one client
    /// address).
    pub signin_max_failures: u32,
    /// The lockout window, minutes.
    pub signin_lockout_minutes: u32,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            admin_user: None,
            admin_password_hash: None,
            oidc: None,
            session_minutes: 480,
            signin_max_failures: 5,
            signin_lockout_minutes: 15,
        }
    }
}

impl std::fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("admin_user", &self.admin_user)
            .field(
                "admin_password_hash",
                &self.admin_password_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("oidc", &self.oidc)
            .field("session_minutes", &self.session_minutes)
            .field("signin_max_failures", &self.signin_max_failures)
            .field("signin_lockout_minutes", &self.signin_lockout_minutes)
            .finish()
    }
}

/// The keys of `[console]`.
pub const KEYS: &[&str] = &[
    "admin_user",
    "admin_password_hash",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_allowed_users",
    "oidc_redirect_url",
    "oidc_issuer_verifies_email",
    "session_minutes",
    "signin_max_failures",
    "signin_lockout_minutes",
];

impl ConsoleConfig {
    /// Parses the `[console]` section; every invalid value names its key.
    pub fn parse(s: &Section) -> Result<Self, ConfigError> {
        s.only(KEYS)?;
        let admin_user = s.get("admin_user")?.filter(|v| !v.trim().is_empty());
        let admin_password_hash = s
            .get("admin_password_hash")?
            .filter(|v| !v.trim().is_empty());
        match (&admin_user, &admin_password_hash) {
            (Some(_), None) => {
                return Err(s.err(
                    "admin_password_hash",
                    "is required with admin_user (make one with `prereg console hash-password`)",
                ));
            }
            (None, Some(_)) => {
                return Err(s.err("admin_user", "is required with admin_password_hash"));
            }
            (Some(_), Some(h)) => {
                argon2::PasswordHash::new(h).map_err(|_| {
                    s.err(
                        "admin_password_hash",
                        "is not a PHC string (make one with `prereg console hash-password`)",
                    )
                })?;
            }
            (None, None) => {}
        }
        let oidc = match s.get("oidc_issuer")?.filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(_) => Some(OidcConfig {
                issuer: s.url("oidc_issuer", None)?,
                client_id: s.required("oidc_client_id")?,
                client_secret: s.required("oidc_client_secret")?.into(),
                allowed_users: s.list("oidc_allowed_users")?,
                issuer_verifies_email: s.flag("oidc_issuer_verifies_email", false)?,
                redirect_url: match s.get("oidc_redirect_url")? {
                    Some(v) if !v.trim().is_empty() => Some(s.url("oidc_redirect_url", None)?),
                    _ => None,
                },
            }),
        };
        if admin_user.is_none() && oidc.is_none() {
            return Err(s.err(
                "admin_user",
                "the console needs a way to sign in: set admin_user + admin_password_hash and/or oidc_issuer",
            ));
        }
        let session_minutes = s.parsed("session_minutes", 480u32)?;
        if !(5..=10080).contains(&session_minutes) {
            return Err(s.err("session_minutes", "must be 5-10080"));
        }
        let signin_max_failures = s.parsed("signin_max_failures", 5u32)?;
        if !(1..=1000).contains(&signin_max_failures) {
            return Err(s.err("signin_max_failures", "must be 1-1000"));
        }
        let signin_lockout_minutes = s.parsed("signin_lockout_minutes", 15u32)?;
        if !(1..=10080).contains(&signin_lockout_minutes) {
            return Err(s.err("signin_lockout_minutes", "must be 1-10080"));
        }
        Ok(Self {
            admin_user,
            admin_password_hash,
            oidc,
            session_minutes,
            signin_max_failures,
            signin_lockout_minutes,
        })
    }

    /// The lockout window in seconds.
    pub fn lockout_seconds(&self) -> i64 {
        i64::from(self.signin_lockout_minutes) * 60
    }
}
