//! Fault injection, shared by every sandbox: a fraction of requests answered 500, a
//! fraction answered 429 with `Retry-After`, added latency, and a fraction of dropped
//! connections (the status line goes out, then the body breaks off and the connection
//! closes), before the request is handled or after (the server acted, the client never
//! hears). Set per run (`Config`, copied to each server) and changed live with
//! `PUT /sandbox/v1/faults` on the server concerned. Applies to the service routes (on
//! the Entra sandbox: Graph), never to `/sandbox/` (so a test can always turn it off).
//! Each sandbox words the 500 and 429 bodies its own way ([`FaultBodies`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use yubienterprise::{ApiError, ErrorCode};

/// What to inject. Rates are fractions in [0, 1]; out-of-range values are clamped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Fraction of requests answered `500 internal_error`.
    pub error_rate: f64,
    /// Fraction answered `429 rate_limited` with `Retry-After`.
    pub rate_limit_rate: f64,
    /// The `Retry-After` value, seconds (default 1).
    pub retry_after_secs: Option<u64>,
    /// Added to every request before anything else, milliseconds.
    pub latency_ms: u64,
    /// Fraction of connections dropped mid-response.
    pub drop_rate: f64,
    /// Fraction of requests carried out and then dropped mid-response: the server
    /// acted (a shipment was created), the client never learns it.
    pub drop_after_rate: f64,
    /// The fulfiller only: act like a fulfiller that does not know the
    /// `customer_reference` field (it is dropped on create and ignored as a list
    /// filter, which then answers every shipment).
    pub ignore_customer_reference: bool,
    /// The fulfiller only: act like a fulfiller that does not know the
    /// `customer_reference` field and says so when asked to search by it (it is dropped
    /// on create, and `search_field=customer_reference` is answered `400
    /// validation_error`, as any field it cannot search).
    pub refuse_customer_reference: bool,
    /// One-shot faults for deterministic tests: the next matching requests get exactly
    /// this fault (checked before the rates above; each entry counts itself down and
    /// is gone when spent).
    pub script: Vec<ScriptedFault>,
}

/// A fault for the next requests that match (see [`FaultConfig::script`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    /// Only this HTTP method (any when absent), e.g. `POST`.
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths containing this text (every path when empty), e.g. `/fido2Methods`.
    #[serde(default)]
    pub path_contains: String,
    /// What happens.
    pub fault: FaultKind,
    /// How many matching requests get it (default 1).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// What a scripted fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answered 500 without acting.
    Error,
    /// Answered 429 with `Retry-After` (`retry_after_secs`, default 1) without acting.
    RateLimit,
    /// The connection dropped before the request is handled.
    Drop,
    /// The request is carried out, then the connection drops: the answer is lost.
    DropAfter,
}

impl ScriptedFault {
    /// `times` requests matching `method` and `path_contains` get `fault`.
    pub fn new(method: &str, path_contains: &str, fault: FaultKind, times: u32) -> Self {
        Self {
            method: Some(method.to_owned()),
            path_contains: path_contains.to_owned(),
            fault,
            times,
        }
    }
}

impl FaultConfig {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether the fulfiller acts as if it did not know `customer_reference` (ignoring
    /// or refusing its search).
    pub fn unknown_customer_reference(&self) -> bool {
        self.ignore_customer_reference || self.refuse_customer_reference
    }

    fn clamped(mut self) -> Self {
        for r in [
            &mut self.error_rate,
            &mut self.rate_limit_rate,
            &mut self.drop_rate,
            &mut self.drop_after_rate,
        ] {
            *r = if r.is_finite() {
                r.clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
        self
    }
}

/// The live setting of one server (clones share it).
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<RwLock<FaultConfig>>);

impl Faults {
    /// Starts with `config`.
    pub fn new(config: FaultConfig) -> Self {
        Self(Arc::new(RwLock::new(config.clamped())))
    }

    /// The current setting.
    pub fn get(&self) -> FaultConfig {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Takes the scripted fault for this request, if one matches (counting it down).
    fn take_scripted(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut c = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = c.script.iter().position(|f| {
            f.times > 0
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && path.contains(&f.path_contains)
        })?;
        let kind = c.script[i].fault;
        c.script[i].times -= 1;
        if c.script[i].times == 0 {
            c.script.remove(i);
        }
        Some(kind)
    }

    /// Adds one-shot faults to the live setting.
    pub fn script(&self, faults: impl IntoIterator<Item = ScriptedFault>) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .script
            .extend(faults);
    }

    /// Replaces the setting.
    pub fn set(&self, config: FaultConfig) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config.clamped();
    }
}

fn hit(rate: f64) -> bool {
    rate > 0.0 && crate::rng::unit() < rate
}

/// How a sandbox words the errors it injects: its own error body for 500 and 429.
#[derive(Debug, Clone, Copy)]
pub struct FaultBodies {
    /// The 500 answer.
    pub internal_error: fn() -> Response,
    /// The 429 answer for a `Retry-After` of this many seconds (the header is added).
    pub too_many_requests: fn(u64) -> Response,
}

/// The fulfiller's wording (`yubienterprise::ApiError`).
pub const YUBIENTERPRISE_BODIES: FaultBodies = FaultBodies {
    internal_error: || {
        let e = ApiError::new(ErrorCode::InternalError, "injected fault: internal error");
        (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(e)).into_response()
    },
    too_many_requests: |secs| {
        let e = ApiError::new(
            ErrorCode::RateLimited,
            format!("injected fault: too many requests; retry after {secs} s"),
        );
        (StatusCode::TOO_MANY_REQUESTS, axum::Json(e)).into_response()
    },
};

/// The middleware (`axum::middleware::from_fn_with_state(faults, inject)`), with the
/// fulfiller's error bodies.
pub async fn inject(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    inject_with(&faults, YUBIENTERPRISE_BODIES, req, next).await
}

/// The fault layer with a sandbox's own error bodies.
pub async fn inject_with(
    faults: &Faults,
    bodies: FaultBodies,
    req: Request,
    next: Next,
) -> Response {
    let f = faults.get();
    if f.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
    }
    let scripted = if f.script.is_empty() {
        None
    } else {
        faults.take_scripted(req.method().as_str(), req.uri().path())
    };
    match scripted {
        Some(FaultKind::Drop) => {
            tracing::debug!("scripted fault: dropping the connection");
            return dropped();
        }
        Some(FaultKind::Error) => {
            tracing::debug!("scripted fault: 500");
            return (bodies.internal_error)();
        }
        Some(FaultKind::RateLimit) => {
            tracing::debug!("scripted fault: 429");
            return too_many(bodies, f.retry_after_secs.unwrap_or(1));
        }
        Some(FaultKind::DropAfter) => {
            let _ = next.run(req).await;
            tracing::debug!("scripted fault: the request was carried out, its answer dropped");
            return dropped();
        }
        None => {}
    }
    if hit(f.drop_rate) {
        tracing::debug!("fault: dropping the connection");
        return dropped();
    }
    if hit(f.error_rate) {
        tracing::debug!("fault: 500");
        return (bodies.internal_error)();
    }
    if hit(f.rate_limit_rate) {
        tracing::debug!("fault: 429");
        return too_many(bodies, f.retry_after_secs.unwrap_or(1));
    }
    let resp = next.run(req).await;
    if hit(f.drop_after_rate) {
        tracing::debug!("fault: dropping the connection after the request was carried out");
        return dropped();
    }
    resp
}

fn too_many(bodies: FaultBodies, secs: u64) -> Response {
    let mut resp = (bodies.too_many_requests)(secs);
    *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// A 200 whose body fails after the headers: hyper aborts the connection, so the client
/// sees a broken response, as with a connection reset mid-flight.
fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected fault: connection dropped",
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
