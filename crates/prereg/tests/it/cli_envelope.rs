//! `prereg envelope inspect|open` against the committed joserfc vectors, run as the real
//! binary: outputs a user sees, one-line reasons and exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A scratch folder holding the vector keys and tokens as files.
struct Files {
    dir: PathBuf,
    v: Value,
}

impl Files {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("prereg-cli-envelope-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            v: testkit::vectors("envelope-v1.json"),
        }
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn key(&self, name: &str) -> String {
        self.write(&format!("{name}.jwk"), &self.v["keys"][name].to_string())
    }

    fn case(&self, group: &str, name: &str) -> &Value {
        self.v[group]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
    }

    fn token(&self, group: &str, name: &str) -> String {
        self.write(
            &format!("{name}.jwe"),
            self.case(group, name)["jwe"].as_str().unwrap(),
        )
    }

    fn request_of(&self, group: &str, name: &str) -> String {
        let req = self.case(group, name)["request_jwe"].as_str().unwrap();
        self.write(&format!("{name}.request.jwe"), req)
    }

    fn signing_jwks(&self) -> String {
        self.write("signing.jwks", &self.v["trusted_signing_jwks"].to_string())
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn prereg(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one line a failing command printed, after checking it failed with exit 1.
fn failure_line(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "a failure must print no payload");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    err
}

#[test]
fn inspect_prints_the_jwe_header_without_any_key() {
    let f = Files::new("inspect");
    let token = f.token("valid", "credential-response");
    let header = stdout_json(&prereg(&["envelope", "inspect", &token], None));
    assert_eq!(header["jwe"]["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["jwe"]["cty"], "JWS");
    assert_eq!(header["jwe"]["kid"], "rk-public-0001");
    assert!(header["jwe"].get("ciphertext").is_none());
}

#[test]
fn inspect_reads_a_token_from_standard_input() {
    let f = Files::new("inspect-stdin");
    let token = f.case("valid", "pin-request")["jwe"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = stdout_json(&prereg(
        &["envelope", "inspect", "-"],
        Some(&format!("{token}\n")),
    ));
    assert_eq!(header["jwe"]["cty"], "fido-prereg+json");
}

#[test]
fn open_prints_a_request_payload_with_the_transport_key() {
    let f = Files::new("open-request");
    for name in ["credential-request", "pin-request"] {
        let (key, token) = (f.key("transport"), f.token("valid", name));
        let payload = stdout_json(&prereg(&["envelope", "open", "--key", &key, &token], None));
        assert_eq!(payload, f.case("valid", name)["expect"], "{name}");
    }
}

#[test]
fn open_prints_a_verified_response_payload() {
    let f = Files::new("open-response");
    for name in ["credential-response", "pin-response"] {
        let out = prereg(
            &[
                "envelope",
                "open",
                "--key",
                &f.key("response"),
                "--signing-jwks",
                &f.signing_jwks(),
                "--request",
                &f.request_of("valid", name),
                &f.token("valid", name),
            ],
            None,
        );
        assert_eq!(stdout_json(&out), f.case("valid", name)["expect"], "{name}");
    }
}

#[test]
fn open_accepts_several_keys_and_picks_by_kid() {
    let f = Files::new("open-keyring");
    let args = [
        "envelope",
        "open",
        "--key",
        &f.write("not-a-key.jwk", "{}"),
        "--key",
        &f.key("transport"),
        &f.token("valid", "pin-request"),
    ];
    // The first file is not a key at all, which is reported rather than skipped.
    assert!(failure_line(&prereg(&args, None)).contains("reading private key"));
    let response = f.key("response");
    let transport = f.key("transport");
    let token = f.token("valid", "pin-request");
    let ok = prereg(
        &[
            "envelope", "open", "--key", &response, "--key", &transport, &token,
        ],
        None,
    );
    assert_eq!(stdout_json(&ok)["typ"], "fido-prereg/pin-request+v1");
}

#[test]
fn response_signed_by_untrusted_key_fails_with_a_one_line_reason() {
    let f = Files::new("untrusted");
    let out = prereg(
        &[
            "envelope",
            "open",
            "--key",
            &f.key("response"),
            "--signing-jwks",
            &f.signing_jwks(),
            "--request",
            &f.request_of("invalid", "unknown-signer"),
            &f.token("invalid", "unknown-signer"),
        ],
        None,
    );
    let line = failure_line(&out);
    assert!(line.contains("not in the trusted signing JWKS"), "{line}");
    assert!(
        !line.contains("05472458"),
        "the PIN must never be printed on failure"
    );
}

#[test]
fn tampered_request_fails_with_a_one_line_reason() {
    let f = Files::new("tampered");
    let out = prereg(
        &[
            "envelope",
            "open",
            "--key",
            &f.key("transport"),
            &f.token("invalid", "tampered-ciphertext"),
        ],
        None,
    );
    assert!(failure_line(&out).contains("decryption failed"));
}

#[test]
fn response_without_its_request_is_refused() {
    let f = Files::new("no-request");
    let out = prereg(
        &[
            "envelope",
            "open",
            "--key",
            &f.key("response"),
            "--signing-jwks",
            &f.signing_jwks(),
            &f.token("valid", "pin-response"),
        ],
        None,
    );
    assert!(failure_line(&out).contains("--request"));
}

#[test]
fn response_opened_against_another_request_is_refused() {
    let f = Files::new("other-request");
    let out = prereg(
        &[
            "envelope",
            "open",
            "--key",
            &f.key("response"),
            "--signing-jwks",
            &f.signing_jwks(),
            "--request",
            &f.request_of("valid", "credential-response"),
            &f.token("valid", "pin-response"),
        ],
        None,
    );
    assert!(failure_line(&out).contains("request_hash does not match"));
}
