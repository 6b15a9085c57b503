//! Authenticator data and COSE keys are parsed strictly: every byte accounted for,
//! flags agree with content, keys fit their algorithm.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use ciborium::Value;
use sha2::{Digest, Sha256};
use webauthn::{AuthenticatorData, CoseKey, Error, Flags};

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn int(i: i64) -> Value {
    Value::from(i)
}

fn p256_cose() -> Vec<u8> {
    let sk = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let pt = sk.verifying_key().to_sec1_bytes();
    cbor(&Value::Map(vec![
        (int(1), int(2)),
        (int(3), int(-7)),
        (int(-1), int(1)),
        (int(-2), Value::Bytes(pt[1..33].to_vec())),
        (int(-3), Value::Bytes(pt[33..].to_vec())),
    ]))
}

fn p384_cose() -> Vec<u8> {
    let sk = p384::ecdsa::SigningKey::from_slice(&[7; 48]).unwrap();
    let pt = sk.verifying_key().to_sec1_bytes();
    cbor(&Value::Map(vec![
        (int(1), int(2)),
        (int(3), int(-35)),
        (int(-1), int(2)),
        (int(-2), Value::Bytes(pt[1..49].to_vec())),
        (int(-3), Value::Bytes(pt[49..].to_vec())),
    ]))
}

/// authData with AT (and ED when `ext` is given).
fn auth_data(flags: u8, cred_id: &[u8], key: &[u8], ext: Option<&[u8]>) -> Vec<u8> {
    let mut ad = Sha256::digest(b"example.org").to_vec();
    ad.push(flags);
    ad.extend_from_slice(&9u32.to_be_bytes());
    ad.extend_from_slice(&[0xaa; 16]);
    ad.extend_from_slice(&u16::try_from(cred_id.len()).unwrap().to_be_bytes());
    ad.extend_from_slice(cred_id);
    ad.extend_from_slice(key);
    if let Some(e) = ext {
        ad.extend_from_slice(e);
    }
    ad
}

fn extensions() -> Vec<u8> {
    cbor(&Value::Map(vec![
        (Value::Text("credProtect".into()), int(2)),
        (Value::Text("hmac-secret".into()), Value::Bool(true)),
        (Value::Text("minPinLength".into()), int(6)),
    ]))
}

#[test]
fn attested_credential_and_extensions_are_parsed() {
    let key = p256_cose();
    let ext = extensions();
    let flags = Flags::UP | Flags::UV | Flags::BE | Flags::AT | Flags::ED;
    let ad = AuthenticatorData::parse(&auth_data(flags, &[1, 2, 3], &key, Some(&ext))).unwrap();
    assert_eq!(
        ad.rp_id_hash.to_vec(),
        Sha256::digest(b"example.org").to_vec()
    );
    assert!(ad.flags.up() && ad.flags.uv() && ad.flags.be() && !ad.flags.bs());
    assert_eq!(ad.sign_count, 9);
    let c = ad.attested_credential.unwrap();
    assert_eq!(c.aaguid.as_bytes(), &[0xaa; 16]);
    assert_eq!(c.credential_id, vec![1, 2, 3]);
    assert_eq!(c.public_key_cose, key);
    assert_eq!(c.public_key.alg(), -7);
    let e = ad.extensions.unwrap();
    assert_eq!(e.cred_protect, Some(2));
    assert_eq!(e.hmac_secret, Some(true));
    assert_eq!(e.min_pin_length, Some(6));
    assert_eq!(e.raw_cbor, ext);
}

#[test]
fn bytes_after_the_key_without_ed_are_refused() {
    let key = p256_cose();
    let ad = auth_data(Flags::UP | Flags::AT, &[1], &key, Some(&extensions()));
    assert!(matches!(
        AuthenticatorData::parse(&ad),
        Err(Error::TrailingBytes { .. })
    ));
}

#[test]
fn ed_flag_without_extensions_is_refused() {
    let key = p256_cose();
    let ad = auth_data(Flags::UP | Flags::AT | Flags::ED, &[1], &key, None);
    assert_eq!(
        AuthenticatorData::parse(&ad),
        Err(Error::ExtensionFlagMismatch)
    );
}

#[test]
fn bytes_after_extensions_are_refused() {
    let key = p256_cose();
    let mut ext = extensions();
    ext.push(0);
    let ad = auth_data(Flags::UP | Flags::AT | Flags::ED, &[1], &key, Some(&ext));
    assert!(matches!(
        AuthenticatorData::parse(&ad),
        Err(Error::TrailingBytes { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let ad = auth_data(
        Flags::UP | Flags::AT | Flags::ED,
        &[5; 16],
        &p256_cose(),
        Some(&extensions()),
    );
    AuthenticatorData::parse(&ad).unwrap();
    for len in 0..ad.len() {
        assert!(AuthenticatorData::parse(&ad[..len]).is_err(), "len {len}");
    }
}

#[test]
fn credential_id_longer_than_1023_bytes_is_refused() {
    let ad = auth_data(Flags::UP | Flags::AT, &[0; 1024], &p256_cose(), None);
    assert!(matches!(
        AuthenticatorData::parse(&ad),
        Err(Error::Cbor { .. })
    ));
}

#[test]
fn bad_cred_protect_value_is_refused() {
    let ext = cbor(&Value::Map(vec![(
        Value::Text("credProtect".into()),
        int(9),
    )]));
    let ad = auth_data(
        Flags::UP | Flags::AT | Flags::ED,
        &[1],
        &p256_cose(),
        Some(&ext),
    );
    assert!(matches!(
        AuthenticatorData::parse(&ad),
        Err(Error::Cbor { .. })
    ));
}

#[test]
fn p384_and_rsa_keys_parse() {
    assert_eq!(CoseKey::parse(&p384_cose()).unwrap().alg(), -35);
    let rsa = cbor(&Value::Map(vec![
        (int(1), int(3)),
        (int(3), int(-257)),
        (int(-1), Value::Bytes(vec![0xc5; 256])),
        (int(-2), Value::Bytes(vec![1, 0, 1])),
    ]));
    let key = CoseKey::parse(&rsa).unwrap();
    assert_eq!(key.alg(), -257);
    assert!(matches!(key, CoseKey::Rsa { ref e, .. } if e == &[1, 0, 1]));
    // RS256 verification is exercised with real keys in interop_fido2.rs.
    assert_eq!(key.verify(b"m", &[0; 256]), Err(Error::AssertionSignature));
    let ps256 = cbor(&Value::Map(vec![
        (int(1), int(3)),
        (int(3), int(-37)),
        (int(-1), Value::Bytes(vec![0xc5; 256])),
        (int(-2), Value::Bytes(vec![1, 0, 1])),
    ]));
    assert_eq!(
        CoseKey::parse(&ps256).unwrap().verify(b"m", &[0; 256]),
        Err(Error::UnsupportedAlgorithm(-37))
    );
}

#[test]
fn p384_signature_verifies_with_sha384() {
    use p384::ecdsa::signature::Signer as _;
    let sk = p384::ecdsa::SigningKey::from_slice(&[7; 48]).unwrap();
    let sig: p384::ecdsa::Signature = sk.sign(b"message");
    let key = CoseKey::parse(&p384_cose()).unwrap();
    key.verify(b"message", sig.to_der().as_bytes()).unwrap();
    assert_eq!(
        key.verify(b"messagf", sig.to_der().as_bytes()),
        Err(Error::AssertionSignature)
    );
}

#[test]
fn malformed_keys_are_refused() {
    let base = |entries: Vec<(Value, Value)>| CoseKey::parse(&cbor(&Value::Map(entries)));
    let sk = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let pt = sk.verifying_key().to_sec1_bytes();
    let x = Value::Bytes(pt[1..33].to_vec());
    let y = Value::Bytes(pt[33..].to_vec());
    // P-256 coordinates declared as ES384.
    assert!(matches!(
        base(vec![
            (int(1), int(2)),
            (int(3), int(-35)),
            (int(-1), int(1)),
            (int(-2), x.clone()),
            (int(-3), y.clone())
        ]),
        Err(Error::CoseKey(_))
    ));
    // Missing alg.
    assert!(matches!(
        base(vec![
            (int(1), int(2)),
            (int(-1), int(1)),
            (int(-2), x.clone()),
            (int(-3), y.clone())
        ]),
        Err(Error::CoseKey(_))
    ));
    // Short coordinate.
    assert!(matches!(
        base(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(vec![1; 31])),
            (int(-3), y.clone())
        ]),
        Err(Error::CoseKey(_))
    ));
    // Point not on the curve.
    assert!(matches!(
        base(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), x.clone()),
            (int(-3), Value::Bytes(vec![1; 32]))
        ]),
        Err(Error::CoseKey(_))
    ));
    // Duplicate key.
    assert!(matches!(
        base(vec![
            (int(1), int(2)),
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), x.clone()),
            (int(-3), y.clone())
        ]),
        Err(Error::Cbor { .. })
    ));
    // EdDSA is not supported.
    assert_eq!(
        base(vec![
            (int(1), int(2)),
            (int(3), int(-8)),
            (int(-1), int(1)),
            (int(-2), x),
            (int(-3), y)
        ]),
        Err(Error::UnsupportedAlgorithm(-8))
    );
    // Trailing bytes after the key.
    let mut bytes = p256_cose();
    bytes.push(0);
    assert!(matches!(
        CoseKey::parse(&bytes),
        Err(Error::TrailingBytes { .. })
    ));
}
