//! The Concat KDF against RFC 7518 Appendix C (P-256, direct ECDH-ES, A128GCM, apu
//! "Alice", apv "Bob"): the KDF is size-generic, so the published 128-bit example checks
//! the same code that derives the profile's 256-bit A256KW key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envelope::kdf::concat_kdf;

const RFC_Z: [u8; 32] = [
    158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163,
    218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
];

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

#[test]
fn concat_kdf_matches_rfc7518_appendix_c() {
    let key = concat_kdf(&RFC_Z, b"A128GCM", b"Alice", b"Bob", 16);
    assert_eq!(URL_SAFE_NO_PAD.encode(&*key), "VqqN6vgjbSBcIijNcacQGg");
    assert_eq!(
        *key,
        [
            86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26
        ]
    );
}

#[test]
fn rfc7518_appendix_c_shared_secret_is_what_the_ecdh_backend_computes() {
    // Bob's static key and Alice's ephemeral public key from Appendix C.
    use aws_lc_rs::agreement::{ECDH_P256, PrivateKey, UnparsedPublicKey, agree};
    let bob = PrivateKey::from_private_key(
        &ECDH_P256,
        &b64("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"),
    )
    .unwrap();
    let mut alice = vec![4u8];
    alice.extend(b64("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0"));
    alice.extend(b64("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"));
    let z = agree(&bob, UnparsedPublicKey::new(&ECDH_P256, &alice), (), |z| {
        Ok(z.to_vec())
    })
    .unwrap();
    assert_eq!(z.as_slice(), RFC_Z);
}

#[test]
fn concat_kdf_output_length_is_generic_and_prefix_stable() {
    let long = concat_kdf(&RFC_Z, b"A128GCM", b"Alice", b"Bob", 64);
    assert_eq!(long.len(), 64);
    // keydatalen is part of OtherInfo, so a longer output is a different key, not an
    // extension of the shorter one.
    assert_ne!(
        &long[..16],
        &concat_kdf(&RFC_Z, b"A128GCM", b"Alice", b"Bob", 16)[..]
    );
    assert_eq!(
        concat_kdf(&RFC_Z, b"ECDH-ES+A256KW", b"", b"", 32).len(),
        32
    );
}
