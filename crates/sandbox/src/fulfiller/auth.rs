//! `Authorization: Bearer <token>`, tokens from the seed; 401 otherwise.

use super::Fulfiller;
use super::routes::Failure;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use yubienterprise::{ApiError, ErrorCode};

/// The middleware.
pub(crate) async fn require_token(
    State(state): State<Fulfiller>,
    req: Request,
    next: Next,
) -> Response {
    match bearer(&req) {
        Some(t) if state.store.token_ok(t) => next.run(req).await,
        Some(_) => unauthorized("The API token is not valid for this organization"),
        None => unauthorized("Missing API token: send Authorization: Bearer <token>"),
    }
}

/// The token of an `Authorization: Bearer <token>` header, if the request has one.
pub(crate) fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
}

/// A 401 in the documented shape, with `WWW-Authenticate: Bearer`.
pub(crate) fn unauthorized(message: &str) -> Response {
    let mut resp = Failure(ApiError::new(ErrorCode::Unauthorized, message)).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    resp
}
