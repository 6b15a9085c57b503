//! The virtual key's registration and assertion JSON verify with an independent relying
//! party: Yubico's python-fido2 (`interop/key_verify.py`, pinned venv).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use authenticator::{KeyProgrammer, Pin, VirtualYubiKey, client, sandbox_attestation_root_pem};
use serde_json::{Value, json};

const ENTRA_OPTIONS: &str = include_str!("../fixtures/entra_creation_options.json");
const ORIGIN: &str = "https://login.microsoft.com";
const RP_ID: &str = "login.microsoft.com";

fn entra_challenge() -> String {
    let v: Value = serde_json::from_str(ENTRA_OPTIONS).unwrap();
    v["publicKey"]["challenge"].as_str().unwrap().to_owned()
}

fn key(model: &str, firmware: &str) -> (VirtualYubiKey, Pin) {
    let mut k =
        VirtualYubiKey::new(model.parse().unwrap(), firmware.parse().unwrap(), None).unwrap();
    let pin = Pin::new("482915");
    k.set_pin(&pin).unwrap();
    (k, pin)
}

fn verify(registration: &Value, assertions: Vec<(Value, &str)>) -> Value {
    testkit::run_python(
        "key_verify.py",
        &json!({
            "root_pem": sandbox_attestation_root_pem(),
            "rp_id": RP_ID,
            "origin": ORIGIN,
            "registration": registration,
            "create_challenge": entra_challenge(),
            "assertions": assertions
                .into_iter()
                .map(|(r, c)| json!({"response": r, "challenge": c}))
                .collect::<Vec<_>>(),
        }),
    )
}

#[test]
fn entra_registration_and_assertions_verify_with_python_fido2() {
    let (mut k, pin) = key("YubiKey 5 NFC", "5.7.1");
    let reg = client::make_credential(&mut k, ENTRA_OPTIONS, ORIGIN, Some(&pin)).unwrap();
    let reg = serde_json::to_value(&reg).unwrap();
    assert_eq!(reg["type"], "public-key");
    assert_eq!(reg["authenticatorAttachment"], "cross-platform");
    assert_eq!(reg["response"]["transports"], json!(["nfc", "usb"]));
    assert_eq!(
        reg["clientExtensionResults"],
        json!({"hmacCreateSecret": true, "credentialProtectionPolicy": "userVerificationOptional"})
    );

    let a1 =
        client::get_assertion(&mut k, RP_ID, "Y2hhbGxlbmdlLTE", ORIGIN, &[], Some(&pin)).unwrap();
    let a2 =
        client::get_assertion(&mut k, RP_ID, "Y2hhbGxlbmdlLTI", ORIGIN, &[], Some(&pin)).unwrap();
    let out = verify(
        &reg,
        vec![
            (serde_json::to_value(&a1).unwrap(), "Y2hhbGxlbmdlLTE"),
            (serde_json::to_value(&a2).unwrap(), "Y2hhbGxlbmdlLTI"),
        ],
    );

    let r = &out["registration"];
    assert!(r.get("error").is_none(), "{out:#}");
    assert_eq!(r["fmt"], "packed");
    assert_eq!(r["attestation_type"], "BASIC");
    assert_eq!(r["trust_path_len"], 2);
    assert_eq!(r["aaguid"], "a25342c0-3cdc-4414-8e46-f4807fca511c");
    assert_eq!(r["user_verified"], true);
    assert_eq!(r["counter"], 0);
    assert_eq!(
        r["extensions"],
        json!({"credProtect": 1, "hmac-secret": true})
    );
    assert_eq!(r["client_data_type"], "webauthn.create");
    assert_eq!(r["public_key_alg"], -7);
    assert!(
        r["leaf_subject"]
            .as_str()
            .unwrap()
            .contains("OU=Authenticator Attestation"),
        "{r}"
    );

    let user_id = "T0Y6mho3vwFprE6aslBq9b2Qjz7Ixbn0PntEPkHirHimyfAtmz4xoilu6sNoiPFkmvxW";
    for (i, a) in out["assertions"].as_array().unwrap().iter().enumerate() {
        assert_eq!(a["ok"], true, "{out:#}");
        assert_eq!(a["counter"], i + 1);
        assert_eq!(a["user_handle"], user_id);
    }
}

#[test]
fn older_firmware_reports_its_own_aaguid_to_python_fido2() {
    let (mut k, pin) = key("YubiKey 5C NFC", "5.4.3");
    let reg = client::make_credential(&mut k, ENTRA_OPTIONS, ORIGIN, Some(&pin)).unwrap();
    let out = verify(&serde_json::to_value(&reg).unwrap(), vec![]);
    assert_eq!(
        out["registration"]["aaguid"], "2fc0579f-8113-47ea-b116-bb5a8db9202a",
        "{out:#}"
    );
}

#[test]
fn tampering_is_caught_by_python_fido2() {
    let (mut k, pin) = key("YubiKey 5 NFC", "5.7.1");
    let reg = client::make_credential(&mut k, ENTRA_OPTIONS, ORIGIN, Some(&pin)).unwrap();
    let mut reg = serde_json::to_value(&reg).unwrap();
    let a =
        client::get_assertion(&mut k, RP_ID, "Y2hhbGxlbmdlLTE", ORIGIN, &[], Some(&pin)).unwrap();
    let mut a = serde_json::to_value(&a).unwrap();
    // A signature from another challenge.
    a["response"]["clientDataJSON"] = json!(authenticator::b64::encode(client::client_data_json(
        "webauthn.get",
        "b3RoZXI",
        ORIGIN
    )));
    let out = verify(&reg, vec![(a, "b3RoZXI")]);
    assert!(
        out["assertions"][0]["error"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{out:#}"
    );
    // A clientDataJSON with the same meaning but other bytes: the attestation signed
    // the hash of the original bytes.
    let mut cd = client::client_data_json("webauthn.create", &entra_challenge(), ORIGIN);
    cd.insert(1, b' ');
    reg["response"]["clientDataJSON"] = json!(authenticator::b64::encode(cd));
    let out = verify(&reg, vec![]);
    let err = out["registration"]["error"].as_str().unwrap();
    assert!(err.contains("InvalidSignature"), "{out:#}");
}
