//! The org the Okta sandbox starts with: users (STAGED and ACTIVE, some missing shipping
//! fields), groups, an SSWS API token, a service app for OAuth `private_key_jwt` with its
//! public JWK, and the mail settings. The trusted fulfiller signing keys are not in the
//! seed: [`crate::App`] trusts the fulfiller sandbox's signing JWKS (`Config.okta_trusted_signing`
//! overrides it).

use okta::{Group, GroupProfile, User, UserProfile, UserStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The default SSWS API token (sandbox only).
pub const DEFAULT_API_TOKEN: &str = "00sandbox-okta-ssws-token-not-a-secret";
/// The default service app's client id.
pub const DEFAULT_CLIENT_ID: &str = "0oasandboxprereg0001";
/// The `kid` of the default service app's key.
pub const DEFAULT_CLIENT_KID: &str = "prereg-sandbox-service-app-1";
/// The default service app's private key (PKCS#8, P-256). Published on purpose: it only
/// opens this sandbox.
pub const DEFAULT_CLIENT_PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgcpRDXmdqfp61JShs
fnWlA89tvHNDgJR4H7kadToOBrOhRANCAAQ3AeYzz3EpIwL03kVAcayCVhxw2ZVI
LfLL1FPnikcW2nRnjj3uepsveXj7ZZODOfI717eI0uMnJfz2NSknkIY3
-----END PRIVATE KEY-----
";
/// The org's host name (the RP id its WebAuthn factors use by default).
pub const DEFAULT_DOMAIN: &str = "prereg-sandbox.okta.com";

/// A group and its members (user ids).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedGroup {
    pub group: Group,
    #[serde(default)]
    pub members: Vec<String>,
}

/// An OAuth service app (`private_key_jwt`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceApp {
    pub client_id: String,
    /// Its public JWK (EC P-256, with `kid`).
    pub jwk: Value,
    /// Scopes it was granted.
    pub scopes: Vec<String>,
}

/// The org. `Debug` leaves out the API tokens.
#[derive(Clone, Serialize, Deserialize)]
pub struct OrgSeed {
    /// The org host (no scheme), e.g. `prereg-sandbox.okta.com`.
    pub domain: String,
    pub users: Vec<User>,
    pub groups: Vec<SeedGroup>,
    /// SSWS API tokens.
    pub api_tokens: Vec<String>,
    pub service_apps: Vec<ServiceApp>,
    /// The `From` of PIN mail.
    pub mail_from: String,
}

impl std::fmt::Debug for OrgSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgSeed")
            .field("domain", &self.domain)
            .field("users", &self.users.len())
            .field("groups", &self.groups.len())
            .field("api_tokens", &"[redacted]")
            .field("service_apps", &self.service_apps)
            .field("mail_from", &self.mail_from)
            .finish()
    }
}

/// Why a seed is refused.
#[derive(Debug, thiserror::Error)]
#[error("Okta seed: {0}")]
pub struct SeedError(pub String);

impl OrgSeed {
    /// Reads a JSON seed file.
    pub fn load(path: &std::path::Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SeedError(format!("reading {}: {e}", path.display())))?;
        let seed: Self = serde_json::from_str(&text)
            .map_err(|e| SeedError(format!("{}: {e}", path.display())))?;
        seed.check()?;
        Ok(seed)
    }

    /// Checks ids are unique and members exist.
    pub fn check(&self) -> Result<(), SeedError> {
        let mut ids = std::collections::HashSet::new();
        for u in &self.users {
            if !ids.insert(u.id.clone()) || !ids.insert(u.profile.login.to_lowercase()) {
                return Err(SeedError(format!("user {} is listed twice", u.id)));
            }
        }
        for g in &self.groups {
            for m in &g.members {
                if !self.users.iter().any(|u| &u.id == m) {
                    return Err(SeedError(format!(
                        "group {} lists member {m}, who is not a user",
                        g.group.id
                    )));
                }
            }
        }
        if self.api_tokens.iter().any(String::is_empty) {
            return Err(SeedError("an API token is empty".into()));
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn user(
    id: &str,
    status: UserStatus,
    first: &str,
    last: &str,
    login: &str,
    second: Option<&str>,
    phone: Option<&str>,
    addr: Option<(&str, &str, &str, &str, &str)>,
    org: Option<&str>,
) -> User {
    let s = |v: &str| Some(v.to_owned());
    let (street, city, state, zip, cc) = match addr {
        Some((a, b, c, d, e)) => (s(a), s(b), s(c), s(d), s(e)),
        None => (None, None, None, None, None),
    };
    User {
        id: id.to_owned(),
        status,
        created: s("2026-01-05T09:00:00.000Z"),
        activated: (status == UserStatus::Active).then(|| "2026-01-05T09:00:00.000Z".to_owned()),
        status_changed: s("2026-01-05T09:00:00.000Z"),
        last_login: None,
        last_updated: s("2026-01-05T09:00:00.000Z"),
        password_changed: None,
        user_type: Some(json!({"id": "otysandboxdefault01"})),
        profile: UserProfile {
            login: login.to_owned(),
            email: s(login),
            second_email: second.map(str::to_owned),
            first_name: s(first),
            last_name: s(last),
            primary_phone: phone.map(str::to_owned),
            mobile_phone: None,
            street_address: street,
            city,
            state,
            zip_code: zip,
            country_code: cc,
            organization: org.map(str::to_owned),
            extra: Map::new(),
        },
        credentials: Some(json!({"provider": {"type": "OKTA", "name": "OKTA"}})),
        links: None,
    }
}

fn group(id: &str, name: &str, description: &str, members: &[&str]) -> SeedGroup {
    SeedGroup {
        group: Group {
            id: id.to_owned(),
            created: Some("2026-01-05T09:00:00.000Z".into()),
            last_updated: Some("2026-01-05T09:00:00.000Z".into()),
            last_membership_updated: Some("2026-01-05T09:00:00.000Z".into()),
            group_type: "OKTA_GROUP".into(),
            profile: GroupProfile {
                name: name.to_owned(),
                description: Some(description.to_owned()),
            },
            links: None,
        },
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    }
}

impl Default for OrgSeed {
    fn default() -> Self {
        use UserStatus::{Active, Staged};
        let users = vec![
            user(
                "00usandboxalice0001",
                Active,
                "Alice",
                "Anders",
                "alice.anders@example.com",
                Some("alice.personal@example.net"),
                Some("+1 415 555 0101"),
                Some(("100 Market St", "San Francisco", "CA", "94105", "US")),
                Some("Example Corp"),
            ),
            user(
                "00usandboxbob000002",
                Active,
                "Bob",
                "Brown",
                "bob.brown@example.com",
                None,
                Some("+1 212 555 0102"),
                Some(("200 Park Ave", "New York", "NY", "10166", "US")),
                Some("Example Corp"),
            ),
            user(
                "00usandboxcarol0003",
                Staged,
                "Carol",
                "Chen",
                "carol.chen@example.com",
                Some("carol.home@example.net"),
                Some("+1 206 555 0103"),
                Some(("300 Pine St", "Seattle", "WA", "98101", "US")),
                Some("Example Corp"),
            ),
            user(
                "00usandboxdave00004",
                Staged,
                "Dave",
                "Dietrich",
                "dave.dietrich@example.com",
                Some("dave.private@example.net"),
                None,
                None,
                Some("Example Corp"),
            ),
            user(
                "00usandboxerin00005",
                Active,
                "Erin",
                "Eriksson",
                "erin.eriksson@example.com",
                None,
                Some("+46 8 555 0105"),
                Some(("Drottninggatan 1", "Stockholm", "AB", "11151", "SE")),
                None,
            ),
            user(
                "00usandboxfrank0006",
                Active,
                "Frank",
                "Fischer-Featherstonehaugh",
                "frank.fischer@example.com",
                Some("frank@example.net"),
                Some("+49 30 555 0106"),
                Some((
                    "Unter den Linden 77, Hinterhaus, 3. Obergeschoss links",
                    "Berlin",
                    "BE",
                    "10117",
                    "DE",
                )),
                Some("Example GmbH"),
            ),
        ];
        let groups = vec![
            group(
                "00gsandboxyk5nfc001",
                "YubiKey 5 NFC",
                "Ship a pre-registered YubiKey 5 NFC",
                &["00usandboxalice0001"],
            ),
            group(
                "00gsandboxyk5cnfc02",
                "YubiKey 5C NFC",
                "Ship a pre-registered YubiKey 5C NFC",
                &["00usandboxcarol0003"],
            ),
            group(
                "00gsandboxeveryone3",
                "Everyone",
                "All users in the org",
                &[
                    "00usandboxalice0001",
                    "00usandboxbob000002",
                    "00usandboxcarol0003",
                    "00usandboxdave00004",
                    "00usandboxerin00005",
                    "00usandboxfrank0006",
                ],
            ),
        ];
        Self {
            domain: DEFAULT_DOMAIN.to_owned(),
            users,
            groups,
            api_tokens: vec![DEFAULT_API_TOKEN.to_owned()],
            service_apps: vec![ServiceApp {
                client_id: DEFAULT_CLIENT_ID.to_owned(),
                jwk: json!({
                    "kty": "EC", "crv": "P-256", "kid": DEFAULT_CLIENT_KID, "use": "sig", "alg": "ES256",
                    "x": "NwHmM89xKSMC9N5FQHGsglYccNmVSC3yy9RT54pHFto",
                    "y": "dGeOPe56my95ePtlk4M58jvXt4jS4ycl_PY1KSeQhjc"
                }),
                scopes: vec!["okta.users.read".into(), "okta.users.manage".into()],
            }],
            mail_from: "noreply@prereg-sandbox.okta.com".to_owned(),
        }
    }
}
