//! A relying party verifying a registration: clientDataJSON, the CBOR attestation object,
//! authenticator data, the COSE key, the packed statement and its x5c chain.
//! Input: 2-byte big-endian length of clientDataJSON, clientDataJSON, attestation object.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use webauthn::{AttestationPolicy, RegistrationExpectations, TrustRoots};

static VECTOR: LazyLock<serde_json::Value> = LazyLock::new(|| {
    let all: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/vectors/attestation-v1.json"))
            .expect("committed vectors parse");
    all["valid"][0].clone()
});
static EXPECT: LazyLock<RegistrationExpectations> = LazyLock::new(|| {
    let v = &*VECTOR;
    let roots = TrustRoots::from_pem(v["trust_root_pem"].as_str().unwrap_or_default())
        .expect("vector root");
    let mut e = RegistrationExpectations::new(
        v["rp_id"].as_str().unwrap_or_default(),
        v["challenge"].as_str().unwrap_or_default(),
        AttestationPolicy::Optional(roots),
    );
    e.origins = vec![v["origin"].as_str().unwrap_or_default().to_owned()];
    e
});

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len));
    let Some((client_data, attestation_object)) = rest.split_at_checked(len) else {
        return;
    };
    let _ = webauthn::verify_registration(&EXPECT, client_data, attestation_object);
    let _ = webauthn::ClientData::parse(client_data);
    let _ = webauthn::AttestationObject::parse(attestation_object);
});
