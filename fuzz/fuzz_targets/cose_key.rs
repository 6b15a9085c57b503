//! CBOR and COSE_Key parsing, authenticator data parsing, and signature verification
//! with whatever key parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webauthn::{AuthenticatorData, CoseKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = CoseKey::parse(data) {
        let _ = key.verify(b"message", data);
    }
    let _ = AuthenticatorData::parse(data);
});
