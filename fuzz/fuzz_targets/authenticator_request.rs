//! The virtual key's request decoding: the platform layer turning an IdP's creation or
//! request options (JSON) into CTAP makeCredential / getAssertion requests and running
//! them, and the key file it loads. (The virtual key has no CTAP CBOR transport: requests
//! arrive as options JSON through `client`, which is the decoding fuzzed here.)
//! Input: first byte picks the path, the rest is the JSON text.
#![no_main]

use std::sync::LazyLock;

use authenticator::{Pin, VirtualYubiKey, client};
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "https://login.microsoft.com";

/// A key with a PIN and one credential for login.microsoft.com, as its key file.
static KEY_FILE: LazyLock<String> = LazyLock::new(|| {
    let mut k = VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().expect("model"),
        "5.7.1".parse().expect("firmware"),
        Some(31636842),
    )
    .expect("key");
    authenticator::KeyProgrammer::set_pin(&mut k, &Pin::new("31415926")).expect("pin");
    client::make_credential(
        &mut k,
        include_str!("../../crates/authenticator/tests/fixtures/entra_creation_options.json"),
        ORIGIN,
        Some(&Pin::new("31415926")),
    )
    .expect("registration");
    k.to_json().expect("key file").to_string()
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(mut key) = VirtualYubiKey::from_json(&KEY_FILE) else {
        return;
    };
    let pin = Pin::new("31415926");
    match mode % 4 {
        0 => {
            let _ = client::make_credential(&mut key, text, ORIGIN, Some(&pin));
        }
        1 => {
            let _ = client::make_credential(&mut key, text, ORIGIN, None);
        }
        2 => {
            // getAssertion with a fuzzed challenge, after a fuzzed registration attempt.
            let _ = client::make_credential(&mut key, text, ORIGIN, Some(&pin));
            let _ = client::get_assertion(
                &mut key,
                "login.microsoft.com",
                text,
                ORIGIN,
                &[],
                Some(&pin),
            );
        }
        _ => {
            let _ = VirtualYubiKey::from_json(text);
        }
    }
});
