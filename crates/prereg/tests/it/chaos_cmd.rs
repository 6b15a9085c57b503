//! `prereg chaos` through the built binary on SQLite: 50 users (25 in Entra mode, 25 in
//! Okta mode), the only replica SIGKILLed 3 times and restarted, a fifth of the vendor
//! calls and PIN mails failing while the orders go in. Counted from the vendors' side,
//! every promise holds: every request complete, one shipment and one credential per
//! user, every PIN mailed, no PIN in the logs or the database. No time is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use serde_json::{Value, json};

/// `prereg chaos <args>`: exit code, stdout, stderr.
fn chaos(args: &[&str]) -> (i32, String, String) {
    let out = common::prereg(&[&["chaos"], args].concat());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn fifty_users_three_kills_and_faults_on_sqlite_keep_every_promise() {
    let (code, out, err) = chaos(&[
        "--users",
        "50",
        "--kills",
        "3",
        "--fault-rate",
        "0.2",
        "--seed",
        "7",
        "--json",
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "--json prints one JSON object:\n{out}");
    let r: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["problems"], json!([]), "{r}");

    let run = &r["run"];
    assert_eq!(run["kills"], 3, "{run}");
    assert_eq!(run["restarts"], 3, "{run}");
    assert_eq!(run["finished"], true, "{run}");
    assert!(run["requests_per_second"].as_f64().unwrap() > 0.0, "{run}");
    assert!(
        run["events_redelivered"].as_u64().unwrap() >= 1,
        "the seed has group adds: {run}"
    );
    assert_eq!(
        run["events_redelivered"], run["duplicates_ignored"],
        "every redelivered event is recognised: {run}"
    );

    for idp in ["entra", "okta"] {
        let v = &r["vendors"][idp];
        assert_eq!(v["users"], 25, "{idp}: {v}");
        assert_eq!(v["complete"], 25, "{idp}: {v}");
        for k in [
            "no_shipment",
            "not_shipped",
            "extra_shipments",
            "no_credential",
            "duplicate_credentials",
            "undelivered_pins",
            "conflicting_pins",
        ] {
            assert_eq!(v[k], 0, "{idp} {k}: {v}");
        }
        assert_eq!(r["connector"][idp]["complete"], 25, "{r}");
    }
    assert_eq!(r["vendors"]["unmatched_shipments"], 0);

    let s = &r["secrecy"];
    let searched = s["pins_searched"].as_u64().unwrap() + s["pins_left_out"].as_u64().unwrap();
    assert!(
        searched >= 45,
        "the PINs of (nearly) 50 keys are searched: {s}"
    );
    assert!(s["log_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["database_bytes"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["pins_in_logs"], 0, "{s}");
    assert_eq!(s["pins_in_database"], 0, "{s}");
}

#[test]
fn several_replicas_on_sqlite_are_refused_naming_postgres() {
    let (code, out, err) = chaos(&["--users", "2", "--replicas", "2"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("--replicas 2 needs --db postgres"), "{err}");
    assert!(out.is_empty(), "{out}");
}
