//! Test-only helpers shared by the crates' integration tests: where the repository and
//! its committed test data are, and how to run an interop script under the pinned Python
//! venv (`interop/requirements.txt`, created by `scripts/test`).
//!
//! Not for production code: every function panics with a message that says what to do,
//! which is the right failure inside a test.
#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The workspace root (the folder with the top-level `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|p| p.parent())
        .expect("testkit lives at crates/testkit")
        .to_path_buf()
}

/// Reads and parses a committed vector file from `testdata/vectors/`.
pub fn vectors(name: &str) -> serde_json::Value {
    let path = repo_root().join("testdata/vectors").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The Python interpreter of the interop venv: `$PREREG_PYTHON`, else `.venv/bin/python`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PREREG_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "no Python interop venv at {}; run scripts/test once (it creates it), or set PREREG_PYTHON",
        p.display()
    );
    p
}

/// Runs `interop/<script>` with the venv's Python, sends `input` as JSON on stdin, and
/// returns the JSON the script prints on stdout. Panics with the script's stderr when
/// it exits non-zero.
pub fn run_python(script: &str, input: &serde_json::Value) -> serde_json::Value {
    let path = repo_root().join("interop").join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.to_string().as_bytes())
        .expect("writing to the interop script");
    let out = child
        .wait_with_output()
        .expect("waiting for the interop script");
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
