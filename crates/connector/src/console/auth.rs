//! Console sign-in and sessions.
//!
//! - Local admin: `admin_user` + `admin_password_hash` (argon2 PHC), checked off the
//!   async workers.
//! - OIDC: authorization code with PKCE (S256), `state` and `nonce` kept in a short-lived
//!   HttpOnly cookie; the `id_token` is verified (RS256, the issuer's JWKS, `iss`, `aud`,
//!   `exp`, `nonce`) and its user must be in `oidc_allowed_users`, by `oid` or `sub`
//!   (by `preferred_username` or `email` only when `oidc_issuer_verifies_email`: those
//!   claims are not verified for guests).
//! - Sessions: 32 random bytes in the `prereg_console` cookie (HttpOnly, SameSite=Lax,
//!   Path=/console, Secure when the client uses HTTPS: the connector's TLS, or a trusted
//!   proxy's `X-Forwarded-Proto`, see [`crate::edge`]); the table keeps only their
//!   SHA-256.
//! - CSRF: every form carries `csrf` = SHA-256("csrf" ‖ session id) (htmx sends it as
//!   `X-CSRF-Token`); the sign-in form uses a double-submit cookie.
//! - Throttling ([`super::throttle`]): too many failed sign-ins for a user name, or from
//!   a client address (also failed OIDC callbacks), are answered 429 without checking
//!   the password. The address is the TCP peer's, or behind a trusted proxy the real
//!   client's ([`crate::edge::Client`]).

use super::pages::{Page, render};
use super::throttle::{Attempt, Refused};
use crate::app::AppState;
use crate::edge::Client;
use askama::Template;
use axum::extract::{Form, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::sync::Arc;

/// The session cookie.
pub const SESSION_COOKIE: &str = "prereg_console";
const LOGIN_COOKIE: &str = "prereg_console_login";
const OIDC_COOKIE: &str = "prereg_console_oidc";

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Who (local user name, or the OIDC user's UPN / e-mail, followed by their object
    /// id when the issuer does not verify those).
    pub user: String,
    /// The CSRF token of this session (for forms).
    pub csrf: String,
}

pub(super) fn random_token() -> Result<String, Response> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|_| internal("the random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

pub(super) fn sha256_b64(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    URL_SAFE_NO_PAD.encode(h.finalize())
}

fn csrf_for(session_id: &str) -> String {
    sha256_b64(&[b"prereg console csrf\0", session_id.as_bytes()])
}

fn id_hash(session_id: &str) -> String {
    sha256_b64(&[b"prereg console session\0", session_id.as_bytes()])
}

/// Constant-time equality of two tokens.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(client: &Client, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if client.https { "; Secure" } else { "" };
    let v =
        format!("{name}={value}; Path=/console; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn internal(what: &str) -> Response {
    tracing::error!(error = %what, "console internal error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; see the connector's log",
    )
        .into_response()
}

fn db(e: impl std::fmt::Display) -> Response {
    internal(&format!("database: {e}"))
}

fn unauthenticated(method: &Method, headers: &HeaderMap) -> Response {
    if headers.contains_key("hx-request") {
        // htmx: send the whole page to the sign-in form, not into a fragment.
        return (
            StatusCode::UNAUTHORIZED,
            [("hx-redirect", "/console/login")],
            "401: sign in to the console first (/console/login)",
        )
            .into_response();
    }
    if method == Method::GET || method == Method::HEAD {
        Redirect::to("/console/login").into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "401: sign in to the console first (/console/login)",
        )
            .into_response()
    }
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
            return Err(unauthenticated(&parts.method, &parts.headers));
        };
        let row = sqlx::query(
            "SELECT user_name FROM console_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash(&id))
        .bind(crate::store::now())
        .fetch_optional(state.store.pool())
        .await
        .map_err(db)?;
        let Some(row) = row else {
            return Err(unauthenticated(&parts.method, &parts.headers));
        };
        let user: String = row.try_get("user_name").map_err(db)?;
        Ok(Admin {
            user,
            csrf: csrf_for(&id),
        })
    }
}

/// Refuses (403) a state-changing request whose CSRF token (form field `csrf` or header
/// `X-CSRF-Token`) is not this session's.
pub fn check_csrf(admin: &Admin, headers: &HeaderMap, form: Option<&str>) -> Result<(), Response> {
    let header = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    match form.or(header) {
        Some(t) if same(t, &admin.csrf) => Ok(()),
        _ => Err((
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "403: this form is missing its CSRF token or the token is not this session's; reload the page and try again",
        )
            .into_response()),
    }
}

async fn create_session(
    state: &AppState,
    client: &Client,
    user: &str,
    method: &str,
) -> Result<Response, Response> {
    let id = random_token()?;
    let now = crate::store::now();
    let minutes = state
        .config
        .console
        .as_ref()
        .map_or(480, |c| c.session_minutes);
    let life = i64::from(minutes) * 60;
    // Expired sessions go when anyone signs in.
    sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(state.store.pool())
        .await
        .map_err(db)?;
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, user_name, method, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash(&id))
    .bind(user)
    .bind(method)
    .bind(now)
    .bind(now + life)
    .execute(state.store.pool())
    .await
    .map_err(db)?;
    tracing::info!(user = %user, method = %method, "console sign-in");
    let mut r = Redirect::to("/console/shipments").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(client, SESSION_COOKIE, &id, life),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(client, LOGIN_COOKIE, "", 0));
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(client, OIDC_COOKIE, "", 0));
    Ok(r)
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    page: Page,
    local: bool,
    oidc: Option<String>,
    login_csrf: String,
    error: Option<String>,
}

fn login_response(
    state: &AppState,
    client: &Client,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, Response> {
    let c = state.config.console.clone().unwrap_or_default();
    let token = random_token()?;
    let page = LoginPage {
        page: Page::anonymous("Sign in"),
        local: c.admin_user.is_some(),
        oidc: c.oidc.as_ref().map(|o| o.issuer.clone()),
        login_csrf: token.clone(),
        error,
    };
    let mut r = (status, render(&page)?).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(client, LOGIN_COOKIE, &token, 1800),
    );
    Ok(r)
}

/// The sign-in page again, 429, saying when to try again (with `Retry-After`).
fn throttled(state: &AppState, client: &Client, r: &Refused) -> Result<Response, Response> {
    let wait = (r.until - crate::store::now()).max(1);
    let minutes = (wait + 59) / 60;
    let at = chrono::DateTime::from_timestamp(r.until, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let whose = if r.user {
        "for this user name"
    } else {
        "from your network address"
    };
    tracing::warn!(
        by_user_name = r.user,
        "console sign-in refused: too many failed attempts"
    );
    let message = format!(
        "Too many failed sign-ins {whose}. Try again after {at} (in about {minutes} minute{}); until then every attempt is refused without checking the password.",
        if minutes == 1 { "" } else { "s" }
    );
    let mut resp = login_response(state, client, StatusCode::TOO_MANY_REQUESTS, Some(message))?;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    Ok(resp)
}

/// `GET /console/login`.
pub async fn login_page(State(s): State<Arc<AppState>>, client: Client) -> Response {
    login_response(&s, &client, StatusCode::OK, None).unwrap_or_else(|r| r)
}

/// The local sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/login`: the local admin account (throttled: see
/// [`super::throttle`]).
pub async fn login_local(
    State(s): State<Arc<AppState>>,
    client: Client,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let go = async {
        let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
        if expected.is_empty() || !same(&expected, &f.csrf) {
            return Ok((
                StatusCode::FORBIDDEN,
                "403: the sign-in form is missing its CSRF token; reload /console/login",
            )
                .into_response());
        }
        let c = s.config.console.clone().unwrap_or_default();
        let (Some(user), Some(hash)) = (c.admin_user, c.admin_password_hash) else {
            return login_response(
                &s,
                &client,
                StatusCode::UNAUTHORIZED,
                Some(
                    "This installation has no local admin account; use the identity provider."
                        .into(),
                ),
            );
        };
        // Counted (as a failure until it succeeds) before the password is checked.
        let attempt = match Attempt::begin(&s, Some(&f.user), client.addr).await? {
            Ok(a) => a,
            Err(refused) => return throttled(&s, &client, &refused),
        };
        let password = zeroize::Zeroizing::new(f.password);
        let ok_user = same(f.user.trim(), &user);
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        if ok && ok_user {
            attempt.succeeded(&s).await?;
            create_session(&s, &client, &user, "local").await
        } else {
            tracing::warn!("console sign-in refused: wrong user name or password");
            login_response(
                &s,
                &client,
                StatusCode::UNAUTHORIZED,
                Some("Wrong user name or password.".into()),
            )
        }
    };
    go.await.unwrap_or_else(|r| r)
}

/// Checks a password against an argon2 PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// An argon2id PHC string for `password` (`prereg console hash-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| "the random generator failed".to_owned())?;
    let salt = argon2::password_hash::SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// The sign-out form.
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// `POST /console/logout`.
pub async fn logout(
    State(s): State<Arc<AppState>>,
    client: Client,
    admin: Admin,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Err(r) = check_csrf(&admin, &headers, f.csrf.as_deref()) {
        return r;
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash(&id))
            .execute(s.store.pool())
            .await
    {
        return db(e);
    }
    let mut r = Redirect::to("/console/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&client, SESSION_COOKIE, "", 0),
    );
    r
}

// ---- OIDC ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

async fn discover(s: &AppState, issuer: &str) -> Result<Discovery, String> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    s.http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("reading the issuer's OpenID configuration at {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("reading the issuer's OpenID configuration at {url}: {e}"))
}

fn redirect_uri(client: &Client, o: &super::OidcConfig, headers: &HeaderMap) -> String {
    if let Some(u) = &o.redirect_url {
        return u.clone();
    }
    let scheme = if client.https { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}/console/oidc/callback")
}

/// `application/x-www-form-urlencoded` (also a query string).
pub(crate) fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn oidc_failed(s: &AppState, client: &Client, message: String) -> Response {
    tracing::warn!(error = %message, "console OIDC sign-in failed");
    login_response(s, client, StatusCode::UNAUTHORIZED, Some(message)).unwrap_or_else(|r| r)
}

/// `GET /console/oidc/start`: off to the issuer's sign-in page.
pub async fn oidc_start(
    State(s): State<Arc<AppState>>,
    client: Client,
    headers: HeaderMap,
) -> Response {
    let Some(o) = s.config.console.as_ref().and_then(|c| c.oidc.clone()) else {
        return (StatusCode::NOT_FOUND, "OIDC sign-in is not configured").into_response();
    };
    let d = match discover(&s, &o.issuer).await {
        Ok(d) => d,
        Err(e) => return oidc_failed(&s, &client, e),
    };
    let (Ok(st), Ok(nonce), Ok(verifier)) = (random_token(), random_token(), random_token()) else {
        return internal("the random generator failed");
    };
    let challenge = sha256_b64(&[verifier.as_bytes()]);
    let redirect = redirect_uri(&client, &o, &headers);
    let q = form_encode(&[
        ("client_id", &o.client_id),
        ("response_type", "code"),
        ("redirect_uri", &redirect),
        ("response_mode", "query"),
        ("scope", "openid profile email"),
        ("state", &st),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let sep = if d.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let mut r = Redirect::to(&format!("{}{sep}{q}", d.authorization_endpoint)).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &client,
            OIDC_COOKIE,
            &format!("{st}.{nonce}.{verifier}"),
            600,
        ),
    );
    r
}

/// The issuer's answer.
#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct IdClaims {
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    oid: Option<String>,
    sub: String,
}

/// `GET /console/oidc/callback`: code → tokens → a verified id_token → a session. A
/// callback that fails counts against the client's address (the identity provider
/// checks passwords; this stops forged or replayed callbacks).
pub async fn oidc_callback(
    State(s): State<Arc<AppState>>,
    client: Client,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Response {
    let Some(o) = s.config.console.as_ref().and_then(|c| c.oidc.clone()) else {
        return (StatusCode::NOT_FOUND, "OIDC sign-in is not configured").into_response();
    };
    let attempt = match Attempt::begin(&s, None, client.addr).await {
        Ok(Ok(a)) => a,
        Ok(Err(refused)) => return throttled(&s, &client, &refused).unwrap_or_else(|r| r),
        Err(r) => return r,
    };
    if let Some(e) = cb.error {
        return oidc_failed(
            &s,
            &client,
            format!(
                "The identity provider refused the sign-in: {e}: {}",
                cb.error_description.unwrap_or_default()
            ),
        );
    }
    let pending = cookie(&headers, OIDC_COOKIE).unwrap_or_default();
    let mut it = pending.splitn(3, '.');
    let (Some(st), Some(nonce), Some(verifier)) = (it.next(), it.next(), it.next()) else {
        return oidc_failed(
            &s,
            &client,
            "The sign-in expired or was started in another browser; start again.".into(),
        );
    };
    if !cb.state.as_deref().is_some_and(|v| same(v, st)) {
        return oidc_failed(&s, &client, "The sign-in answer does not belong to this browser's sign-in (state mismatch); start again.".into());
    }
    let Some(code) = cb.code else {
        return oidc_failed(
            &s,
            &client,
            "The identity provider sent no authorization code.".into(),
        );
    };
    match finish_oidc(&s, &client, &o, &headers, &code, nonce, verifier).await {
        Ok(user) => match attempt.succeeded(&s).await {
            Ok(()) => create_session(&s, &client, &user, "oidc")
                .await
                .unwrap_or_else(|r| r),
            Err(r) => r,
        },
        Err(e) => oidc_failed(&s, &client, e),
    }
}

async fn finish_oidc(
    s: &AppState,
    client: &Client,
    o: &super::OidcConfig,
    headers: &HeaderMap,
    code: &str,
    nonce: &str,
    verifier: &str,
) -> Result<String, String> {
    let d = discover(s, &o.issuer).await?;
    let redirect = redirect_uri(client, o, headers);
    let body = form_encode(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect),
        ("client_id", &o.client_id),
        ("client_secret", o.client_secret.expose_secret()),
        ("code_verifier", verifier),
    ]);
    let r = s
        .http
        .post(&d.token_endpoint)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("calling the issuer's token endpoint: {e}"))?;
    let status = r.status();
    let v: serde_json::Value = r
        .json()
        .await
        .map_err(|e| format!("reading the issuer's token answer: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "The identity provider refused the code ({status}): {}",
            v["error_description"]
                .as_str()
                .or(v["error"].as_str())
                .unwrap_or("no reason given")
        ));
    }
    let token = v["id_token"]
        .as_str()
        .ok_or("The identity provider's answer has no id_token.")?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| "The id_token is not a JWT.")?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err("The id_token is not signed with RS256.".into());
    }
    let kid = header.kid.ok_or("The id_token names no signing key.")?;
    let jwks: graph::token::Jwks = s
        .http
        .get(&d.jwks_uri)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("fetching the issuer's signing keys: {e}"))?
        .json()
        .await
        .map_err(|e| format!("reading the issuer's signing keys: {e}"))?;
    let k = jwks
        .keys
        .iter()
        .find(|k| k.kid == kid && k.kty == "RSA")
        .ok_or("The id_token is signed by a key the issuer does not publish.")?;
    let key = jsonwebtoken::DecodingKey::from_rsa_components(&k.n, &k.e)
        .map_err(|_| "The issuer's signing key is not a valid RSA key.")?;
    let mut val = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    val.set_issuer(&[&o.issuer]);
    val.set_audience(&[&o.client_id]);
    val.leeway = 60;
    val.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &val)
        .map_err(|e| format!("The id_token does not verify: {e}"))?
        .claims;
    if !claims.nonce.as_deref().is_some_and(|n| same(n, nonce)) {
        return Err("The id_token's nonce is not this sign-in's.".into());
    }
    let (allowed, label) = allowed_user(o, &claims);
    if !allowed {
        return Err(format!(
            "{label} signed in at the identity provider but is not allowed to use this console (console.oidc_allowed_users)."
        ));
    }
    Ok(label)
}

/// Whether the id_token's user is in `oidc_allowed_users`, and the name the session
/// shows. The object id (`oid`) and subject (`sub`) always count; `preferred_username`
/// and `email` only when the issuer is marked as verifying them
/// (`oidc_issuer_verifies_email`): Entra lets a guest's, and in some tenants a user's,
/// be set to anything, so matching them would let anyone who can sign in at the issuer
/// claim an allowed admin's name.
fn allowed_user(o: &super::OidcConfig, claims: &IdClaims) -> (bool, String) {
    let id = claims.oid.as_deref().unwrap_or(&claims.sub);
    let name = claims
        .preferred_username
        .as_deref()
        .or(claims.email.as_deref());
    let mut matched: Vec<&str> = [claims.oid.as_deref(), Some(claims.sub.as_str())]
        .into_iter()
        .flatten()
        .collect();
    if o.issuer_verifies_email {
        matched.extend(
            [
                claims.preferred_username.as_deref(),
                claims.email.as_deref(),
            ]
            .into_iter()
            .flatten(),
        );
    }
    let allowed = o
        .allowed_users
        .iter()
        .any(|a| matched.iter().any(|n| n.eq_ignore_ascii_case(a.trim())));
    let label = match name {
        Some(n) if o.issuer_verifies_email => n.to_owned(),
        // An unverified name is shown, but with the id the session really belongs to.
        Some(n) => format!("{n} ({id})"),
        None => id.to_owned(),
    };
    (allowed, label)
}

/// Security headers on every console answer; pages are never cached.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}
