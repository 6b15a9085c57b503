//! The tenant a sandbox starts with: tenant id and domain, users, groups, app
//! registrations and the FIDO2 policy. JSON, Graph's member names where Graph has them.
//! [`TenantSeed::default`] is the built-in Contoso tenant (`seed/entra-tenant.json`).

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use uuid::Uuid;

/// The built-in tenant.
const DEFAULT_SEED: &str = include_str!("../../seed/entra-tenant.json");

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSeed {
    /// The tenant id (`tid`), a GUID.
    pub tenant_id: String,
    /// The verified domain, e.g. `contoso.onmicrosoft.com`.
    pub domain: String,
    #[serde(default)]
    pub display_name: String,
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub groups: Vec<SeedGroup>,
    pub apps: Vec<SeedApp>,
    pub fido2_policy: Fido2Policy,
}

/// A user: Graph `user` members plus `manager` (UPN or id of another seeded user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// Everything Graph returns for the user; `id` and `userPrincipalName` are required.
    #[serde(flatten)]
    pub user: graph::User,
}

/// A group and its members (UPNs or ids of seeded users).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedGroup {
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub security_enabled: bool,
    #[serde(default)]
    pub mail_enabled: bool,
    #[serde(default)]
    pub members: Vec<String>,
}

/// An app registration with its service principal and one client secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedApp {
    pub display_name: String,
    /// Application (client) id.
    pub client_id: String,
    /// The service principal's object id (`oid` in its tokens).
    pub object_id: String,
    /// Sandbox secrets are not secret: they are printed in the ready line.
    pub client_secret: String,
    /// Microsoft Graph application permissions granted with admin consent.
    #[serde(default)]
    pub graph_permissions: Vec<String>,
    /// "Expose an API": the Application ID URI, e.g. `api://fido-connector-api.<domain>`.
    #[serde(default)]
    pub identifier_uri: Option<String>,
    /// Delegated scopes the API exposes (listed; client credentials never carry them).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// App roles the API defines (what app-only callers receive in `roles`).
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Roles granted to this app on other apps' APIs.
    #[serde(default)]
    pub api_permissions: Vec<ApiPermission>,
    /// The manifest's `accessTokenAcceptedVersion` for the API this app exposes: which
    /// access tokens Entra mints for callers of it, whatever endpoint they used
    /// (entra.md §4). `null` or `1`: v1.0 (`iss` `https://sts.windows.net/{tid}/`, `aud`
    /// as requested, usually the Application ID URI, `appid`); `2`: v2.0 (`iss`
    /// `…/{tid}/v2.0`, `aud` the client id, `azp`). Absent is null, as for an app
    /// registered the way the guide says; the built-in seed sets `2` for the connector
    /// API so it keeps issuing what it always issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_accepted_version: Option<u8>,
    /// Certificates (PEM) registered on the app for certificate credentials
    /// (`client_assertion`, entra.md §4): the assertion's `x5t` or `x5t#S256` names one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
}

/// Which access-token format an API's callers receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    /// v1.0: `iss` `https://sts.windows.net/{tid}/`, `appid`, `ver` `1.0`.
    V1,
    /// v2.0: `iss` `{authority}/{tid}/v2.0`, `azp`, `ver` `2.0`.
    V2,
}

impl SeedApp {
    /// The token version its API's callers get (`accessTokenAcceptedVersion`; null is 1).
    pub fn token_version(&self) -> TokenVersion {
        match self.access_token_accepted_version {
            Some(2) => TokenVersion::V2,
            _ => TokenVersion::V1,
        }
    }
}

/// Roles granted on another app's API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiPermission {
    /// The API's identifier URI or client id.
    pub resource: String,
    pub roles: Vec<String>,
}

/// The Passkey (FIDO2) authentication method policy, in Graph's
/// `fido2AuthenticationMethodConfiguration` names, plus the sandbox's trust roots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fido2Policy {
    /// `enabled` or `disabled`.
    pub state: String,
    /// "Allow self-service set up": must be true for API provisioning (entra.md §1).
    pub is_self_service_registration_allowed: bool,
    /// "Enforce attestation": packed with a chain to a trusted root.
    pub is_attestation_enforced: bool,
    /// `all_users` or group ids.
    #[serde(default = "all_users")]
    pub include_targets: Vec<String>,
    pub key_restrictions: KeyRestrictions,
    /// PEM roots attestation chains must reach (sandbox setting: real Entra uses FIDO
    /// MDS). Absent: the virtual key's sandbox root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_roots_pem: Option<Vec<String>>,
}

fn all_users() -> Vec<String> {
    vec!["all_users".to_owned()]
}

/// "Enforce key restrictions".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRestrictions {
    pub is_enforced: bool,
    /// `allow` or `block`.
    pub enforcement_type: String,
    pub aa_guids: Vec<Uuid>,
}

/// Why a seed cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("reading the Entra seed {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the Entra seed is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("the Entra seed is inconsistent: {0}")]
    Invalid(String),
}

impl Default for TenantSeed {
    fn default() -> Self {
        // The built-in seed is checked by a test; an unreadable one is a build defect.
        #[allow(clippy::expect_used)]
        serde_json::from_str(DEFAULT_SEED).expect("the built-in Entra seed parses")
    }
}

impl TenantSeed {
    /// Reads and checks a seed file.
    pub fn load(path: &Path) -> Result<Self, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let seed: Self = serde_json::from_str(&text).map_err(|e| SeedError::Json(e.to_string()))?;
        seed.check()?;
        Ok(seed)
    }

    /// Every reference resolves, ids are unique GUIDs, the policy names known values.
    pub fn check(&self) -> Result<(), SeedError> {
        let bad = |m: String| Err(SeedError::Invalid(m));
        if Uuid::parse_str(&self.tenant_id).is_err() {
            return bad(format!("tenantId {:?} is not a GUID", self.tenant_id));
        }
        if self.domain.is_empty() || self.domain.contains('/') {
            return bad(format!("domain {:?} is not a domain name", self.domain));
        }
        let mut ids = HashSet::new();
        let mut upns = HashSet::new();
        for u in &self.users {
            let id = &u.user.id;
            if Uuid::parse_str(id).is_err() {
                return bad(format!("user id {id:?} is not a GUID"));
            }
            let Some(upn) = u.user.user_principal_name.as_deref() else {
                return bad(format!("user {id} has no userPrincipalName"));
            };
            if !ids.insert(id.to_ascii_lowercase()) || !upns.insert(upn.to_ascii_lowercase()) {
                return bad(format!("user {id} ({upn}) appears twice"));
            }
        }
        let known = |r: &str| {
            let r = r.to_ascii_lowercase();
            ids.contains(&r) || upns.contains(&r)
        };
        for u in &self.users {
            if let Some(m) = &u.manager
                && !known(m)
            {
                return bad(format!(
                    "manager {m:?} of {} is not a seeded user",
                    u.user.id
                ));
            }
        }
        let mut group_ids = HashSet::new();
        for g in &self.groups {
            if Uuid::parse_str(&g.id).is_err() || !group_ids.insert(g.id.to_ascii_lowercase()) {
                return bad(format!("group id {:?} is not a unique GUID", g.id));
            }
            if let Some(m) = g.members.iter().find(|m| !known(m)) {
                return bad(format!(
                    "member {m:?} of group {:?} is not a seeded user",
                    g.display_name
                ));
            }
        }
        let mut clients = HashSet::new();
        for a in &self.apps {
            if Uuid::parse_str(&a.client_id).is_err() || Uuid::parse_str(&a.object_id).is_err() {
                return bad(format!(
                    "app {:?}: clientId and objectId must be GUIDs",
                    a.display_name
                ));
            }
            if !clients.insert(a.client_id.to_ascii_lowercase()) {
                return bad(format!("app clientId {} appears twice", a.client_id));
            }
            if let Some(v) = a.access_token_accepted_version
                && v != 1
                && v != 2
            {
                return bad(format!(
                    "app {:?}: accessTokenAcceptedVersion must be 1, 2 or null, not {v}",
                    a.display_name
                ));
            }
            for pem in &a.certificates {
                crate::entra::certs::Registered::from_pem(pem).map_err(|e| {
                    SeedError::Invalid(format!("app {:?}: certificates: {e}", a.display_name))
                })?;
            }
            if a.client_secret.is_empty() {
                return bad(format!(
                    "app {:?} has an empty clientSecret",
                    a.display_name
                ));
            }
        }
        for a in &self.apps {
            for p in &a.api_permissions {
                let Some(api) = self.apps.iter().find(|x| {
                    x.identifier_uri.as_deref() == Some(p.resource.as_str())
                        || x.client_id == p.resource
                }) else {
                    return bad(format!(
                        "app {:?} has permissions on unknown API {:?}",
                        a.display_name, p.resource
                    ));
                };
                if let Some(r) = p.roles.iter().find(|r| !api.app_roles.contains(r)) {
                    return bad(format!("API {:?} defines no app role {r:?}", p.resource));
                }
            }
        }
        let p = &self.fido2_policy;
        if p.state != "enabled" && p.state != "disabled" {
            return bad(format!(
                "fido2Policy.state {:?} is not enabled or disabled",
                p.state
            ));
        }
        let kr = &p.key_restrictions.enforcement_type;
        if kr != "allow" && kr != "block" {
            return bad(format!(
                "keyRestrictions.enforcementType {kr:?} is not allow or block"
            ));
        }
        for t in &p.include_targets {
            if t != "all_users" && !group_ids.contains(&t.to_ascii_lowercase()) {
                return bad(format!(
                    "fido2Policy.includeTargets names unknown group {t:?}"
                ));
            }
        }
        if let Some(roots) = &p.attestation_roots_pem {
            for pem in roots {
                webauthn::TrustRoots::from_pem(pem)
                    .map_err(|e| SeedError::Invalid(format!("attestationRootsPem: {e}")))?;
            }
        }
        Ok(())
    }

    /// The app that exposes an API with this identifier URI (or client id).
    pub fn api(&self, resource: &str) -> Option<&SeedApp> {
        self.apps.iter().find(|a| {
            a.identifier_uri
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(resource))
                || a.client_id.eq_ignore_ascii_case(resource)
        })
    }

    /// The connector app: the first app with Graph passkey permission.
    pub fn connector_app(&self) -> Option<&SeedApp> {
        self.apps.iter().find(|a| {
            a.graph_permissions
                .iter()
                .any(|p| graph::PASSKEY_WRITE_PERMISSIONS.contains(&p.as_str()))
        })
    }

    /// The test client: the first app granted roles on the connector's API.
    pub fn test_client_app(&self) -> Option<&SeedApp> {
        let connector = self.connector_app()?;
        self.apps.iter().find(|a| {
            a.api_permissions.iter().any(|p| {
                Some(p.resource.as_str()) == connector.identifier_uri.as_deref()
                    || p.resource == connector.client_id
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_built_in_tenant_is_consistent_and_has_the_guide_apps() {
        let s = TenantSeed::default();
        s.check().unwrap();
        assert!(s.users.len() >= 20);
        assert!(s.users.iter().any(|u| u.manager.is_none()));
        assert!(s.users.iter().any(|u| u.user.street_address.is_none()));
        let connector = s.connector_app().unwrap();
        assert_eq!(
            connector.identifier_uri.as_deref(),
            Some("api://fido-connector-api.contoso.onmicrosoft.com")
        );
        assert!(connector.scopes.contains(&"create_request".to_owned()));
        let client = s.test_client_app().unwrap();
        assert_eq!(client.api_permissions[0].roles, vec!["create_request"]);
        let p = &s.fido2_policy;
        assert!(p.is_self_service_registration_allowed && p.is_attestation_enforced);
        assert!(p.key_restrictions.is_enforced);
    }

    #[test]
    fn dangling_references_are_refused() {
        let mut s = TenantSeed::default();
        s.users[1].manager = Some("nobody@contoso.onmicrosoft.com".into());
        assert!(s.check().unwrap_err().to_string().contains("nobody"));
    }
}
