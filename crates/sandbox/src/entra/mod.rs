//! The Microsoft Entra sandbox (issue #5): the token service, Microsoft Graph (users,
//! manager, groups, FIDO2 methods) and the end user's sign-in, on one HTTP server.
//!
//! Routes:
//! - token service: `POST /{tenant}/oauth2/v2.0/token` (client credentials with a client
//!   secret; authorization code with PKCE for web sign-in), `GET|POST
//!   /{tenant}/oauth2/v2.0/authorize` (a sign-in form for seeded users, [`authorize`]), `GET /{tenant}/v2.0/.well-known/openid-configuration`,
//!   `GET /{tenant}/discovery/v2.0/keys`; `{tenant}` is the tenant id or the domain.
//! - Graph, under `/v1.0` and `/beta`, bearer token with `aud` Graph:
//!   `GET /users/{id|upn}` (`$select`), `GET /users/{id|upn}/manager`,
//!   `GET /groups` (`$filter=displayName eq '...'`), `GET /groups/{id}`,
//!   `GET /groups/{id}/members`, `GET|POST /users/{id|upn}/authentication/fido2Methods`,
//!   `GET|DELETE .../fido2Methods/{id}`, `GET .../fido2Methods/creationOptions` and (beta)
//!   `creationOptions(challengeTimeoutInMinutes=N)`. Errors in Graph's shape; faults
//!   (500, 429 `TooManyRequests` with `Retry-After`) apply here.
//! - sandbox-only, never faulted, no token (loopback tooling): `POST
//!   /sandbox/v1/signin/begin|finish`, `GET /sandbox/v1/clock`, `POST
//!   /sandbox/v1/clock/advance`, `POST /sandbox/v1/keys/rotate`, `POST
//!   /sandbox/v1/tokens/revoke`, `GET|PUT /sandbox/v1/fido2-policy`, `GET|PUT
//!   /sandbox/v1/faults`, `GET /sandbox/v1/state`.

mod admin;
pub mod authorize;
pub(crate) mod certs;
mod challenge;
pub mod clock;
mod directory;
mod fido2;
pub mod seed;
pub mod signin;
mod tokens;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use graph::{ApiVersion, GraphErrorBody, InnerError};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

use crate::faults::{self, FaultBodies, Faults};
use challenge::ChallengeKey;
pub use clock::Clock;
pub use seed::{Fido2Policy, SeedError, TenantSeed};
use tokens::KeyRing;

/// The sandbox's state. Cheap to clone.
#[derive(Clone)]
pub struct Entra(Arc<Inner>);

struct Inner {
    base_url: String,
    seed: RwLock<TenantSeed>,
    keys: RwLock<KeyRing>,
    methods: Mutex<Methods>,
    clock: Clock,
    faults: Faults,
    challenges: ChallengeKey,
    /// Authorization codes issued by the sign-in form, not yet redeemed.
    codes: Mutex<std::collections::HashMap<String, authorize::PendingCode>>,
}

/// A registered FIDO2 method: what Graph shows plus what sign-in needs.
#[derive(Debug, Clone)]
pub struct StoredMethod {
    pub id: String,
    pub user_id: String,
    pub display_name: Option<String>,
    pub created: u64,
    pub aaguid: Uuid,
    pub model: Option<String>,
    pub attested: bool,
    /// SHA-1 thumbprints (hex) of the x5c certificates.
    pub thumbprints: Vec<String>,
    pub credential_id: Vec<u8>,
    pub public_key_cose: Vec<u8>,
    pub sign_count: u32,
    /// Transports the client reported at registration (`response.transports`).
    pub transports: Vec<String>,
}

#[derive(Default)]
struct Methods {
    list: Vec<StoredMethod>,
    /// Nonces of challenges already used, with their expiry (pruned after it).
    used: Vec<([u8; 16], u64)>,
}

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum EntraError {
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("Entra sandbox keys: {0}")]
    Keys(String),
}

impl Entra {
    /// The tenant of `seed`, served at `base_url` (`http://127.0.0.1:PORT`, the issuer
    /// prefix).
    pub fn new(seed: TenantSeed, base_url: &str, faults: Faults) -> Result<Self, EntraError> {
        seed.check()?;
        Ok(Self(Arc::new(Inner {
            base_url: base_url.trim_end_matches('/').to_owned(),
            seed: RwLock::new(seed),
            keys: RwLock::new(KeyRing::new().map_err(EntraError::Keys)?),
            methods: Mutex::new(Methods::default()),
            clock: Clock::default(),
            faults,
            challenges: ChallengeKey::generate().map_err(EntraError::Keys)?,
            codes: Mutex::new(std::collections::HashMap::new()),
        })))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.0.base_url.clone()
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> String {
        self.seed().tenant_id.clone()
    }

    /// `{base}/{tid}/v2.0`, the `iss` of every token.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.0.base_url, self.seed().tenant_id)
    }

    /// The sandbox clock.
    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }

    /// The live fault setting of the Graph routes.
    pub fn faults(&self) -> &Faults {
        &self.0.faults
    }

    /// The tenant as seeded (with the current FIDO2 policy).
    pub fn seed(&self) -> RwLockReadGuard<'_, TenantSeed> {
        self.0
            .seed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn seed_mut(&self) -> RwLockWriteGuard<'_, TenantSeed> {
        self.0
            .seed
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keys(&self) -> RwLockReadGuard<'_, KeyRing> {
        self.0
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn keys_mut(&self) -> RwLockWriteGuard<'_, KeyRing> {
        self.0
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn codes(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, authorize::PendingCode>> {
        self.0
            .codes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn methods(&self) -> std::sync::MutexGuard<'_, Methods> {
        self.0
            .methods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a seeded user (UPN or id) to a seeded group, as an admin would in the Entra
    /// admin center; false when either is unknown. Tests of the group trigger use it.
    pub fn add_group_member(&self, group_id: &str, user: &str) -> bool {
        if self.find_user(user).is_none() {
            return false;
        }
        let mut s = self.seed_mut();
        let Some(g) = s
            .groups
            .iter_mut()
            .find(|g| g.id.eq_ignore_ascii_case(group_id))
        else {
            return false;
        };
        if !g.members.iter().any(|m| m.eq_ignore_ascii_case(user)) {
            g.members.push(user.to_owned());
        }
        true
    }

    /// Every registered method (tests and `/sandbox/v1/state` read it).
    pub fn registered_methods(&self) -> Vec<StoredMethod> {
        self.methods().list.clone()
    }

    fn is_tenant(&self, t: &str) -> bool {
        let s = self.seed();
        s.tenant_id.eq_ignore_ascii_case(t) || s.domain.eq_ignore_ascii_case(t)
    }

    /// The seeded user with this object id or UPN (case-insensitive).
    fn find_user(&self, key: &str) -> Option<seed::SeedUser> {
        let s = self.seed();
        s.users
            .iter()
            .find(|u| {
                u.user.id.eq_ignore_ascii_case(key)
                    || u.user
                        .user_principal_name
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(key))
            })
            .cloned()
    }
}

/// A fresh GUID (request ids, method ids).
pub(crate) fn guid() -> String {
    let b = crate::rng::bytes::<16>().unwrap_or([0x42; 16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// A Graph error answer.
#[derive(Debug)]
pub(crate) struct GraphFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// A finer reason in `innerError.code` (e.g. `challengeExpired`).
    pub reason: Option<&'static str>,
}

impl GraphFailure {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            reason: None,
        }
    }

    /// 400 `invalidRequest` with a reason.
    pub(crate) fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new(StatusCode::BAD_REQUEST, "invalidRequest", message)
        }
    }

    pub(crate) fn user_not_found(user: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{user}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }
}

/// The Graph error body with `innerError` dates and ids.
pub(crate) fn graph_error_body(code: &str, message: &str, reason: Option<&str>) -> GraphErrorBody {
    let id = guid();
    let mut body = GraphErrorBody::new(code, message);
    body.error.inner_error = Some(InnerError {
        code: reason.map(str::to_owned),
        message: Some(message.to_owned()),
        date: Some(
            crate::time::rfc3339(crate::time::now())
                .trim_end_matches('Z')
                .to_owned(),
        ),
        request_id: Some(id.clone()),
        client_request_id: Some(id),
        ..InnerError::default()
    });
    body
}

impl IntoResponse for GraphFailure {
    fn into_response(self) -> Response {
        let body = graph_error_body(&self.code, &self.message, self.reason);
        (self.status, axum::Json(body)).into_response()
    }
}

/// Graph's wording for injected faults.
const GRAPH_BODIES: FaultBodies = FaultBodies {
    internal_error: || {
        GraphFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            "injected fault: an internal server error occurred",
        )
        .into_response()
    },
    too_many_requests: |_secs| {
        let mut body =
            graph_error_body("TooManyRequests", "Please retry again later.", Some("429"));
        if let Some(inner) = body.error.inner_error.as_mut() {
            inner.message = Some("Please retry after".into());
            inner.other.insert("status".into(), "429".into());
        }
        (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
    },
};

async fn graph_faults(State(entra): State<Entra>, req: Request, next: Next) -> Response {
    faults::inject_with(&entra.0.faults, GRAPH_BODIES, req, next).await
}

/// Validates the bearer token for Graph and hands the caller to the handlers.
async fn require_graph_token(State(entra): State<Entra>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default();
    if token.is_empty() {
        return unauthorized("Access token is empty.");
    }
    match tokens::validate(&entra, token, graph::GRAPH_APP_ID) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(message) => unauthorized(&message),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = GraphFailure::new(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\""),
    );
    r
}

async fn method_not_allowed() -> GraphFailure {
    GraphFailure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "methodNotAllowed",
        "The method is not supported for this URL.",
    )
}

async fn unknown_segment(uri: axum::http::Uri) -> GraphFailure {
    let last = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    GraphFailure::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{last}'."),
    )
}

fn graph_routes(entra: &Entra, version: ApiVersion) -> Router<Entra> {
    Router::new()
        .route("/users/{user}", get(directory::user))
        .route("/users/{user}/manager", get(directory::manager))
        .route("/groups", get(directory::groups))
        .route("/groups/{group}", get(directory::group))
        .route("/groups/{group}/members", get(directory::members))
        .route(
            "/users/{user}/authentication/fido2Methods",
            get(fido2::list).post(fido2::register),
        )
        .route(
            "/users/{user}/authentication/fido2Methods/{method}",
            get(fido2::get_method).delete(fido2::delete),
        )
        .route_layer(from_fn_with_state(entra.clone(), require_graph_token))
        .layer(axum::Extension(version))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(unknown_segment)
}

/// The Entra sandbox's router.
pub fn router(entra: Entra) -> Router {
    let graph = Router::new()
        .nest("/v1.0", graph_routes(&entra, ApiVersion::V1))
        .nest("/beta", graph_routes(&entra, ApiVersion::Beta))
        .layer(from_fn_with_state(entra.clone(), graph_faults));
    let login = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(tokens::token))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::authorize_form).post(authorize::authorize_submit),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(tokens::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(tokens::jwks))
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(tokens::openid_configuration_v1),
        )
        .route("/{tenant}/discovery/keys", get(tokens::jwks));
    let sandbox = Router::new()
        .route("/sandbox/v1/signin/begin", post(signin::begin))
        .route("/sandbox/v1/signin/finish", post(signin::finish))
        .route("/sandbox/v1/clock", get(admin::clock))
        .route("/sandbox/v1/clock/advance", post(admin::advance_clock))
        .route("/sandbox/v1/keys/rotate", post(admin::rotate_keys))
        .route("/sandbox/v1/tokens/revoke", post(admin::revoke_tokens))
        .route(
            "/sandbox/v1/fido2-policy",
            get(admin::get_policy).put(admin::set_policy),
        )
        .route(
            "/sandbox/v1/faults",
            get(admin::get_faults).put(admin::set_faults),
        )
        .route(
            "/sandbox/v1/apps/{app}",
            axum::routing::patch(admin::patch_app),
        )
        .route(
            "/sandbox/v1/apps/{app}/certificates",
            post(admin::add_certificate),
        )
        .route("/sandbox/v1/state", get(admin::state));
    graph.merge(login).merge(sandbox).with_state(entra)
}

/// The model name Entra shows for a Yubico AAGUID (FIDO MDS descriptions, entra.md §7).
pub(crate) fn model_for(aaguid: &Uuid) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        (
            "fa2b99dc-9e39-4257-8f92-4a30d23c4118",
            "YubiKey 5 Series with NFC",
        ),
        (
            "2fc0579f-8113-47ea-b116-bb5a8db9202a",
            "YubiKey 5 Series with NFC",
        ),
        (
            "a25342c0-3cdc-4414-8e46-f4807fca511c",
            "YubiKey 5 Series with NFC",
        ),
        (
            "d7781e5d-e353-46aa-afe2-3ca49f13332a",
            "YubiKey 5 Series with NFC",
        ),
        (
            "1ac71f64-468d-4fe0-bef1-0e5f2f551f18",
            "YubiKey 5 Series with NFC - Enterprise Profile",
        ),
        (
            "6ab56fad-881f-4a43-acb2-0be065924522",
            "YubiKey 5 Series with NFC - Enterprise Profile",
        ),
        (
            "662ef48a-95e2-4aaa-a6c1-5b9c40375824",
            "YubiKey 5 Series with NFC - Enhanced PIN",
        ),
        (
            "b2c1a50b-dad8-4dc7-ba4d-0ce9597904bc",
            "YubiKey 5 Series with NFC - Enhanced PIN (Enterprise Profile)",
        ),
        ("cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series"),
        ("ee882879-721c-4913-9775-3dfcce97072a", "YubiKey 5 Series"),
        ("19083c3d-8383-4b18-bc03-8f1c9ab2fd1b", "YubiKey 5 Series"),
        ("ff4dac45-ede8-4ec2-aced-cf66103f4335", "YubiKey 5 Series"),
        ("c5ef55ff-ad9a-4b9f-b580-adebafe026d0", "YubiKey 5Ci"),
        ("a02167b9-ae71-4ac7-9a07-06432ebb6f1c", "YubiKey 5Ci"),
        (
            "c1f9a0bc-1dd2-404a-b27f-8e29047a43fd",
            "YubiKey 5 FIPS Series with NFC",
        ),
        (
            "fcc0118f-cd45-435b-8da1-9782b2da0715",
            "YubiKey 5 FIPS Series with NFC",
        ),
        (
            "73bb0cd4-e502-49b8-9c6f-b59445bf720b",
            "YubiKey 5 FIPS Series",
        ),
        (
            "6d44ba9b-f6ec-2e49-b930-0c8fe920cb73",
            "Security Key NFC by Yubico",
        ),
        (
            "149a2021-8ef6-4133-96b8-81f8d5b7f1f5",
            "Security Key NFC by Yubico",
        ),
        (
            "a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa",
            "Security Key NFC by Yubico",
        ),
        (
            "e77e3c64-05e3-428b-8824-0cbeb04b829d",
            "Security Key NFC by Yubico",
        ),
        (
            "0bb43545-fd2c-4185-87dd-feb0b2916ace",
            "Security Key NFC by Yubico - Enterprise Edition",
        ),
        (
            "47ab2fb4-66ac-4184-9ae1-86be814012d5",
            "Security Key NFC by Yubico - Enterprise Edition",
        ),
        (
            "d8522d9f-575b-4866-88a9-ba99fa02f35b",
            "YubiKey Bio Series - FIDO Edition",
        ),
    ];
    let text = aaguid.to_string();
    TABLE.iter().find(|(a, _)| *a == text).map(|(_, m)| *m)
}

/// The `entra` member of `prereg sandbox`'s ready line: where everything is, and the two
/// app registrations from the guide with their (sandbox-only) secrets.
pub fn ready_info(entra: &Entra) -> serde_json::Value {
    let base = entra.base_url();
    let seed = entra.seed();
    let tid = &seed.tenant_id;
    let app = |a: Option<&seed::SeedApp>| {
        a.map(|a| {
            serde_json::json!({
                "display_name": a.display_name,
                "client_id": a.client_id,
                "client_secret": a.client_secret,
                "object_id": a.object_id,
                "graph_permissions": a.graph_permissions,
                "identifier_uri": a.identifier_uri,
                "app_roles": a.app_roles,
                "scopes": a.scopes,
            })
        })
    };
    let connector = seed.connector_app();
    serde_json::json!({
        "base_url": base,
        "tenant_id": tid,
        "domain": seed.domain,
        "authority_host": base,
        "authority_url": format!("{base}/{tid}"),
        "token_url": format!("{base}/{tid}/oauth2/v2.0/token"),
        "authorize_url": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "user_password": authorize::SANDBOX_PASSWORD,
        "users": seed.users.iter().filter_map(|u| u.user.user_principal_name.clone()).collect::<Vec<_>>(),
        "user_ids": seed.users.iter().filter_map(|u| Some((u.user.user_principal_name.clone()?, serde_json::Value::from(u.user.id.clone())))).collect::<serde_json::Map<_, _>>(),
        "issuer": entra.issuer(),
        "openid_configuration_url": format!("{base}/{tid}/v2.0/.well-known/openid-configuration"),
        "jwks_url": format!("{base}/{tid}/discovery/v2.0/keys"),
        "graph_url": base,
        "graph_scope": format!("{}/.default", graph::GRAPH_RESOURCE),
        "sandbox_url": format!("{base}/sandbox/v1"),
        "connector_app": app(connector),
        "connector_api_scope": connector.and_then(|c| c.identifier_uri.as_ref()).map(|u| format!("{u}/.default")),
        "test_client_app": app(seed.test_client_app()),
        "fido2_policy": seed.fido2_policy,
    })
}
