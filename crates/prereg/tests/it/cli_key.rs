//! `prereg key ...` run as the real binary: the key file is the physical key, counters
//! survive between commands (also failed ones), outputs verify with python-fido2, and
//! `info` never shows a secret.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};

const ORIGIN: &str = "https://login.microsoft.com";
const RP_ID: &str = "login.microsoft.com";
const PIN: &str = "24681357";

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("prereg-cli-key-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    fn options(&self) -> String {
        let root = testkit::repo_root();
        let text = std::fs::read_to_string(
            root.join("crates/authenticator/tests/fixtures/entra_creation_options.json"),
        )
        .unwrap();
        let p = self.path("options.json");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A new key with a PIN set.
    fn key(&self) -> String {
        let key = self.path("key.json");
        ok(&[
            "key",
            "create",
            "--model",
            "YubiKey 5 NFC",
            "--firmware",
            "5.7.1",
            "--out",
            &key,
        ]);
        ok(&["key", "set-pin", &key, "--pin", PIN]);
        key
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn prereg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(args)
        .env_remove("PREREG_KEY_PIN")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> Value {
    let out = prereg(args);
    assert!(
        out.status.success(),
        "prereg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = prereg(args);
    assert_eq!(out.status.code(), Some(1), "prereg {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    err
}

fn info(key: &str) -> Value {
    ok(&["key", "info", key])
}

#[test]
fn create_shows_identity_with_the_aaguid_of_model_and_firmware() {
    let s = Scratch::new("create");
    let key = s.path("k.json");
    let i = ok(&[
        "key",
        "create",
        "--model",
        "YubiKey 5C NFC",
        "--firmware",
        "5.4.3",
        "--serial",
        "12345678",
        "--out",
        &key,
    ]);
    assert_eq!(i["serial"], 12345678);
    assert_eq!(i["firmware"], "5.4.3");
    assert_eq!(i["model"], "YubiKey 5C NFC");
    assert_eq!(i["aaguid"], "2fc0579f-8113-47ea-b116-bb5a8db9202a");
    assert_eq!(i["pin_set"], false);
    assert_eq!(i["min_pin_length"], 4);
    let err = fails(&["key", "create", "--out", &key]);
    assert!(err.contains("--force"), "{err}");

    let key2 = s.path("k2.json");
    let i = ok(&["key", "create", "--out", &key2]);
    let serial = i["serial"].as_u64().unwrap();
    assert!((10_000_000..100_000_000).contains(&serial));
    assert_eq!(i["aaguid"], "a25342c0-3cdc-4414-8e46-f4807fca511c");

    let err = fails(&[
        "key",
        "create",
        "--firmware",
        "5.8.0",
        "--out",
        &s.path("k3.json"),
    ]);
    assert!(err.contains("no known AAGUID"), "{err}");
}

#[test]
fn registration_and_sign_in_verify_with_python_fido2() {
    let s = Scratch::new("register");
    let key = s.key();
    let reg = ok(&[
        "key",
        "make-credential",
        &key,
        "--options",
        &s.options(),
        "--origin",
        ORIGIN,
        "--pin",
        PIN,
    ]);
    let a = ok(&[
        "key",
        "get-assertion",
        &key,
        "--rp-id",
        RP_ID,
        "--challenge",
        "sign in please",
        "--origin",
        ORIGIN,
        "--pin",
        PIN,
    ]);
    let options: Value =
        serde_json::from_str(&std::fs::read_to_string(s.options()).unwrap()).unwrap();
    let out = testkit::run_python(
        "key_verify.py",
        &json!({
            "root_pem": authenticator::sandbox_attestation_root_pem(),
            "rp_id": RP_ID,
            "origin": ORIGIN,
            "registration": reg,
            "create_challenge": options["publicKey"]["challenge"],
            "assertions": [{"response": a, "challenge": "c2lnbiBpbiBwbGVhc2U"}],
        }),
    );
    assert!(out["registration"].get("error").is_none(), "{out:#}");
    assert_eq!(
        out["registration"]["aaguid"],
        "a25342c0-3cdc-4414-8e46-f4807fca511c"
    );
    assert_eq!(out["assertions"][0]["ok"], true, "{out:#}");
    assert_eq!(out["assertions"][0]["counter"], 1);

    let i = info(&key);
    let creds = &i["credentials"][RP_ID];
    assert_eq!(creds[0]["user_name"], "john@contoso.com");
    assert_eq!(creds[0]["credential_id"], reg["id"]);
    assert_eq!(creds[0]["sign_count"], 1);

    // The same user again: the RP lists the credential in excludeCredentials.
    let mut opts = options.clone();
    opts["publicKey"]["excludeCredentials"] = json!([{"type": "public-key", "id": reg["id"]}]);
    let p = s.path("options2.json");
    std::fs::write(&p, opts["publicKey"].to_string()).unwrap();
    let err = fails(&[
        "key",
        "make-credential",
        &key,
        "--options",
        &p,
        "--origin",
        ORIGIN,
        "--pin",
        PIN,
    ]);
    assert!(err.contains("CTAP2_ERR_CREDENTIAL_EXCLUDED"), "{err}");
}

#[test]
fn registration_verifies_with_prereg_webauthn_against_the_printed_sandbox_root() {
    let s = Scratch::new("rp");
    let key = s.key();
    let reg = ok(&[
        "key",
        "make-credential",
        &key,
        "--options",
        &s.options(),
        "--origin",
        ORIGIN,
        "--pin",
        PIN,
    ]);
    let root = prereg(&["key", "sandbox-root"]);
    assert!(root.status.success());
    let root_pem = String::from_utf8(root.stdout).unwrap();
    assert!(root_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let root_file = s.path("root.pem");
    std::fs::write(&root_file, &root_pem).unwrap();
    let out = ok(&[
        "webauthn",
        "verify-attestation",
        "--rp-id",
        RP_ID,
        "--client-data",
        reg["response"]["clientDataJSON"].as_str().unwrap(),
        "--attestation-object",
        reg["response"]["attestationObject"].as_str().unwrap(),
        "--trust-root",
        &root_file,
        "--require-uv",
    ]);
    assert_eq!(out["attested"], true, "{out}");
    assert_eq!(out["aaguid"], "a25342c0-3cdc-4414-8e46-f4807fca511c");
    assert_eq!(out["credential_id"], reg["id"]);
}

#[test]
fn wrong_pins_are_remembered_between_commands_until_reinsert() {
    let s = Scratch::new("retries");
    let key = s.key();
    let opts = s.options();
    let mc = |pin: &str| -> Vec<String> {
        [
            "key",
            "make-credential",
            &key,
            "--options",
            &opts,
            "--origin",
            ORIGIN,
            "--pin",
            pin,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let run = |args: Vec<String>| fails(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        run(mc("11111111")).contains("CTAP2_ERR_PIN_INVALID (0x31): wrong PIN, 7 attempts left")
    );
    assert_eq!(info(&key)["pin_retries"], 7);
    assert!(run(mc("11111111")).contains("6 attempts left"));
    assert!(run(mc("11111111")).contains("CTAP2_ERR_PIN_AUTH_BLOCKED"));
    // Right PIN, but the key must be reinserted first.
    assert!(run(mc(PIN)).contains("reinsert"));
    let i = info(&key);
    assert_eq!(i["pin_retries"], 5);
    assert_eq!(i["pin_failures_since_insertion"], 3);

    ok(&["key", "reinsert", &key]);
    let args = mc(PIN);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(info(&key)["pin_retries"], 8);

    // Wrong current PIN in change-pin counts as well.
    let err = fails(&[
        "key",
        "change-pin",
        &key,
        "--old",
        "99999999",
        "--new",
        "13572468",
    ]);
    assert!(err.contains("7 attempts left"), "{err}");
}

#[test]
fn eight_wrong_pins_block_the_key_until_reset() {
    let s = Scratch::new("blocked");
    let key = s.key();
    let ga = [
        "key",
        "get-assertion",
        &key,
        "--rp-id",
        RP_ID,
        "--challenge",
        "x",
        "--origin",
        ORIGIN,
        "--pin",
        "00000000",
    ];
    for round in 0..3 {
        for _ in 0..3 {
            if round == 2 && info(&key)["pin_retries"] == 0 {
                break;
            }
            fails(&ga);
        }
        ok(&["key", "reinsert", &key]);
    }
    let i = info(&key);
    assert_eq!(i["pin_retries"], 0);
    assert_eq!(i["pin_blocked"], true);
    let err = fails(&[
        "key",
        "set-min-pin-length",
        &key,
        "--pin",
        PIN,
        "--length",
        "6",
    ]);
    assert!(err.contains("CTAP2_ERR_PIN_BLOCKED"), "{err}");
    // Reset only right after insertion.
    let err = fails(&["key", "reset", &key]);
    assert!(err.contains("CTAP2_ERR_NOT_ALLOWED"), "{err}");
    ok(&["key", "reinsert", &key]);
    let i = ok(&["key", "reset", &key]);
    assert_eq!(i["pin_set"], false);
    assert_eq!(i["pin_retries"], 8);
}

#[test]
fn forced_pin_change_blocks_use_until_the_pin_is_changed() {
    let s = Scratch::new("force");
    let key = s.key();
    let opts = s.options();
    ok(&[
        "key",
        "make-credential",
        &key,
        "--options",
        &opts,
        "--origin",
        ORIGIN,
        "--pin",
        PIN,
    ]);
    let i = ok(&[
        "key",
        "set-min-pin-length",
        &key,
        "--pin",
        PIN,
        "--length",
        "6",
        "--force-change",
    ]);
    assert_eq!(i["force_pin_change"], true);
    assert_eq!(i["min_pin_length"], 6);

    let ga = [
        "key",
        "get-assertion",
        &key,
        "--rp-id",
        RP_ID,
        "--challenge",
        "x",
        "--origin",
        ORIGIN,
        "--pin",
        PIN,
    ];
    assert!(fails(&ga).contains("CTAP2_ERR_PIN_POLICY_VIOLATION"));
    let err = fails(&["key", "change-pin", &key, "--old", PIN, "--new", PIN]);
    assert!(err.contains("must differ"), "{err}");
    let err = fails(&["key", "change-pin", &key, "--old", PIN, "--new", "12345"]);
    assert!(err.contains("shorter than the key's minimum"), "{err}");
    let i = ok(&["key", "change-pin", &key, "--old", PIN, "--new", "97531864"]);
    assert_eq!(i["force_pin_change"], false);
    let ga_new = [
        "key",
        "get-assertion",
        &key,
        "--rp-id",
        RP_ID,
        "--challenge",
        "x",
        "--origin",
        ORIGIN,
        "--pin",
        "97531864",
    ];
    ok(&ga_new);
}

#[test]
fn info_never_shows_private_keys_or_the_pin() {
    let s = Scratch::new("info");
    let key = s.key();
    ok(&[
        "key",
        "make-credential",
        &key,
        "--options",
        &s.options(),
        "--origin",
        ORIGIN,
        "--pin",
        PIN,
    ]);
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    let mut secrets = vec![
        file["attestation"]["private_key"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    for c in file["credentials"].as_array().unwrap() {
        secrets.push(c["private_key"].as_str().unwrap().to_owned());
    }
    let shown = String::from_utf8(prereg(&["key", "info", &key]).stdout).unwrap();
    assert!(shown.contains("john@contoso.com"));
    assert!(!shown.contains(PIN));
    for secret in &secrets {
        assert!(!shown.contains(secret.as_str()));
    }
    assert!(!std::fs::read_to_string(&key).unwrap().contains(PIN));
}
