//! One `http` tracing span per HTTP request: its id (`http_request_id`, also answered
//! in the `x-request-id` header; a well-formed one sent by a proxy is kept), the
//! method, the route template (`/v1/fpr/shipments/{id}`, never the query string, which
//! may carry an OIDC code), then the status and duration. Everything a handler and the
//! services log while serving it nests inside. No header, body or secret is a field.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header carrying the request's id.
pub const REQUEST_ID: &str = "x-request-id";

/// The middleware (`axum::middleware::from_fn(trace::http)` on the whole router).
pub async fn http(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "http",
        http_request_id = %id,
        method = %req.method(),
        route = %route,
        status = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.record("status", resp.status().as_u16());
    span.record(
        "duration_ms",
        u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    );
    span.in_scope(|| tracing::info!("request finished"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// A proxy's request id is kept when it is short and plain (letters, digits, `-`, `_`,
/// `.`): nothing else reaches the logs.
fn well_formed(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
