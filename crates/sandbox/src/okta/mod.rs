//! The Okta sandbox (issue #6): the parts of an Okta org that FIDO pre-registration
//! touches, on one HTTP server.
//!
//! Routes (auth `Authorization: SSWS <token>` or `Bearer <access token>` from the token
//! endpoint; GETs need `okta.users.read` or `okta.users.manage`, the rest
//! `okta.users.manage`; errors in Okta's shape; faults apply):
//! - `POST /oauth2/v1/token`: client credentials with a `private_key_jwt` assertion
//!   (RS256 for an RSA key, Okta's default, or ES256/ES384 for an EC key, by the key the
//!   app registered; `iss`=`sub`=client id, `aud` = this URL). No auth header.
//! - `GET /api/v1/users/{id|login}`, `GET /api/v1/users?search=|q=`,
//!   `GET /api/v1/users/{id}/groups`, `GET /api/v1/groups?q=`, `GET /api/v1/groups/{id}`,
//!   `GET /api/v1/groups/{id}/users`, `PUT|DELETE /api/v1/groups/{id}/users/{userId}`.
//!   The user and member lists are paged with `limit`/`after` and `Link` headers.
//! - `POST|GET /api/v1/eventHooks`, `GET|PUT|DELETE /api/v1/eventHooks/{id}`,
//!   `POST /api/v1/eventHooks/{id}/lifecycle/verify|activate|deactivate` ([`hooks`]).
//! - `/webauthn-registration/api/v1/`: `initiate-fulfillment-request`, `enroll`,
//!   `activate`, `send-pin`, `users/{id}/enrollments` (GET), `.../{factorId}` (DELETE),
//!   `.../{factorId}/mark-error` ([`prereg`]).
//! - sandbox-only, no auth, never faulted: `POST /sandbox/v1/signin/begin|finish`
//!   ([`signin`]), `GET /sandbox/v1/mail` (the mail catcher), `GET|PUT
//!   /sandbox/v1/faults`, `GET /sandbox/v1/state`.

pub mod hooks;
pub mod prereg;
pub mod seed;
pub mod signin;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use envelope::Jwks;
use okta::error::codes;
use okta::{ErrorBody, Group, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::{self, FaultBodies, FaultConfig, Faults};
use crate::mail::{MailCatcher, SmtpTarget};
pub use seed::{OrgSeed, SeedError};

/// The sandbox's state. Cheap to clone.
#[derive(Clone)]
pub struct Okta(Arc<Inner>);

struct Inner {
    base_url: String,
    seed: OrgSeed,
    org: Mutex<Org>,
    trusted_signing: RwLock<Jwks>,
    access_tokens: Mutex<Vec<AccessToken>>,
    faults: Faults,
    smtp: SmtpTarget,
    catcher: Option<MailCatcher>,
    http: reqwest::Client,
}

struct AccessToken {
    token: String,
    scopes: Vec<String>,
    expires: u64,
}

/// Mutable org state.
pub(crate) struct Org {
    pub(crate) users: Vec<User>,
    pub(crate) groups: Vec<seed::SeedGroup>,
    pub(crate) factors: Vec<prereg::Factor>,
    pub(crate) pin_requests: Vec<prereg::PinRequestRecord>,
    pub(crate) hooks: Vec<hooks::HookRecord>,
    pub(crate) signin: Vec<signin::Challenge>,
}

/// How the Okta sandbox runs.
#[derive(Debug, Clone)]
pub struct OktaOptions {
    /// Fulfiller signing keys the org trusts for `activate`.
    pub trusted_signing: Jwks,
    /// Where PIN mail goes.
    pub smtp: SmtpTarget,
    /// The catcher whose messages `GET /sandbox/v1/mail` shows, if any.
    pub catcher: Option<MailCatcher>,
    /// Faults.
    pub faults: FaultConfig,
}

/// An Okta-shaped failure.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub body: Box<ErrorBody>,
}

impl Failure {
    pub fn new(
        status: StatusCode,
        code: &str,
        summary: impl Into<String>,
        causes: Vec<String>,
    ) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody::new(code, summary, causes)),
        }
    }
    /// 400 `E0000001 Api validation failed: {what}` with causes.
    pub fn validation(what: &str, cause: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION,
            format!("Api validation failed: {what}"),
            vec![cause.into()],
        )
    }
    /// 404 `E0000007 Not found: Resource not found: {what}`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("Not found: Resource not found: {what}"),
            vec![],
        )
    }
    /// 403 `E0000006`.
    pub fn forbidden(cause: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            codes::FORBIDDEN,
            "You do not have permission to perform the requested action",
            vec![cause.into()],
        )
    }
    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_TOKEN,
            "Invalid token provided",
            vec![],
        )
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(*self.body)).into_response()
    }
}

/// Okta's wording for injected faults.
pub const OKTA_BODIES: FaultBodies = FaultBodies {
    internal_error: || {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "Internal Server Error (injected fault)",
            vec![],
        )
        .into_response()
    },
    too_many_requests: |_| {
        Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::RATE_LIMIT,
            "API call exceeded rate limit due to too many requests.",
            vec![],
        )
        .into_response()
    },
};

/// Parses a JSON body into `T`, or 400 naming `what` and serde's reason.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    what: &str,
) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| Failure::validation(what, format!("{what}: {e}")))
}

impl Okta {
    /// A sandbox serving at `base_url`.
    pub fn new(seed: OrgSeed, base_url: &str, options: OktaOptions) -> Result<Self, SeedError> {
        seed.check()?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| SeedError(format!("HTTP client: {e}")))?;
        Ok(Self(Arc::new(Inner {
            base_url: base_url.trim_end_matches('/').to_owned(),
            org: Mutex::new(Org {
                users: seed.users.clone(),
                groups: seed.groups.clone(),
                factors: Vec::new(),
                pin_requests: Vec::new(),
                hooks: Vec::new(),
                signin: Vec::new(),
            }),
            seed,
            trusted_signing: RwLock::new(options.trusted_signing),
            access_tokens: Mutex::new(Vec::new()),
            faults: Faults::new(options.faults),
            smtp: options.smtp,
            catcher: options.catcher,
            http,
        })))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.0.base_url.clone()
    }

    /// The seed it started from.
    pub fn seed(&self) -> &OrgSeed {
        &self.0.seed
    }

    /// The fulfiller signing keys `activate` trusts.
    pub fn trusted_signing(&self) -> Jwks {
        self.0
            .trusted_signing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the trusted signing keys.
    pub fn set_trusted_signing(&self, jwks: Jwks) {
        *self
            .0
            .trusted_signing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = jwks;
    }

    /// The live fault setting.
    pub fn faults(&self) -> &Faults {
        &self.0.faults
    }

    pub(crate) fn org(&self) -> MutexGuard<'_, Org> {
        self.0
            .org
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A user by id or login (case-insensitive login).
    pub fn find_user(&self, id_or_login: &str) -> Option<User> {
        self.org().find_user(id_or_login).cloned()
    }
}

impl Org {
    pub(crate) fn find_user(&self, id_or_login: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.id == id_or_login || u.profile.login.eq_ignore_ascii_case(id_or_login))
    }
}

/// `prefix` followed by `n` random characters from Okta's id alphabet.
pub(crate) fn random_id(prefix: &str, n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = prefix.to_owned();
    while out.len() < prefix.len() + n {
        let b = crate::rng::bytes::<32>().unwrap_or([7; 32]);
        for x in b {
            // 248 = 4 * 62: rejection keeps the choice uniform.
            if x < 248 && out.len() < prefix.len() + n {
                out.push(ALPHABET[(x % 62) as usize] as char);
            }
        }
    }
    out
}

/// The ready-line entry for `prereg sandbox`.
pub fn ready_info(okta: &Okta) -> Value {
    let s = okta.seed();
    json!({
        "base_url": okta.base_url(),
        "domain": s.domain,
        "ssws_token": s.api_tokens.first(),
        "token_url": format!("{}{}", okta.base_url(), okta::oauth::TOKEN_PATH),
        "service_app": s.service_apps.first().map(|a| json!({
            "client_id": a.client_id,
            "kid": a.jwk.get("kid"),
            "scopes": a.scopes.join(" "),
            "private_key_pem": (a.client_id == seed::DEFAULT_CLIENT_ID).then_some(seed::DEFAULT_CLIENT_PRIVATE_KEY_PEM),
        })),
        "prereg_api": format!("{}/webauthn-registration/api/v1", okta.base_url()),
        "signin_url": format!("{}/sandbox/v1/signin", okta.base_url()),
        "mail_url": format!("{}/sandbox/v1/mail", okta.base_url()),
        "smtp": format!("{}:{}", okta.0.smtp.host, okta.0.smtp.port),
        "users": s.users.iter().map(|u| json!({"id": u.id, "login": u.profile.login, "status": u.status})).collect::<Vec<_>>(),
    })
}

/// The router.
pub fn router(okta: Okta) -> Router {
    let api = Router::new()
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/users/{id}", get(get_user))
        .route("/api/v1/users/{id}/groups", get(user_groups))
        .route("/api/v1/groups", get(list_groups))
        .route("/api/v1/groups/{id}", get(get_group))
        .route("/api/v1/groups/{id}/users", get(group_users))
        .route(
            "/api/v1/groups/{id}/users/{user}",
            put(add_member).delete(remove_member),
        )
        .route("/api/v1/eventHooks", post(hooks::create).get(hooks::list))
        .route(
            "/api/v1/eventHooks/{id}",
            get(hooks::get).put(hooks::replace).delete(hooks::delete),
        )
        .route(
            "/api/v1/eventHooks/{id}/lifecycle/verify",
            post(hooks::verify),
        )
        .route(
            "/api/v1/eventHooks/{id}/lifecycle/activate",
            post(hooks::activate),
        )
        .route(
            "/api/v1/eventHooks/{id}/lifecycle/deactivate",
            post(hooks::deactivate),
        )
        .merge(prereg::routes())
        .layer(from_fn_with_state(okta.clone(), authenticate));
    let token = Router::new().route(okta::oauth::TOKEN_PATH, post(token));
    let service = api
        .merge(token)
        .layer(from_fn_with_state(okta.clone(), inject_faults));
    Router::new()
        .merge(service)
        .route("/sandbox/v1/signin/begin", post(signin::begin))
        .route("/sandbox/v1/signin/finish", post(signin::finish))
        .route("/sandbox/v1/mail", get(mail))
        .route("/sandbox/v1/faults", get(get_faults).put(put_faults))
        .route("/sandbox/v1/state", get(state))
        .fallback(|| async { Failure::not_found("no such route in the Okta sandbox") })
        .with_state(okta)
}

async fn inject_faults(State(okta): State<Okta>, req: Request, next: Next) -> Response {
    faults::inject_with(&okta.0.faults, OKTA_BODIES, req, next).await
}

async fn authenticate(State(okta): State<Okta>, req: Request, next: Next) -> Response {
    let read_only = req.method() == axum::http::Method::GET;
    match okta.authorized(req.headers(), read_only) {
        Ok(()) => next.run(req).await,
        Err(f) => f.into_response(),
    }
}

impl Okta {
    fn authorized(&self, headers: &HeaderMap, read_only: bool) -> Result<(), Failure> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(Failure::unauthorized)?;
        if let Some(t) = value.strip_prefix("SSWS ") {
            return if self.0.seed.api_tokens.iter().any(|k| k == t.trim()) {
                Ok(())
            } else {
                Err(Failure::unauthorized())
            };
        }
        let t = value
            .strip_prefix("Bearer ")
            .ok_or_else(Failure::unauthorized)?;
        let now = crate::time::now();
        let tokens = self
            .0
            .access_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tok = tokens
            .iter()
            .find(|a| a.token == t.trim() && a.expires > now)
            .ok_or_else(Failure::unauthorized)?;
        let has = |s: &str| tok.scopes.iter().any(|x| x == s);
        if has("okta.users.manage") || (read_only && has("okta.users.read")) {
            Ok(())
        } else {
            Err(Failure::forbidden(format!(
                "The access token lacks the scope this call needs ({}).",
                if read_only {
                    "okta.users.read"
                } else {
                    "okta.users.manage"
                }
            )))
        }
    }
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    scope: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(okta::oauth::OAuthError {
            error: error.to_owned(),
            error_description: description.into(),
        }),
    )
        .into_response()
}

/// `POST /oauth2/v1/token`.
async fn token(State(okta): State<Okta>, body: axum::body::Bytes) -> Response {
    let Ok(form) = serde_urlencoded_parse(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be application/x-www-form-urlencoded.",
        );
    };
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only client_credentials is supported for service apps.",
        );
    }
    if form.client_assertion_type.as_deref() != Some(okta::oauth::ASSERTION_TYPE) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer (private_key_jwt).",
        );
    }
    let Some(assertion) = form.client_assertion else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_assertion is missing.",
        );
    };
    let aud = format!("{}{}", okta.base_url(), okta::oauth::TOKEN_PATH);
    let claims = match okta.check_assertion(&assertion, &aud) {
        Ok(c) => c,
        Err(why) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why),
    };
    let Some(app) = okta
        .0
        .seed
        .service_apps
        .iter()
        .find(|a| a.client_id == claims.sub)
    else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Unknown client.",
        );
    };
    let asked: Vec<String> = form
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if asked.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Ask for scopes, e.g. scope=okta.users.read okta.users.manage.",
        );
    }
    if let Some(s) = asked.iter().find(|s| !app.scopes.contains(s)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            format!("The client is not granted {s}."),
        );
    }
    let token = format!("sbx.{}", random_id("", 32));
    let expires_in = 3600;
    okta.0
        .access_tokens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(AccessToken {
            token: token.clone(),
            scopes: asked.clone(),
            expires: crate::time::now() + expires_in,
        });
    Json(okta::oauth::TokenResponse {
        token_type: "Bearer".into(),
        expires_in,
        access_token: token,
        scope: asked.join(" "),
    })
    .into_response()
}

fn serde_urlencoded_parse(body: &[u8]) -> Result<TokenForm, ()> {
    let text = std::str::from_utf8(body).map_err(|_| ())?;
    let mut f = TokenForm {
        grant_type: None,
        scope: None,
        client_assertion_type: None,
        client_assertion: None,
    };
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)?;
        match k {
            "grant_type" => f.grant_type = Some(v),
            "scope" => f.scope = Some(v),
            "client_assertion_type" => f.client_assertion_type = Some(v),
            "client_assertion" => f.client_assertion = Some(v),
            _ => {}
        }
    }
    Ok(f)
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).map_err(|_| ())?;
                out.push(u8::from_str_radix(h, 16).map_err(|_| ())?);
                i += 2;
            }
            b'%' => return Err(()),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ())
}

impl Okta {
    fn check_assertion(
        &self,
        assertion: &str,
        aud: &str,
    ) -> Result<okta::oauth::AssertionClaims, String> {
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|_| "The client assertion is not a JWT.".to_owned())?;
        // Find the app by the unverified sub, then verify with its key.
        let payload = assertion.split('.').nth(1).unwrap_or("");
        let raw = webauthn::b64::decode("client assertion", payload)
            .map_err(|_| "The client assertion is not a JWT.".to_owned())?;
        let unverified: Value = serde_json::from_slice(&raw)
            .map_err(|_| "The client assertion is not a JWT.".to_owned())?;
        let sub = unverified["sub"].as_str().unwrap_or_default();
        let app = self
            .0
            .seed
            .service_apps
            .iter()
            .find(|a| a.client_id == sub)
            .ok_or_else(|| format!("No service app has client id {sub:?}."))?;
        if let (Some(kid), Some(app_kid)) =
            (&header.kid, app.jwk.get("kid").and_then(Value::as_str))
            && kid != app_kid
        {
            return Err(format!(
                "The assertion's kid {kid:?} is not the key registered for {sub}."
            ));
        }
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(app.jwk.clone())
            .map_err(|e| format!("The app's registered key is unusable: {e}"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk)
            .map_err(|e| format!("The app's registered key is unusable: {e}"))?;
        let allowed = algorithms_for(&app.jwk);
        if !allowed.contains(&header.alg) {
            return Err(format!(
                "The assertion is signed {:?}, but the key registered for {sub} takes {}.",
                header.alg,
                allowed
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_audience(&[aud]);
        v.set_issuer(&[sub]);
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let data = jsonwebtoken::decode::<okta::oauth::AssertionClaims>(assertion, &key, &v)
            .map_err(|e| format!("The client assertion did not verify: {e}"))?;
        if data.claims.iss != data.claims.sub {
            return Err("iss and sub must both be the client id.".into());
        }
        Ok(data.claims)
    }
}

/// What a registered JWK signs with: RSA keys RS256/RS384/RS512 (RS256 is what Okta's
/// Admin Console generates), EC P-256 ES256, EC P-384 ES384.
fn algorithms_for(jwk: &Value) -> Vec<jsonwebtoken::Algorithm> {
    use jsonwebtoken::Algorithm::{ES256, ES384, RS256, RS384, RS512};
    match (
        jwk.get("kty").and_then(Value::as_str),
        jwk.get("crv").and_then(Value::as_str),
    ) {
        (Some("RSA"), _) => vec![RS256, RS384, RS512],
        (Some("EC"), Some("P-256")) => vec![ES256],
        (Some("EC"), Some("P-384")) => vec![ES384],
        _ => vec![],
    }
}

#[derive(Deserialize)]
struct UserQuery {
    search: Option<String>,
    q: Option<String>,
    filter: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// `limit` and `after` of a paged list.
#[derive(Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    after: Option<String>,
}

/// Okta's cursor pagination (developer.okta.com "Pagination"): at most `limit` items
/// (clamped to 1..=`max`, `default` when absent) after the item whose id is `after`;
/// a `Link: <...?limit=N>; rel="self"` header and, when more follow, `Link:
/// <...?after=ID&limit=N>; rel="next"` (absolute URLs; the cursor is the last item's
/// id, opaque to clients). `extra` are the other query parameters, kept in the links.
#[allow(clippy::too_many_arguments)]
fn paged(
    okta: &Okta,
    path: &str,
    extra: &[(&str, &str)],
    items: Vec<(String, Value)>,
    after: Option<&str>,
    limit: Option<usize>,
    default: usize,
    max: usize,
) -> Response {
    let limit = limit.unwrap_or(default).clamp(1, max);
    let start = match after {
        None => 0,
        Some(a) => items
            .iter()
            .position(|(id, _)| id == a)
            .map_or(items.len(), |i| i + 1),
    };
    let rest = items.len().saturating_sub(start);
    let page: Vec<(String, Value)> = items.into_iter().skip(start).take(limit).collect();
    let query = |cursor: Option<&str>| {
        let mut q: Vec<String> = extra
            .iter()
            .map(|(k, v)| format!("{k}={}", query_enc(v)))
            .collect();
        if let Some(c) = cursor {
            q.push(format!("after={}", query_enc(c)));
        }
        q.push(format!("limit={limit}"));
        format!("{}{path}?{}", okta.base_url(), q.join("&"))
    };
    let mut headers = HeaderMap::new();
    let mut link = |url: String, rel: &str| {
        if let Ok(v) = axum::http::HeaderValue::from_str(&format!("<{url}>; rel=\"{rel}\"")) {
            headers.append(header::LINK, v);
        }
    };
    link(query(after), "self");
    if rest > limit
        && let Some((last, _)) = page.last()
    {
        link(query(Some(last)), "next");
    }
    let body: Vec<Value> = page.into_iter().map(|(_, v)| v).collect();
    (headers, Json(Value::Array(body))).into_response()
}

/// Percent-encodes a query value.
fn query_enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn user_json(okta: &Okta, u: &User) -> Value {
    let mut v = serde_json::to_value(u).unwrap_or(Value::Null);
    v["_links"] = json!({"self": {"href": format!("{}/api/v1/users/{}", okta.base_url(), u.id)}});
    v
}

fn group_json(okta: &Okta, g: &Group) -> Value {
    let mut v = serde_json::to_value(g).unwrap_or(Value::Null);
    v["_links"] =
        json!({"users": {"href": format!("{}/api/v1/groups/{}/users", okta.base_url(), g.id)}});
    v
}

/// `GET /api/v1/users/{id|login}`.
async fn get_user(
    State(okta): State<Okta>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    let u = okta.find_user(&id).ok_or_else(|| Failure::not_found(&id))?;
    Ok(Json(user_json(&okta, &u)))
}

/// `GET /api/v1/users?search=...` (`attr eq|sw|co "v"` joined by `and`), `?q=` prefix
/// on login, email, first and last name; paged by `limit` (default and most 200) and
/// `after` with `Link` headers ([`paged`]).
async fn list_users(
    State(okta): State<Okta>,
    Query(q): Query<UserQuery>,
) -> Result<Response, Failure> {
    let users = okta.org().users.clone();
    let expr = q.search.clone().or(q.filter.clone());
    let clauses = match &expr {
        Some(e) => parse_search(e)?,
        None => Vec::new(),
    };
    let out: Vec<(String, Value)> = users
        .iter()
        .filter(|u| clauses.iter().all(|c| c.matches(u)))
        .filter(|u| match &q.q {
            Some(p) => {
                let p = p.to_lowercase();
                [
                    Some(&u.profile.login),
                    u.profile.email.as_ref(),
                    u.profile.first_name.as_ref(),
                    u.profile.last_name.as_ref(),
                ]
                .into_iter()
                .flatten()
                .any(|s| s.to_lowercase().starts_with(&p))
            }
            None => true,
        })
        .map(|u| (u.id.clone(), user_json(&okta, u)))
        .collect();
    let mut extra: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = &q.search {
        extra.push(("search", s));
    }
    if let Some(f) = &q.filter {
        extra.push(("filter", f));
    }
    if let Some(p) = &q.q {
        extra.push(("q", p));
    }
    Ok(paged(
        &okta,
        "/api/v1/users",
        &extra,
        out,
        q.after.as_deref(),
        q.limit,
        200,
        200,
    ))
}

struct Clause {
    attr: String,
    op: String,
    value: String,
}

impl Clause {
    fn matches(&self, u: &User) -> bool {
        let v = serde_json::to_value(u).unwrap_or(Value::Null);
        let mut cur = &v;
        for part in self.attr.split('.') {
            cur = &cur[part];
        }
        let Some(s) = cur.as_str() else { return false };
        let (s, want) = (s.to_lowercase(), self.value.to_lowercase());
        match self.op.as_str() {
            "eq" => s == want,
            "sw" => s.starts_with(&want),
            "co" => s.contains(&want),
            _ => false,
        }
    }
}

fn parse_search(expr: &str) -> Result<Vec<Clause>, Failure> {
    let bad = |why: &str| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_SEARCH,
            "Invalid search criteria.",
            vec![format!(
                "{why} in {expr:?}; use e.g. profile.email eq \"a@example.com\" and status eq \"ACTIVE\""
            )],
        )
    };
    let mut out = Vec::new();
    for part in expr.split(" and ") {
        let part = part.trim();
        let mut it = part.splitn(3, ' ');
        let (Some(attr), Some(op), Some(val)) = (it.next(), it.next(), it.next()) else {
            return Err(bad("expected attribute, operator and quoted value"));
        };
        if !["eq", "sw", "co"].contains(&op) {
            return Err(bad(&format!("operator {op:?} is not eq, sw or co")));
        }
        let val = val
            .trim()
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| bad("the value must be in double quotes"))?;
        out.push(Clause {
            attr: attr.to_owned(),
            op: op.to_owned(),
            value: val.to_owned(),
        });
    }
    Ok(out)
}

/// `GET /api/v1/users/{id}/groups`.
async fn user_groups(
    State(okta): State<Okta>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    let org = okta.org();
    let u = org
        .find_user(&id)
        .ok_or_else(|| Failure::not_found(&id))?
        .id
        .clone();
    let gs: Vec<Value> = org
        .groups
        .iter()
        .filter(|g| g.members.contains(&u))
        .map(|g| group_json(&okta, &g.group))
        .collect();
    Ok(Json(Value::Array(gs)))
}

#[derive(Deserialize)]
struct GroupQuery {
    q: Option<String>,
}

/// `GET /api/v1/groups?q=` (name prefix).
async fn list_groups(State(okta): State<Okta>, Query(q): Query<GroupQuery>) -> Json<Value> {
    let org = okta.org();
    Json(Value::Array(
        org.groups
            .iter()
            .filter(|g| match &q.q {
                Some(p) => g
                    .group
                    .profile
                    .name
                    .to_lowercase()
                    .starts_with(&p.to_lowercase()),
                None => true,
            })
            .map(|g| group_json(&okta, &g.group))
            .collect(),
    ))
}

/// `GET /api/v1/groups/{id}`.
async fn get_group(
    State(okta): State<Okta>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Failure> {
    let org = okta.org();
    let g = org
        .groups
        .iter()
        .find(|g| g.group.id == id)
        .ok_or_else(|| Failure::not_found(&id))?;
    Ok(Json(group_json(&okta, &g.group)))
}

/// `GET /api/v1/groups/{id}/users`, paged by `limit` (default and most 1000) and
/// `after` with `Link` headers ([`paged`]).
async fn group_users(
    State(okta): State<Okta>,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Response, Failure> {
    let members: Vec<(String, Value)> = {
        let org = okta.org();
        let g = org
            .groups
            .iter()
            .find(|g| g.group.id == id)
            .ok_or_else(|| Failure::not_found(&id))?;
        g.members
            .iter()
            .filter_map(|m| org.find_user(m))
            .map(|u| (u.id.clone(), user_json(&okta, u)))
            .collect()
    };
    Ok(paged(
        &okta,
        &format!("/api/v1/groups/{id}/users"),
        &[],
        members,
        page.after.as_deref(),
        page.limit,
        1000,
        1000,
    ))
}

/// `PUT /api/v1/groups/{id}/users/{userId}` (204); emits `group.user_membership.add`.
async fn add_member(
    State(okta): State<Okta>,
    Path((gid, uid)): Path<(String, String)>,
) -> Result<StatusCode, Failure> {
    let (user, group, added) = {
        let mut org = okta.org();
        let user = org
            .find_user(&uid)
            .cloned()
            .ok_or_else(|| Failure::not_found(&uid))?;
        let g = org
            .groups
            .iter_mut()
            .find(|g| g.group.id == gid)
            .ok_or_else(|| Failure::not_found(&gid))?;
        let added = !g.members.contains(&user.id);
        if added {
            g.members.push(user.id.clone());
            g.group.last_membership_updated = Some(crate::time::rfc3339(crate::time::now()));
        }
        (user, g.group.clone(), added)
    };
    if added {
        hooks::emit(&okta, hooks::membership_event(&user, &group));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/groups/{id}/users/{userId}` (204).
async fn remove_member(
    State(okta): State<Okta>,
    Path((gid, uid)): Path<(String, String)>,
) -> Result<StatusCode, Failure> {
    let mut org = okta.org();
    let user = org
        .find_user(&uid)
        .cloned()
        .ok_or_else(|| Failure::not_found(&uid))?;
    let g = org
        .groups
        .iter_mut()
        .find(|g| g.group.id == gid)
        .ok_or_else(|| Failure::not_found(&gid))?;
    g.members.retain(|m| *m != user.id);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /sandbox/v1/mail`.
async fn mail(State(okta): State<Okta>) -> Result<Json<Value>, Failure> {
    let c = okta.0.catcher.as_ref().ok_or_else(|| {
        Failure::not_found("this sandbox sends mail to another SMTP server; read it there")
    })?;
    Ok(Json(
        serde_json::to_value(c.messages()).unwrap_or(Value::Null),
    ))
}

async fn get_faults(State(okta): State<Okta>) -> Json<FaultConfig> {
    Json(okta.0.faults.get())
}

async fn put_faults(
    State(okta): State<Okta>,
    body: axum::body::Bytes,
) -> Result<Json<FaultConfig>, Failure> {
    let f: FaultConfig = parse_body(&body, "faults")?;
    okta.0.faults.set(f);
    Ok(Json(okta.0.faults.get()))
}

/// `GET /sandbox/v1/state`: factors and hooks, no secrets.
async fn state(State(okta): State<Okta>) -> Json<Value> {
    let org = okta.org();
    Json(json!({
        "factors": org.factors.iter().map(|f| prereg::factor_json(&okta, f)).collect::<Vec<_>>(),
        "hooks": org.hooks.iter().map(|h| &h.hook).collect::<Vec<_>>(),
        "trusted_signing_kids": okta.trusted_signing().keys().iter().map(|k| k.kid().to_owned()).collect::<Vec<_>>(),
    }))
}
