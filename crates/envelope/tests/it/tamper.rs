//! Property tests: any mutation of a valid token (a changed character in any segment,
//! truncation, reordered parts, a changed inner signature) is an error, never a panic and
//! never a success.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::OnceLock;

use envelope::{
    Jwks, KeyUse, Pin, PinChoice, PinRequest, PinResponse, PrivateJwk, Request, Response,
};
use proptest::prelude::*;

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct Fixture {
    transport: PrivateJwk,
    response_key: PrivateJwk,
    trusted: Jwks,
    request: String,
    response: String,
    inner_jws: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let transport = PrivateJwk::generate("t", KeyUse::Enc).unwrap();
        let response_key = PrivateJwk::generate("rk", KeyUse::Enc).unwrap();
        let signing = PrivateJwk::generate("s", KeyUse::Sig).unwrap();
        let mut trusted = Jwks::new();
        trusted.add(signing.public().clone()).unwrap();
        let request = envelope::seal_request(
            &Request::Pin(PinRequest {
                response_key: response_key.public().clone(),
                pin: PinChoice::Generate { length: 6 },
                min_pin_length: 6,
                force_pin_change: true,
            }),
            transport.public(),
        )
        .unwrap();
        let payload = Response::Pin(PinResponse {
            request_hash: envelope::request_hash(&request),
            serial: "1".into(),
            pin: Pin::new("123456"),
            force_pin_change: true,
            iat: 1,
        });
        let inner_jws = envelope::sign_jws(&payload.to_json_bytes().unwrap(), &signing).unwrap();
        let response =
            envelope::seal_jwe(inner_jws.as_bytes(), response_key.public(), "JWS").unwrap();
        Fixture {
            transport,
            response_key,
            trusted,
            request,
            response,
            inner_jws,
        }
    })
}

fn open_request(token: &str) -> envelope::Result<Request> {
    let f = fixture();
    envelope::open_request(token, std::slice::from_ref(&f.transport))
}

fn open_response(token: &str) -> envelope::Result<Response> {
    let f = fixture();
    envelope::open_response(
        token,
        std::slice::from_ref(&f.response_key),
        &f.trusted,
        &f.request,
    )
}

/// Replaces the character at `pos` (modulo length) of segment `seg` (modulo the number of
/// segments) with a different base64url character.
fn flip(token: &str, seg: usize, pos: usize, pick: usize) -> String {
    let mut parts: Vec<Vec<u8>> = token.split('.').map(|p| p.as_bytes().to_vec()).collect();
    let n = parts.len();
    let part = &mut parts[seg % n];
    if part.is_empty() {
        part.push(B64URL[pick % B64URL.len()]);
    } else {
        let i = pos % part.len();
        let old = part[i];
        let mut new = B64URL[pick % B64URL.len()];
        if new == old {
            new = B64URL[(pick + 1) % B64URL.len()];
        }
        part[i] = new;
    }
    let parts: Vec<String> = parts
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    parts.join(".")
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn fixture_tokens_open() {
    let f = fixture();
    assert!(open_request(&f.request).is_ok());
    assert!(open_response(&f.response).is_ok());
    assert!(envelope::verify_jws(&f.inner_jws, &f.trusted).is_ok());
}

#[test]
fn every_reordering_of_the_parts_is_refused() {
    let f = fixture();
    let reorderings = |token: &str| -> Vec<String> {
        let parts: Vec<&str> = token.split('.').collect();
        permutations(parts.len())
            .into_iter()
            .filter(|perm| perm.iter().enumerate().any(|(i, &j)| i != j))
            .map(|perm| perm.iter().map(|&i| parts[i]).collect::<Vec<_>>().join("."))
            .collect()
    };
    let requests = reorderings(&f.request);
    assert_eq!(requests.len(), 119);
    for t in requests {
        assert!(open_request(&t).is_err());
    }
    for t in reorderings(&f.response) {
        assert!(open_response(&t).is_err());
    }
    for t in reorderings(&f.inner_jws) {
        assert!(envelope::verify_jws(&t, &f.trusted).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn changed_character_in_any_request_segment_is_refused(
        seg in 0usize..5, pos in any::<usize>(), pick in any::<usize>()
    ) {
        let t = flip(&fixture().request, seg, pos, pick);
        prop_assert!(open_request(&t).is_err());
    }

    #[test]
    fn changed_character_in_any_response_segment_is_refused(
        seg in 0usize..5, pos in any::<usize>(), pick in any::<usize>()
    ) {
        let t = flip(&fixture().response, seg, pos, pick);
        prop_assert!(open_response(&t).is_err());
    }

    #[test]
    fn changed_inner_jws_is_refused_even_when_properly_encrypted(
        seg in 0usize..3, pos in any::<usize>(), pick in any::<usize>()
    ) {
        let f = fixture();
        let jws = flip(&f.inner_jws, seg, pos, pick);
        prop_assert!(envelope::verify_jws(&jws, &f.trusted).is_err());
        let jwe = envelope::seal_jwe(jws.as_bytes(), f.response_key.public(), "JWS").unwrap();
        prop_assert!(open_response(&jwe).is_err());
    }

    #[test]
    fn truncated_tokens_are_refused(cut in any::<usize>()) {
        let f = fixture();
        let r = &f.request[..cut % f.request.len()];
        prop_assert!(open_request(r).is_err());
        let s = &f.response[..cut % f.response.len()];
        prop_assert!(open_response(s).is_err());
        let j = &f.inner_jws[..cut % f.inner_jws.len()];
        prop_assert!(envelope::verify_jws(j, &f.trusted).is_err());
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,400}", dots in proptest::collection::vec("[A-Za-z0-9_-]{0,60}", 0..7)) {
        let f = fixture();
        let joined = dots.join(".");
        for t in [s.as_str(), joined.as_str()] {
            let _ = open_request(t);
            let _ = open_response(t);
            let _ = envelope::verify_jws(t, &f.trusted);
            let _ = envelope::inspect(t);
        }
    }
}
