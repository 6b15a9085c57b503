//! A requester opening a response: JWE, then the inner JWS against the trusted signing
//! JWKS, then the response JSON and its request_hash.
#![no_main]

use std::sync::LazyLock;

use envelope::{Jwks, PrivateJwk};
use libfuzzer_sys::fuzz_target;

static VECTORS: LazyLock<serde_json::Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../testdata/vectors/envelope-v1.json"))
        .expect("committed vectors parse")
});
static RESPONSE_KEY: LazyLock<PrivateJwk> = LazyLock::new(|| {
    PrivateJwk::from_value(&VECTORS["keys"]["response"]).expect("vector response key")
});
static TRUSTED: LazyLock<Jwks> = LazyLock::new(|| {
    Jwks::from_value(&VECTORS["trusted_signing_jwks"]).expect("vector signing JWKS")
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let request = VECTORS["valid"][0]["jwe"].as_str().unwrap_or_default();
    let _ = envelope::open_response(
        token,
        std::slice::from_ref(&*RESPONSE_KEY),
        &TRUSTED,
        request,
    );
    // The inner JWS on its own, as if it had been decrypted.
    let _ = envelope::verify_jws(token, &TRUSTED);
});
