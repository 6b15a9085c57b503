//! No private key, PIN or token shows up in `Debug` output or in the summary that
//! `prereg key info` prints; the PIN is not in the key file either.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use authenticator::{KeyProgrammer, Pin, VirtualYubiKey, client};
use serde_json::Value;

const OPTIONS: &str = include_str!("../fixtures/entra_creation_options.json");
const PIN: &str = "86420975";

/// Every private value in the key file: the attestation key and each credential's key
/// and hmac-secret.
fn secrets_in(file: &Value) -> Vec<String> {
    let mut out = vec![
        file["attestation"]["private_key"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    for c in file["credentials"].as_array().unwrap() {
        out.push(c["private_key"].as_str().unwrap().to_owned());
        out.push(c["hmac_secret"].as_str().unwrap().to_owned());
    }
    out
}

#[test]
fn debug_info_and_file_never_show_the_pin_and_only_the_file_holds_private_keys() {
    let mut k = VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        "5.7.1".parse().unwrap(),
        None,
    )
    .unwrap();
    let pin = Pin::new(PIN);
    k.set_pin(&pin).unwrap();
    let reg = client::make_credential(&mut k, OPTIONS, "https://login.microsoft.com", Some(&pin))
        .unwrap();

    let file = k.to_json().unwrap();
    assert!(!file.contains(PIN), "the key file holds the PIN in clear");
    let file: Value = serde_json::from_str(&file).unwrap();
    assert!(
        file["warning"]
            .as_str()
            .unwrap()
            .starts_with("SANDBOX ONLY")
    );
    let secrets = secrets_in(&file);
    assert_eq!(secrets.len(), 3);

    let debug = format!("{k:?} {pin:?} {reg:?} {:?}", k.get_info().unwrap());
    let summary = serde_json::to_string(&k.summary()).unwrap();
    let summary_debug = format!("{:?}", k.summary());
    for shown in [&debug, &summary, &summary_debug] {
        assert!(!shown.contains(PIN), "PIN in {shown}");
        for s in &secrets {
            assert!(!shown.contains(s.as_str()), "private value in {shown}");
        }
        assert!(!shown.contains("private_key"), "{shown}");
    }
    assert!(debug.contains("[redacted]"));
}
