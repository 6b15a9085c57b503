//! The YubiKey PIN rules, through the public API: counters, power cycles, blocking,
//! minimum length, forcePINChange, reset.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use authenticator::{
    CtapError, Error, GetAssertionRequest, KeyProgrammer, MakeCredentialRequest, Pin, RelyingParty,
    User, VirtualYubiKey,
};

const RIGHT: &str = "482915";
const WRONG: &str = "000000";

fn key() -> VirtualYubiKey {
    VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        "5.7.1".parse().unwrap(),
        Some(31_415_926),
    )
    .unwrap()
}

fn key_with_pin() -> VirtualYubiKey {
    let mut k = key();
    k.set_pin(&Pin::new(RIGHT)).unwrap();
    k
}

fn ctap<T: std::fmt::Debug>(r: authenticator::Result<T>) -> CtapError {
    match r {
        Err(Error::Ctap(e)) => e,
        other => panic!("expected a CTAP error, got {other:?}"),
    }
}

fn mc_request(user: &[u8]) -> MakeCredentialRequest {
    MakeCredentialRequest {
        client_data_hash: [7; 32],
        client_data_json: None,
        rp: RelyingParty {
            id: "login.microsoft.com".into(),
            name: Some("Microsoft".into()),
        },
        user: User {
            id: user.to_vec(),
            name: Some("john@contoso.com".into()),
            display_name: Some("John Doe".into()),
        },
        algorithms: vec![-7, -257],
        exclude_list: vec![],
        resident_key: true,
        user_verification: true,
        cred_protect: Some(1),
        hmac_secret: true,
    }
}

fn ga_request() -> GetAssertionRequest {
    GetAssertionRequest {
        rp_id: "login.microsoft.com".into(),
        client_data_hash: [9; 32],
        client_data_json: None,
        allow_list: vec![],
        user_verification: true,
    }
}

fn make(k: &mut VirtualYubiKey, pin: &str) -> authenticator::Result<()> {
    k.make_credential(&mc_request(b"user-1"), Some(&Pin::new(pin)))
        .map(|_| ())
}

#[test]
fn wrong_pin_counts_down_from_eight() {
    let mut k = key_with_pin();
    assert_eq!(k.get_info().unwrap().pin_retries, 8);
    assert_eq!(
        ctap(make(&mut k, WRONG)),
        CtapError::PinInvalid { retries: 7 }
    );
    assert_eq!(
        ctap(make(&mut k, WRONG)),
        CtapError::PinInvalid { retries: 6 }
    );
    assert_eq!(k.get_info().unwrap().pin_retries, 6);
    assert_eq!(k.summary().pin_retries, 6);
}

#[test]
fn correct_pin_restores_the_counter_to_eight() {
    let mut k = key_with_pin();
    ctap(make(&mut k, WRONG));
    ctap(make(&mut k, WRONG));
    make(&mut k, RIGHT).unwrap();
    assert_eq!(k.get_info().unwrap().pin_retries, 8);
}

#[test]
fn third_wrong_pin_in_a_power_cycle_needs_a_reinsert() {
    let mut k = key_with_pin();
    ctap(make(&mut k, WRONG));
    ctap(make(&mut k, WRONG));
    assert_eq!(
        ctap(make(&mut k, WRONG)),
        CtapError::PinAuthBlocked { retries: 5 }
    );
    // Even the right PIN is refused, and not counted, until the key is reinserted.
    assert_eq!(
        ctap(make(&mut k, RIGHT)),
        CtapError::PinAuthBlocked { retries: 5 }
    );
    assert_eq!(k.get_info().unwrap().pin_retries, 5);
    k.power_cycle();
    make(&mut k, RIGHT).unwrap();
    assert_eq!(k.get_info().unwrap().pin_retries, 8);
}

#[test]
fn eighth_wrong_pin_blocks_the_pin_until_reset() {
    let mut k = key_with_pin();
    let mut errors = Vec::new();
    for _ in 0..3 {
        for _ in 0..3 {
            if k.get_info().unwrap().pin_retries == 0 {
                break;
            }
            errors.push(ctap(make(&mut k, WRONG)));
        }
        k.power_cycle();
    }
    assert_eq!(errors.len(), 8);
    assert_eq!(errors[7], CtapError::PinBlocked);
    assert_eq!(errors[6], CtapError::PinInvalid { retries: 1 });
    assert_eq!(ctap(make(&mut k, RIGHT)), CtapError::PinBlocked);
    assert_eq!(
        ctap(k.change_pin(&Pin::new(RIGHT), &Pin::new("13572468"))),
        CtapError::PinBlocked
    );
    assert!(k.summary().pin_blocked);
    k.power_cycle();
    k.reset().unwrap();
    assert!(!k.summary().pin_set);
    k.set_pin(&Pin::new(RIGHT)).unwrap();
    make(&mut k, RIGHT).unwrap();
}

#[test]
fn wrong_current_pin_in_change_pin_counts_too() {
    let mut k = key_with_pin();
    assert_eq!(
        ctap(k.change_pin(&Pin::new(WRONG), &Pin::new("13572468"))),
        CtapError::PinInvalid { retries: 7 }
    );
    k.change_pin(&Pin::new(RIGHT), &Pin::new("13572468"))
        .unwrap();
    make(&mut k, "13572468").unwrap();
    assert_eq!(
        ctap(make(&mut k, RIGHT)),
        CtapError::PinInvalid { retries: 7 }
    );
}

#[test]
fn set_pin_is_only_for_a_key_without_one() {
    let mut k = key_with_pin();
    assert!(matches!(
        ctap(k.set_pin(&Pin::new("99887766"))),
        CtapError::NotAllowed(_)
    ));
}

#[test]
fn minimum_pin_length_defaults_to_four_and_is_enforced() {
    let mut k = key();
    assert_eq!(k.get_info().unwrap().min_pin_length, 4);
    assert!(matches!(
        ctap(k.set_pin(&Pin::new("123"))),
        CtapError::PinPolicyViolation(_)
    ));
    k.set_pin(&Pin::new("1234")).unwrap();
    k.set_min_pin_length(Some(&Pin::new("1234")), Some(6), false)
        .unwrap();
    assert_eq!(k.get_info().unwrap().min_pin_length, 6);
    // The current PIN is now too short: the key forces a change.
    assert!(k.get_info().unwrap().force_pin_change);
    assert!(matches!(
        ctap(k.change_pin(&Pin::new("1234"), &Pin::new("54321"))),
        CtapError::PinPolicyViolation(_)
    ));
    k.change_pin(&Pin::new("1234"), &Pin::new("654321"))
        .unwrap();
    assert!(!k.get_info().unwrap().force_pin_change);
}

#[test]
fn minimum_pin_length_can_only_be_raised() {
    let mut k = key_with_pin();
    let pin = Pin::new(RIGHT);
    k.set_min_pin_length(Some(&pin), Some(6), false).unwrap();
    assert!(matches!(
        ctap(k.set_min_pin_length(Some(&pin), Some(5), false)),
        CtapError::PinPolicyViolation(_)
    ));
    assert_eq!(k.get_info().unwrap().min_pin_length, 6);
}

#[test]
fn set_min_pin_length_needs_the_pin_and_counts_wrong_ones() {
    let mut k = key_with_pin();
    assert_eq!(
        ctap(k.set_min_pin_length(None, Some(6), false)),
        CtapError::PinRequired
    );
    assert_eq!(
        ctap(k.set_min_pin_length(Some(&Pin::new(WRONG)), Some(6), false)),
        CtapError::PinInvalid { retries: 7 }
    );
}

#[test]
fn authenticator_config_needs_firmware_5_7() {
    let mut k = VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        "5.4.3".parse().unwrap(),
        None,
    )
    .unwrap();
    k.set_pin(&Pin::new(RIGHT)).unwrap();
    assert_eq!(
        ctap(k.set_min_pin_length(Some(&Pin::new(RIGHT)), Some(6), true)),
        CtapError::InvalidCommand
    );
}

#[test]
fn forced_pin_change_blocks_user_verification_until_changed() {
    let mut k = key_with_pin();
    let pin = Pin::new(RIGHT);
    make(&mut k, RIGHT).unwrap();
    k.set_min_pin_length(Some(&pin), None, true).unwrap();
    assert!(k.get_info().unwrap().force_pin_change);
    assert!(k.summary().force_pin_change);

    assert!(matches!(
        ctap(make(&mut k, RIGHT)),
        CtapError::PinPolicyViolation(_)
    ));
    assert!(matches!(
        ctap(k.get_assertion(&ga_request(), Some(&pin))),
        CtapError::PinPolicyViolation(_)
    ));
    // A wrong PIN under forcePINChange is still a wrong PIN, and counts.
    assert_eq!(
        ctap(k.get_assertion(&ga_request(), Some(&Pin::new(WRONG)))),
        CtapError::PinInvalid { retries: 7 }
    );
    // The new PIN must differ from the old one.
    assert!(matches!(
        ctap(k.change_pin(&pin, &pin)),
        CtapError::PinPolicyViolation(_)
    ));
    assert!(k.get_info().unwrap().force_pin_change);

    let new = Pin::new("97531864");
    k.change_pin(&pin, &new).unwrap();
    assert!(!k.get_info().unwrap().force_pin_change);
    k.get_assertion(&ga_request(), Some(&new)).unwrap();
}

#[test]
fn force_change_without_a_pin_is_refused() {
    let mut k = key();
    assert_eq!(
        ctap(k.set_min_pin_length(None, None, true)),
        CtapError::PinNotSet
    );
}

#[test]
fn user_verification_without_a_pin_set_is_refused() {
    let mut k = key();
    assert_eq!(
        ctap(k.make_credential(&mc_request(b"u"), Some(&Pin::new(RIGHT)))),
        CtapError::PinNotSet
    );
    assert_eq!(
        ctap(k.make_credential(&mc_request(b"u"), None)),
        CtapError::PinNotSet
    );
    let mut k = key_with_pin();
    assert_eq!(
        ctap(k.make_credential(&mc_request(b"u"), None)),
        CtapError::PinRequired
    );
}

#[test]
fn reset_wipes_credentials_pin_and_policy() {
    let mut k = key_with_pin();
    let pin = Pin::new(RIGHT);
    make(&mut k, RIGHT).unwrap();
    k.set_min_pin_length(Some(&pin), Some(8), true).unwrap();
    assert_eq!(k.summary().credential_count(), 1);

    // Not right after insertion: refused.
    assert!(matches!(ctap(k.reset()), CtapError::NotAllowed(_)));
    k.power_cycle();
    k.reset().unwrap();

    let s = k.summary();
    assert!(!s.pin_set);
    assert!(s.credentials.is_empty());
    assert_eq!(s.min_pin_length, 4);
    assert!(!s.force_pin_change);
    assert_eq!(s.pin_retries, 8);
    // Identity survives a reset.
    assert_eq!(s.serial, 31_415_926);
    let without_uv = GetAssertionRequest {
        user_verification: false,
        ..ga_request()
    };
    assert_eq!(
        ctap(k.get_assertion(&without_uv, None)),
        CtapError::NoCredentials
    );
    k.set_pin(&Pin::new("1234")).unwrap();
}

#[test]
fn counters_survive_save_and_load() {
    let mut k = key_with_pin();
    ctap(make(&mut k, WRONG));
    ctap(make(&mut k, WRONG));
    let json = k.to_json().unwrap();
    let mut k = VirtualYubiKey::from_json(&json).unwrap();
    assert_eq!(k.summary().pin_retries, 6);
    assert_eq!(k.summary().pin_failures_since_insertion, 2);
    assert_eq!(
        ctap(make(&mut k, WRONG)),
        CtapError::PinAuthBlocked { retries: 5 }
    );
}
