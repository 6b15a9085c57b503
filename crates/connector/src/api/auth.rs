//! Bearer JWT validation for API callers: RS256 only, against the configured issuer's
//! JWKS (refetched when a token names an unknown `kid`, at most every 30 s), with `iss`
//! the tenant's v2.0 or v1.0 issuer, `aud` in the allowed audiences, `azp`/`appid` in
//! the allowed client apps, and `exp`/`nbf` with 60 s of skew (401 otherwise); then the
//! guide's app role or scope (`create_request`, in `roles` or `scp`: 403 without it).

use super::error::ApiError;
use crate::app::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The calling app's client id (`azp` or `appid`).
    pub client_app: String,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    /// App roles (app-only tokens).
    #[serde(default)]
    roles: Vec<String>,
    /// Scopes, space-separated (delegated tokens).
    #[serde(default)]
    scp: Option<String>,
}

/// Cached signing keys of the issuer.
#[derive(Default)]
pub struct KeyCache {
    inner: Mutex<(HashMap<String, DecodingKey>, Option<Instant>)>,
}

impl KeyCache {
    async fn key(
        &self,
        http: &reqwest::Client,
        url: &str,
        kid: &str,
    ) -> Result<Option<DecodingKey>, String> {
        let mut g = self.inner.lock().await;
        if let Some(k) = g.0.get(kid) {
            return Ok(Some(k.clone()));
        }
        if g.1.is_some_and(|t| t.elapsed().as_secs() < 30) {
            return Ok(None);
        }
        let jwks: graph::token::Jwks = http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("fetching the token signing keys: {e}"))?
            .json()
            .await
            .map_err(|e| format!("reading the token signing keys: {e}"))?;
        let mut map = HashMap::new();
        for k in jwks.keys.iter().filter(|k| k.kty == "RSA") {
            if let Ok(d) = DecodingKey::from_rsa_components(&k.n, &k.e) {
                map.insert(k.kid.clone(), d);
            }
        }
        g.0 = map;
        g.1 = Some(Instant::now());
        Ok(g.0.get(kid).cloned())
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::Unauthorized(m.to_owned());
        let value = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthorized("Authorization must be a Bearer token"))?
            .trim();
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| unauthorized("token is not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthorized("token algorithm must be RS256"));
        }
        let kid = header.kid.ok_or_else(|| unauthorized("token has no kid"))?;
        let key = state
            .keys
            .key(&state.http, &state.config.auth_jwks_url, &kid)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot fetch the issuer's signing keys");
                unauthorized("cannot validate tokens right now (issuer keys unavailable)")
            })?
            .ok_or_else(|| unauthorized("token signed by an unknown key"))?;
        let mut v = Validation::new(Algorithm::RS256);
        // v2.0 and (unless turned off) v1.0 tokens of the configured tenant.
        let issuers: Vec<&str> = [&state.config.auth_issuer, &state.config.auth_issuer_v1]
            .into_iter()
            .map(String::as_str)
            .filter(|i| !i.is_empty())
            .collect();
        v.set_issuer(&issuers);
        v.set_audience(&state.config.allowed_audiences);
        v.leeway = 60;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            unauthorized(match e.kind() {
                K::ExpiredSignature => "token expired",
                K::ImmatureSignature => "token not yet valid",
                K::InvalidAudience => "token audience is not allowed",
                K::InvalidIssuer => "token issuer is not the configured one",
                K::InvalidSignature => "token signature does not verify",
                _ => "token is not valid",
            })
        })?;
        let app = data
            .claims
            .azp
            .or(data.claims.appid)
            .ok_or_else(|| unauthorized("token names no client app (azp/appid)"))?;
        if !state.config.allowed_client_apps.iter().any(|a| a == &app) {
            return Err(unauthorized("client app is not allowed to call this API"));
        }
        let role = &state.config.auth_required_role;
        let granted = role.is_empty()
            || data.claims.roles.iter().any(|r| r == role)
            || data
                .claims
                .scp
                .as_deref()
                .is_some_and(|scp| scp.split_whitespace().any(|s| s == role));
        if !granted {
            return Err(ApiError::Forbidden(format!(
                "the token carries neither the app role nor the scope {role:?}: grant it to the calling app (API permissions, admin consent)"
            )));
        }
        Ok(Caller { client_app: app })
    }
}
