//! `prereg webauthn verify-attestation` against the committed attestation vectors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::process::{Command, Output};

fn vector(section: &str, name: &str) -> serde_json::Value {
    let all = testkit::vectors("attestation-v1.json");
    all[section]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn run(v: &serde_json::Value, extra: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!(
        "prereg-cli-webauthn-{}-{}",
        std::process::id(),
        v["name"].as_str().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let root = dir.join("root.pem");
    std::fs::write(&root, v["trust_root_pem"].as_str().unwrap()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(["webauthn", "verify-attestation", "--rp-id"])
        .arg(v["rp_id"].as_str().unwrap())
        .arg("--client-data")
        .arg(v["client_data_json"].as_str().unwrap())
        .arg("--attestation-object")
        .arg(v["attestation_object"].as_str().unwrap())
        .arg("--trust-root")
        .arg(&root)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn valid_registration_prints_the_credential() {
    let v = vector("valid", "packed-x5c");
    let out = run(
        &v,
        &[
            "--require-uv",
            "--challenge",
            v["challenge"].as_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["fmt"], "packed");
    assert_eq!(got["aaguid"], v["aaguid"]);
    assert_eq!(got["credential_id"], v["credential_id"]);
    assert_eq!(got["public_key_cose"], v["credential_public_key_cose"]);
    assert_eq!(got["attested"], true);
}

#[test]
fn untrusted_root_exits_1_with_the_reason() {
    let out = run(&vector("invalid", "untrusted-root"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("trust root"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn uv_clear_is_refused_with_require_uv() {
    let v = vector("invalid", "uv-flag-clear");
    let out = run(&v, &["--require-uv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("user verification"));
}

#[test]
fn wrong_challenge_or_origin_is_refused() {
    let v = vector("valid", "packed-x5c");
    let out = run(&v, &["--challenge", "not-the-challenge"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("challenge"));
    let out = run(&v, &["--origin", "https://evil.example"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("origin"));
}

#[test]
fn fmt_none_is_refused_unless_unattested_is_allowed() {
    let v = vector("invalid", "fmt-none-when-attestation-enforced");
    let out = run(&v, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("attestation is required"));

    let out = run(&v, &["--allow-unattested", "--require-uv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["fmt"], "none");
    assert_eq!(got["attested"], false);
    assert_eq!(got["credential_id"], v["credential_id"]);
}

#[test]
fn certificates_are_checked_at_the_current_time() {
    // findings-v1.json: a leaf valid 2019-01-01 .. 2020-01-01 under a chain still valid;
    // the library accepts it when no time is given, the command checks today's date.
    let all = testkit::vectors("findings-v1.json");
    let v = all["attestation"]["expired"][0].clone();
    let out = run(&v, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("validity period"), "{err}");
}
