//! A fulfiller opening a request JWE: compact split, header JSON, epk point, AES-KW,
//! AES-GCM, request JSON. Must return an error, never panic, on any input.
#![no_main]

use std::sync::LazyLock;

use envelope::PrivateJwk;
use libfuzzer_sys::fuzz_target;

static VECTORS: LazyLock<serde_json::Value> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../testdata/vectors/envelope-v1.json"))
        .expect("committed vectors parse")
});
static TRANSPORT: LazyLock<PrivateJwk> = LazyLock::new(|| {
    PrivateJwk::from_value(&VECTORS["keys"]["transport"]).expect("vector transport key")
});

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = envelope::inspect(token);
    let _ = envelope::open_request(token, std::slice::from_ref(&*TRANSPORT));
});
