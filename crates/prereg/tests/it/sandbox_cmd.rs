//! `prereg sandbox`: one JSON ready line, serves, stops cleanly on SIGTERM and SIGINT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn get(base: &str, path: &str, token: Option<&str>) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn run_and_stop(signal: &str) {
    let (mut child, ready, mut lines) = spawn_ready(sandbox_command().stderr(Stdio::piped()));
    let f = &ready["fulfiller"];
    let base = f["base_url"].as_str().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_eq!(f["api_base_url"].as_str().unwrap(), format!("{base}/v1"));
    let token = f["tokens"][0].as_str().unwrap();
    assert_eq!(f["organization_id"].as_str().unwrap().len(), 22);
    assert!(
        f["products"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["product_name"] == "YubiKey 5 NFC")
    );
    assert!(f["inventory"][0]["inventory_product_id"].is_u64());
    assert!(f["customizations"][0].is_string());

    let jwks = get(base, "/.well-known/yubico-transport-keys.jwks", None);
    assert!(jwks.starts_with("HTTP/1.1 200"), "{jwks}");
    assert!(jwks.contains("P-384"));
    assert!(get(base, "/v1/products", None).starts_with("HTTP/1.1 401"));
    assert!(get(base, "/v1/products", Some(token)).starts_with("HTTP/1.1 200"));

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "did not stop on {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(lines.next().is_none(), "exactly one line on stdout");
}

#[test]
fn prints_one_ready_line_serves_and_stops_on_sigterm() {
    run_and_stop("-TERM");
}

#[test]
fn stops_on_sigint() {
    run_and_stop("-INT");
}

#[test]
fn refuses_a_non_loopback_address() {
    let out = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(["sandbox", "--fulfiller-listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[test]
fn a_seed_file_sets_the_tokens_and_organisation() {
    let seed_path =
        std::env::temp_dir().join(format!("prereg-sandbox-seed-{}.json", std::process::id()));
    let mut seed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../sandbox/seed/example.json"
        ))
        .unwrap(),
    )
    .unwrap();
    seed["tokens"] = serde_json::json!(["my-own-token"]);
    std::fs::write(&seed_path, seed.to_string()).unwrap();
    let (mut child, ready, _) = spawn_ready(sandbox_command().arg("--seed").arg(&seed_path));
    let base = ready["fulfiller"]["base_url"].as_str().unwrap().to_owned();
    assert_eq!(
        ready["fulfiller"]["tokens"],
        serde_json::json!(["my-own-token"])
    );
    assert!(get(&base, "/v1/inventory", Some("my-own-token")).starts_with("HTTP/1.1 200"));
    assert!(
        get(&base, "/v1/inventory", Some("yed-sandbox-token-0001")).starts_with("HTTP/1.1 401")
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    std::fs::remove_file(&seed_path).unwrap();
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

fn prereg_key(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_prereg"))
        .arg("key")
        .args(args)
        .output()
        .unwrap()
}

/// The "must show": only HTTP and independent tools on the client side (joserfc
/// seals the requests and opens the responses, python-fido2 verifies the attestation),
/// the sandbox as the `prereg sandbox` process, and `prereg key` proving that the PIN
/// from the PIN response opens the shipped key.
#[test]
fn end_to_end_through_prereg_sandbox_and_prereg_key() {
    let (mut child, ready, _) = spawn_ready(&mut sandbox_command());
    let f = &ready["fulfiller"];
    let base = f["base_url"].as_str().unwrap().to_owned();
    let token = f["tokens"][0].as_str().unwrap().to_owned();
    let fpr_product = f["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["fido_prereg"] == true)
        .unwrap()["product_id"]
        .clone();
    let bucket = f["inventory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["product_id"] == fpr_product)
        .unwrap()["inventory_product_id"]
        .clone();
    let out = testkit::run_python(
        "sandbox_e2e.py",
        &serde_json::json!({
            "base_url": base, "token": token,
            "origin": "https://login.microsoft.com", "rp_id": "login.microsoft.com",
            "pin": {"type": "generate", "length": 8}, "min_pin_length": 8,
            "force_pin_change": true,
            "product_id": fpr_product, "inventory_product_id": bucket,
            "customization_id": f["customizations"][0],
            "verify_attestation": true,
        }),
    );
    assert_eq!(out["attestation_verified"], "packed");
    let pin = out["pin"].as_str().unwrap().to_owned();
    let id = out["shipment_id"].as_str().unwrap();

    let resp = get(
        &base,
        &format!("/sandbox/v1/shipments/{id}/key"),
        Some(&token),
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let dir = std::env::temp_dir().join(format!("prereg-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.json");
    std::fs::write(&key, body(&resp)).unwrap();
    let key = key.to_str().unwrap();

    let info = prereg_key(&["info", key]);
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["serial"].to_string(), out["serial"].as_str().unwrap());
    assert_eq!(info["pin_set"], true);
    assert_eq!(info["force_pin_change"], true);
    assert_eq!(info["min_pin_length"], 8);
    assert!(!info.to_string().contains(&pin), "info never shows the PIN");

    let wrong = prereg_key(&["change-pin", key, "--old", "31415926", "--new", "27182818"]);
    assert!(!wrong.status.success(), "a wrong PIN does not open the key");
    let right = prereg_key(&["change-pin", key, "--old", &pin, "--new", "27182818"]);
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    let signed = prereg_key(&[
        "get-assertion",
        key,
        "--rp-id",
        "login.microsoft.com",
        "--challenge",
        "sign-in-after-delivery",
        "--origin",
        "https://login.microsoft.com",
        "--pin",
        "27182818",
    ]);
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
