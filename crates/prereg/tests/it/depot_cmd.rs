//! `prereg depot`: `serve` prints its ready line and keeps its state directory; the
//! desk's `list` and `program` talk to it with the desk token from that directory.
//! (The whole chain, a depot-programmed key signing in, is the connector's test
//! `depot`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use std::process::{Command, Stdio};

#[test]
fn the_desk_lists_nothing_waiting_and_refuses_an_unknown_shipment_without_writing_a_key() {
    let dir = std::env::temp_dir().join(format!("prereg-depot-cli-{}", std::process::id()));
    let state = dir.join("depot");
    let state_arg = state.to_str().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prereg"));
    cmd.args([
        "depot",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        state_arg,
    ])
    .stdout(Stdio::piped());
    let (child, ready, _) = spawn_ready(&mut cmd);
    let _running = Running(child);
    assert_eq!(ready["ready"], true);
    let base = ready["fulfiller"]["base_url"].as_str().unwrap().to_owned();
    assert_eq!(ready["fulfiller"]["api_base_url"], format!("{base}/v1"));
    assert_eq!(ready["depot"]["desk_url"], format!("{base}/depot/v1"));
    assert!(
        !ready.to_string().contains(
            std::fs::read_to_string(state.join("desk-token"))
                .unwrap()
                .trim()
        )
    );
    for file in ["keys.json", "desk-token"] {
        assert!(state.join(file).exists(), "{file}");
    }

    let out = prereg(&["depot", "list", "--url", &base, "--state-dir", state_arg]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no shipment is waiting"
    );

    let key_out = dir.join("key.json");
    // `prereg depot program` of an unknown shipment with `extra` arguments: it fails
    // with this message on stderr, and writes no key.
    let refused = |extra: &[&str]| {
        let mut args = vec![
            "depot",
            "program",
            "1111111111111111111111",
            "--key-out",
            key_out.to_str().unwrap(),
            "--url",
            &base,
            "--state-dir",
            state_arg,
        ];
        args.extend_from_slice(extra);
        let out = prereg(&args);
        assert!(!out.status.success());
        assert!(!key_out.exists());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&[]);
    assert!(
        err.contains("404") && err.contains("was not found"),
        "{err}"
    );
    // A serial number that is not one is refused before anything is programmed.
    let err = refused(&["--serial", "12ab"]);
    assert!(
        err.contains("400") && err.contains("serial number \"12ab\" is not a key's serial number"),
        "{err}"
    );

    // Without the desk token (another state directory) the desk is refused.
    let out = prereg(&[
        "depot",
        "list",
        "--url",
        &base,
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A prereg built without the `usb` feature says how to get real keys, and starts
/// nothing.
#[cfg(not(feature = "usb"))]
#[test]
fn a_depot_with_real_keys_needs_the_usb_build() {
    let dir = std::env::temp_dir().join(format!("prereg-depot-usb-{}", std::process::id()));
    let out = prereg(&[
        "depot",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--keys",
        "usb",
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features usb"), "{err}");
    assert!(err.contains("libudev-dev"), "{err}");
    assert!(!dir.exists(), "nothing was created");
}
