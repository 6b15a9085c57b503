//! What every request passes through before its handler, on the whole router (API of
//! both modes, the cards, the console): the body limit, and who the client is.
//!
//! - [`body_limit`]: a body larger than `max_body_bytes` is refused with 413 in the
//!   API's error shape (`api_error`, `error_type: payload_too_large`), whether it
//!   declares its length or not, before any handler or extractor sees it.
//! - [`client_info`]: the client's address and whether it reached us over HTTPS
//!   ([`Client`]). Only when the TCP peer is one of `trusted_proxies` are
//!   `X-Forwarded-For` (the rightmost address that is not a trusted proxy is the client)
//!   and `X-Forwarded-Proto` believed; from anyone else they are ignored, so a client
//!   cannot choose the address its sign-in failures are counted under.

use crate::api::error::ApiError;
use crate::app::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use engine::config::IpNet;
use futures_util::StreamExt;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Refuses (413) a request whose body is larger than `max_body_bytes`: at once when its
/// `Content-Length` says so, else as soon as the bytes read pass the limit. A body whose
/// declared length is within the limit goes on as it is (the HTTP server ends a body at
/// its declared length: it cannot be longer); one without (chunked) is read here, up to
/// the limit, and the bytes read handed on. Either way no extractor needs a limit of
/// its own.
pub async fn body_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let limit = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > u64::try_from(limit).unwrap_or(u64::MAX) => return too_large(limit),
        Some(_) => return next.run(req).await,
        None => {}
    }
    let (parts, body) = req.into_parts();
    let mut read: Vec<u8> = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return ApiError::Validation(
                "the request body could not be read (the connection broke off?)".into(),
            )
            .into_response();
        };
        if read.len().saturating_add(chunk.len()) > limit {
            return too_large(limit);
        }
        read.extend_from_slice(&chunk);
    }
    next.run(Request::from_parts(parts, Body::from(read))).await
}

fn too_large(limit: usize) -> Response {
    ApiError::TooLarge(format!(
        "the request body is larger than this connector accepts ({limit} bytes, max_body_bytes)"
    ))
    .into_response()
}

/// Who sent a request, as far as the connector can trust it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the TCP peer, or, when the peer is a trusted proxy, the
    /// rightmost address of `X-Forwarded-For` that is not a trusted proxy. `None` when
    /// the server was started without peer addresses.
    pub addr: Option<IpAddr>,
    /// The client's connection is HTTPS: the connector's own TLS, or a trusted proxy's
    /// `X-Forwarded-Proto: https`.
    pub https: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        // Set by [`client_info`] on the whole router; without it, only the peer is known.
        Ok(parts.extensions.get::<Client>().copied().unwrap_or(Client {
            addr: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            https: false,
        }))
    }
}

/// Works out the [`Client`] of each request (see [`resolve`]) and hands it on as a
/// request extension.
pub async fn client_info(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = resolve(
        peer,
        req.headers(),
        &state.config.trusted_proxies,
        state.config.tls.is_some(),
    );
    req.extensions_mut().insert(client);
    next.run(req).await
}

/// The client of a request from TCP peer `peer` with these headers, given the trusted
/// proxies and whether the connector itself serves TLS.
///
/// From an untrusted peer (or with no trusted proxies configured) the forwarding headers
/// are ignored: the peer is the client. From a trusted proxy, `X-Forwarded-For` (all of
/// its headers, in order) is read from the right: trusted proxies are skipped and the
/// first other address is the client; an unreadable entry stops the walk at the last
/// trusted hop (never further left, where the client may have written anything). The
/// first value of `X-Forwarded-Proto` says whether the client used HTTPS.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet], tls: bool) -> Client {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let Some(peer) = peer.filter(|p| is_trusted(*p)) else {
        return Client {
            addr: peer,
            https: tls,
        };
    };
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(s) => s.split(',').map(parse_hop).collect::<Vec<_>>(),
            Err(_) => vec![None],
        })
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = *hop else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    Client {
        addr: Some(client),
        https: match proto {
            Some(p) => p.eq_ignore_ascii_case("https"),
            None => tls,
        },
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) or brackets.
fn parse_hop(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            s.strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .and_then(|v| v.parse().ok())
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        for trusted in [nets(&[]), nets(&["10.0.0.0/8"])] {
            let c = resolve(Some(ip("192.0.2.1")), &h, &trusted, false);
            assert_eq!(
                c,
                Client {
                    addr: Some(ip("192.0.2.1")),
                    https: false
                }
            );
        }
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.0.2.5"]);
        // The client wrote a fake first entry; the edge proxy appended the real one.
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
            ("x-forwarded-for", "10.1.2.3"),
            ("x-forwarded-proto", "https, http"),
        ]);
        let c = resolve(Some(ip("192.0.2.5")), &h, &trusted, false);
        assert_eq!(c.addr, Some(ip("203.0.113.9")));
        assert!(c.https);
        // Only proxies in the chain: the leftmost is the client.
        let h = headers(&[("x-forwarded-for", "10.0.0.7, 10.0.0.8")]);
        let c = resolve(Some(ip("10.0.0.1")), &h, &trusted, true);
        assert_eq!(c.addr, Some(ip("10.0.0.7")));
        assert!(c.https, "no X-Forwarded-Proto: the connection's own TLS");
        // Ports and brackets; an unreadable entry stops the walk at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "[2001:db8::7]:4711")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted, false).addr,
            Some(ip("2001:db8::7"))
        );
        let h = headers(&[("x-forwarded-for", "198.51.100.1, unknown, 10.0.0.9")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted, false).addr,
            Some(ip("10.0.0.9"))
        );
        // No header: the proxy itself.
        let c = resolve(
            Some(ip("::ffff:10.0.0.1")),
            &HeaderMap::new(),
            &trusted,
            false,
        );
        assert_eq!(c.addr, Some(ip("::ffff:10.0.0.1")));
        assert!(!c.https);
    }
}
