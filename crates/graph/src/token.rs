//! The Entra token service (entra.md §4): the client-credentials request, its success
//! and AADSTS error bodies, the claims of a v2.0 app-only access token, the OpenID
//! metadata and the signing key set.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `grant_type` for app-only tokens.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// `POST /{tenant}/oauth2/v2.0/token` form body (`application/x-www-form-urlencoded`).
/// The secret is redacted from `Debug`.
#[derive(Clone, Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    pub grant_type: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// `{resource}/.default`, e.g. `https://graph.microsoft.com/.default`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Certificate credentials (not accepted by the sandbox; named so it can say so).
    #[serde(default)]
    pub client_assertion_type: Option<String>,
    #[serde(default)]
    pub client_assertion: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.grant_type)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenRequest {
    /// A client-credentials request with a client secret.
    pub fn client_credentials(client_id: &str, secret: &SecretString, scope: &str) -> Self {
        Self {
            grant_type: Some(CLIENT_CREDENTIALS.to_owned()),
            client_id: Some(client_id.to_owned()),
            client_secret: Some(secret.clone()),
            scope: Some(scope.to_owned()),
            client_assertion_type: None,
            client_assertion: None,
        }
    }

    /// The form pairs to send (secret exposed: only for the request body).
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut push = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        push("grant_type", self.grant_type.clone());
        push("client_id", self.client_id.clone());
        push(
            "client_secret",
            self.client_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
        );
        push("scope", self.scope.clone());
        push("client_assertion_type", self.client_assertion_type.clone());
        push("client_assertion", self.client_assertion.clone());
        out
    }
}

/// Success: `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":...}`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token_type: String,
    /// Seconds.
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_expires_in: Option<u64>,
    pub access_token: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("access_token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Failure, AADSTS shape: `{"error","error_description","error_codes":[...],"timestamp",
/// "trace_id","correlation_id","error_uri"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenError {
    /// OAuth error: `invalid_request`, `invalid_client`, `invalid_scope`,
    /// `unauthorized_client`, `unsupported_grant_type`, ...
    pub error: String,
    /// Starts with `AADSTSnnnnn:`.
    #[serde(default)]
    pub error_description: String,
    #[serde(default)]
    pub error_codes: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

/// Claims of a v2.0 access token (ED `access-token-claims-reference.md`). App-only
/// tokens carry `roles` and no `scp`; `idtyp` is `app`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The resource's application id (a GUID) for v2 tokens.
    pub aud: String,
    /// `https://login.microsoftonline.com/{tid}/v2.0` (the sandbox: `http://<addr>/{tid}/v2.0`).
    pub iss: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    /// The calling client's application id.
    pub azp: String,
    /// `0` public client, `1` client secret, `2` certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azpacr: Option<String>,
    /// The caller's service principal object id.
    pub oid: String,
    #[serde(default)]
    pub sub: String,
    pub tid: String,
    /// App roles granted to the caller on the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Delegated scopes (space-separated); absent in app-only tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    /// `2.0`.
    #[serde(default)]
    pub ver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uti: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `/{tenant}/v2.0/.well-known/openid-configuration` (the members a validator reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenIdConfiguration {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    #[serde(default)]
    pub subject_types_supported: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_region_scope: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `/{tenant}/discovery/v2.0/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One signing key: `kty` RSA, `use` sig, `kid`, `n`, `e`, optionally `x5t`, `x5c`,
/// `issuer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5t: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub x5c: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}
