//! Mutated or arbitrary input never panics and never verifies: attestation objects,
//! authenticator data, COSE keys, clientDataJSON and assertion signatures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use ciborium::Value;
use p256::ecdsa::signature::Signer as _;
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use webauthn::{
    AssertionExpectations, AttestationObject, AttestationPolicy, AuthenticatorData, ClientData,
    CoseKey, Flags, RegistrationExpectations, TrustRoots, b64, verify_assertion,
    verify_registration,
};

const RP_ID: &str = "example.org";
const ORIGIN: &str = "https://example.org";
const CHALLENGE: &str = "Y2hhbGxlbmdl";

struct Vector {
    exp: RegistrationExpectations,
    client_data: Vec<u8>,
    attestation_object: Vec<u8>,
}

fn vector() -> Vector {
    let all = testkit::vectors("attestation-v1.json");
    let v = &all["valid"][0];
    let s = |k: &str| v[k].as_str().unwrap();
    let roots = TrustRoots::from_pem(s("trust_root_pem")).unwrap();
    let mut exp = RegistrationExpectations::new(
        s("rp_id"),
        s("challenge"),
        AttestationPolicy::Required(roots),
    );
    exp.origins = vec![s("origin").to_owned()];
    exp.require_uv = true;
    Vector {
        exp,
        client_data: b64::decode("cd", s("client_data_json")).unwrap(),
        attestation_object: b64::decode("ao", s("attestation_object")).unwrap(),
    }
}

/// A software P-256 credential and one valid assertion for it.
struct Assertion {
    exp: AssertionExpectations,
    client_data: Vec<u8>,
    auth_data: Vec<u8>,
    signature: Vec<u8>,
}

fn assertion() -> Assertion {
    let sk = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let point = sk.verifying_key().to_sec1_bytes();
    assert_eq!(point.len(), 65);
    let cose = Value::Map(vec![
        (Value::from(1), Value::from(2)),
        (Value::from(3), Value::from(-7)),
        (Value::from(-1), Value::from(1)),
        (Value::from(-2), Value::Bytes(point[1..33].to_vec())),
        (Value::from(-3), Value::Bytes(point[33..].to_vec())),
    ]);
    let mut public_key_cose = Vec::new();
    ciborium::ser::into_writer(&cose, &mut public_key_cose).unwrap();

    let client_data = ClientData::get(CHALLENGE, ORIGIN).to_json_bytes();
    let mut auth_data = Sha256::digest(RP_ID.as_bytes()).to_vec();
    auth_data.push(Flags::UP | Flags::UV);
    auth_data.extend_from_slice(&5u32.to_be_bytes());
    let mut signed = auth_data.clone();
    signed.extend_from_slice(&Sha256::digest(&client_data));
    let sig: p256::ecdsa::Signature = sk.sign(&signed);
    Assertion {
        exp: AssertionExpectations {
            rp_id: RP_ID.into(),
            origins: vec![ORIGIN.into()],
            challenge: CHALLENGE.into(),
            require_uv: true,
            public_key_cose,
            sign_count: 4,
        },
        client_data,
        auth_data,
        signature: sig.to_der().as_bytes().to_vec(),
    }
}

#[test]
fn the_unmutated_inputs_verify() {
    let v = vector();
    verify_registration(&v.exp, &v.client_data, &v.attestation_object).unwrap();
    let a = assertion();
    let out = verify_assertion(&a.exp, &a.client_data, &a.auth_data, &a.signature).unwrap();
    assert_eq!(out.sign_count, 5);
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { len: usize },
    Insert { at: usize, byte: u8 },
    Append { bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        1 => any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        1 => proptest::collection::vec(any::<u8>(), 1..8).prop_map(|bytes| Mutation::Append { bytes }),
    ]
}

fn apply(input: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = input.to_vec();
    match m {
        Mutation::Flip { at, mask } => {
            let i = at % out.len();
            out[i] ^= mask;
        }
        Mutation::Truncate { len } => out.truncate(len % out.len()),
        Mutation::Insert { at, byte } => out.insert(at % (out.len() + 1), *byte),
        Mutation::Append { bytes } => out.extend_from_slice(bytes),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_attestation_object_is_refused(m in mutation()) {
        let v = vector();
        let mutated = apply(&v.attestation_object, &m);
        prop_assert!(verify_registration(&v.exp, &v.client_data, &mutated).is_err());
    }

    #[test]
    fn mutated_client_data_is_refused(m in mutation()) {
        let v = vector();
        let mutated = apply(&v.client_data, &m);
        prop_assert!(verify_registration(&v.exp, &mutated, &v.attestation_object).is_err());
    }

    #[test]
    fn mutated_assertion_signature_never_verifies(m in mutation()) {
        let a = assertion();
        let sig = apply(&a.signature, &m);
        prop_assume!(sig != a.signature);
        prop_assert!(verify_assertion(&a.exp, &a.client_data, &a.auth_data, &sig).is_err());
    }

    #[test]
    fn mutated_assertion_auth_data_never_verifies(m in mutation()) {
        let a = assertion();
        let ad = apply(&a.auth_data, &m);
        prop_assume!(ad != a.auth_data);
        prop_assert!(verify_assertion(&a.exp, &a.client_data, &ad, &a.signature).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = AttestationObject::parse(&bytes);
        let _ = AuthenticatorData::parse(&bytes);
        let _ = CoseKey::parse(&bytes);
        let _ = ClientData::parse(&bytes);
        let v = vector();
        prop_assert!(verify_registration(&v.exp, &v.client_data, &bytes).is_err());
        let a = assertion();
        prop_assert!(verify_assertion(&a.exp, &a.client_data, &bytes, &a.signature).is_err());
        prop_assert!(verify_assertion(&a.exp, &a.client_data, &a.auth_data, &bytes).is_err());
    }

    #[test]
    fn arbitrary_auth_data_after_a_valid_prefix_never_panics(
        tail in proptest::collection::vec(any::<u8>(), 0..300),
        flags in any::<u8>(),
    ) {
        let mut ad = Sha256::digest(RP_ID.as_bytes()).to_vec();
        ad.push(flags);
        ad.extend_from_slice(&[0, 0, 0, 1]);
        ad.extend_from_slice(&tail);
        let _ = AuthenticatorData::parse(&ad);
    }
}

#[test]
fn oversized_inputs_are_refused_without_parsing() {
    let big = vec![0u8; webauthn::MAX_INPUT + 1];
    assert!(matches!(
        AttestationObject::parse(&big),
        Err(webauthn::Error::TooLarge { .. })
    ));
    assert!(matches!(
        AuthenticatorData::parse(&big),
        Err(webauthn::Error::TooLarge { .. })
    ));
    assert!(matches!(
        ClientData::parse(&big),
        Err(webauthn::Error::TooLarge { .. })
    ));
}

#[test]
fn deeply_nested_cbor_is_an_error_not_a_stack_overflow() {
    let mut bytes = vec![0x81u8; 10_000]; // arrays of arrays ...
    bytes.push(0x00);
    assert!(AttestationObject::parse(&bytes).is_err());
    assert!(CoseKey::parse(&bytes).is_err());
}

#[test]
fn huge_declared_lengths_are_errors_not_allocations() {
    for header in [
        &[0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // bytes, 2^63-1
        &[0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // text, 2^64-1
        &[0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // array
        &[0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..], // map
        &[0x5a, 0xff, 0xff, 0xff, 0xff][..],                         // bytes, 4 GiB
    ] {
        let mut bytes = header.to_vec();
        bytes.extend_from_slice(&[0u8; 16]);
        assert!(AttestationObject::parse(&bytes).is_err());
        assert!(CoseKey::parse(&bytes).is_err());
        let mut ad = Sha256::digest(RP_ID.as_bytes()).to_vec();
        ad.push(Flags::UP | Flags::ED);
        ad.extend_from_slice(&[0, 0, 0, 1]);
        ad.extend_from_slice(&bytes);
        assert!(AuthenticatorData::parse(&ad).is_err());
    }
}

/// Where the attStmt `sig` bytes sit inside the raw attestation object.
fn sig_window(attestation_object: &[u8]) -> std::ops::Range<usize> {
    let obj = AttestationObject::parse(attestation_object).unwrap();
    let Value::Map(entries) = &obj.att_stmt else {
        panic!("attStmt is a map")
    };
    let sig = entries
        .iter()
        .find_map(|(k, v)| match (k, v) {
            (Value::Text(t), Value::Bytes(b)) if t == "sig" => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    let start = attestation_object
        .windows(sig.len())
        .position(|w| w == sig.as_slice())
        .unwrap();
    start..start + sig.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Even the lenient policy, which accepts untrusted chains, never accepts an
    /// attestation signature that was changed.
    #[test]
    fn mutated_attestation_signature_is_refused_even_when_attestation_is_optional(
        at in any::<usize>(),
        mask in 1u8..=255,
    ) {
        let v = vector();
        let mut exp = v.exp.clone();
        exp.policy = AttestationPolicy::Optional(TrustRoots::default());
        verify_registration(&exp, &v.client_data, &v.attestation_object).unwrap();
        let window = sig_window(&v.attestation_object);
        let mut mutated = v.attestation_object.clone();
        mutated[window.start + at % window.len()] ^= mask;
        prop_assert!(verify_registration(&exp, &v.client_data, &mutated).is_err());
    }
}

#[test]
fn maps_with_thousands_of_entries_are_refused_quickly() {
    // {0: 0, 1: 0, ..., 9999: 0} as a COSE key and as extensions.
    let map = Value::Map(
        (0..10_000)
            .map(|i| (Value::from(i), Value::from(0)))
            .collect(),
    );
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&map, &mut bytes).unwrap();
    let started = std::time::Instant::now();
    assert!(CoseKey::parse(&bytes).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
