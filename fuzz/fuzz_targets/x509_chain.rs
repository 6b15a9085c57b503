//! X.509 chain verification: the committed vector's packed statement (leaf unchanged, so
//! its signature still verifies and the chain is reached) with fuzzed certificates after
//! the leaf and a fuzzed trust root. Input: items of (2-byte big-endian length, DER);
//! the last item is the root, the others follow the leaf in x5c.
#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value;
use libfuzzer_sys::fuzz_target;
use webauthn::{AttestationPolicy, RegistrationExpectations, TrustRoots};

struct Fixture {
    vector: serde_json::Value,
    client_data: Vec<u8>,
    /// The attestation object as CBOR, x5c to be replaced.
    object: Vec<(Value, Value)>,
    leaf: Vec<u8>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let all: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/vectors/attestation-v1.json"))
            .expect("committed vectors parse");
    let vector = all["valid"][0].clone();
    let b64 = |k: &str| {
        URL_SAFE_NO_PAD
            .decode(vector[k].as_str().unwrap_or_default())
            .expect("vector base64url")
    };
    let client_data = b64("client_data_json");
    let ao: Value = ciborium::from_reader(b64("attestation_object").as_slice()).expect("cbor");
    let Value::Map(object) = ao else {
        panic!("attestation object is a map")
    };
    let leaf = object
        .iter()
        .find(|(k, _)| k.as_text() == Some("attStmt"))
        .and_then(|(_, v)| v.as_map())
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("x5c")))
        .and_then(|(_, v)| v.as_array())
        .and_then(|a| a.first())
        .and_then(Value::as_bytes)
        .cloned()
        .expect("vector has a leaf");
    Fixture {
        vector,
        client_data,
        object,
        leaf,
    }
});

fn items(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((len, rest)) = data.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        let Some((item, rest)) = rest.split_at_checked(len) else {
            break;
        };
        out.push(item);
        data = rest;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let mut certs = items(data);
    let Some(root) = certs.pop() else {
        return;
    };
    let Ok(roots) = TrustRoots::from_der([root]) else {
        return;
    };
    let mut x5c = vec![Value::Bytes(f.leaf.clone())];
    x5c.extend(certs.iter().map(|c| Value::Bytes(c.to_vec())));
    let object: Vec<(Value, Value)> = f
        .object
        .iter()
        .map(|(k, v)| {
            if k.as_text() != Some("attStmt") {
                return (k.clone(), v.clone());
            }
            let stmt = v
                .as_map()
                .map(|m| {
                    m.iter()
                        .map(|(sk, sv)| {
                            if sk.as_text() == Some("x5c") {
                                (sk.clone(), Value::Array(x5c.clone()))
                            } else {
                                (sk.clone(), sv.clone())
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            (k.clone(), Value::Map(stmt))
        })
        .collect();
    let mut bytes = Vec::new();
    if ciborium::into_writer(&Value::Map(object), &mut bytes).is_err() {
        return;
    }
    let v = &f.vector;
    let mut e = RegistrationExpectations::new(
        v["rp_id"].as_str().unwrap_or_default(),
        v["challenge"].as_str().unwrap_or_default(),
        AttestationPolicy::Required(roots),
    );
    e.origins = vec![v["origin"].as_str().unwrap_or_default().to_owned()];
    e.now = Some(1_780_000_000);
    let _ = webauthn::verify_registration(&e, &f.client_data, &bytes);
});
