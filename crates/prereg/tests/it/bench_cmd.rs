//! `prereg bench` through the built binary, on SQLite and on PostgreSQL (127.0.0.1:5432,
//! a throwaway database the bench makes and drops): one JSON object naming the machine,
//! and per backend the Entra intake and processing and the Okta batch and processing,
//! with every request complete and exactly N shipments at the fulfiller per mode, with
//! and without the sandboxes' added latency (`--latency-ms`). No time value is asserted,
//! only that each number is there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Command;

fn bench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn number(v: &Value, path: &str) {
    assert!(v.is_f64() || v.is_u64(), "{path} is not a number: {v}");
}

/// Runs `--json` with `args`, checks the shape and the correctness fields for `users`
/// per mode on both backends, and returns the report.
fn json_run(args: &[&str], users: u64) -> Value {
    let (code, out, err) = bench(args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "--json prints one JSON object:\n{out}");
    let r: Value = serde_json::from_str(lines[0]).unwrap();

    assert_eq!(r["users"], users);
    assert_eq!(r["concurrency"], 16, "the default");
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["machine"]["cores"].as_u64().unwrap() >= 1, "{r}");
    let profile = r["machine"]["profile"].as_str().unwrap();
    assert!(["debug", "release"].contains(&profile), "{profile}");

    let backends = r["backends"].as_array().unwrap();
    let dbs: Vec<&str> = backends.iter().map(|b| b["db"].as_str().unwrap()).collect();
    assert_eq!(dbs, ["sqlite", "postgres"]);
    for b in backends {
        let db = b["db"].as_str().unwrap();
        assert_eq!(b["ok"], true, "{db}: {b}");
        assert_eq!(b["problems"], serde_json::json!([]), "{db}");

        let intake = &b["entra"]["intake"];
        assert_eq!(intake["requests"], users, "{db}");
        for k in ["seconds", "per_second"] {
            number(&intake[k], &format!("{db} entra intake {k}"));
        }
        for k in ["p50", "p95", "p99", "max"] {
            number(&intake["latency_ms"][k], &format!("{db} entra latency {k}"));
        }
        number(
            &b["okta"]["processing"]["approvals_seconds"],
            &format!("{db} okta approvals_seconds"),
        );
        let batch = &b["okta"]["batch"];
        assert_eq!(batch["users"], users, "{db}");
        for k in ["seconds", "per_second"] {
            number(&batch[k], &format!("{db} okta batch {k}"));
        }

        for mode in ["entra", "okta"] {
            let p = &b[mode]["processing"];
            assert_eq!(
                p["complete"], users,
                "{db} {mode}: every request complete: {p}"
            );
            assert_eq!(
                p["fulfiller_shipments"], users,
                "{db} {mode}: one shipment per request: {p}"
            );
            for k in ["runs", "job_runs", "errors"] {
                assert!(p[k].as_u64().is_some(), "{db} {mode} {k}: {p}");
            }
            let rounds = p["round_seconds"].as_array().unwrap();
            assert_eq!(rounds.len() as u64, p["runs"].as_u64().unwrap(), "{p}");
            for r in rounds {
                number(r, &format!("{db} {mode} round_seconds"));
            }
            for k in ["seconds", "per_second"] {
                number(&p[k], &format!("{db} {mode} processing {k}"));
            }
        }
    }
    r
}

#[test]
fn both_backends_take_every_request_to_complete_with_one_shipment_each() {
    let r = json_run(&["--users", "5", "--db", "both", "--json"], 5);
    assert_eq!(r["latency_ms"], 0, "the default: {r}");
}

#[test]
fn with_added_latency_every_request_still_completes_with_one_shipment_each() {
    let r = json_run(
        &[
            "--users",
            "3",
            "--db",
            "both",
            "--latency-ms",
            "5",
            "--json",
        ],
        3,
    );
    assert_eq!(r["latency_ms"], 5, "{r}");
}

#[test]
fn the_table_names_the_machine_and_every_phase() {
    let (code, out, err) = bench(&["--users", "2", "--concurrency", "2"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.starts_with(
            "prereg bench: 2 users per mode, 2 concurrent clients, 0 ms added to each service call; "
        ),
        "{out}"
    );
    assert!(out.contains(" cores, "), "{out}");
    for (mode, phase) in [
        ("entra", "intake"),
        ("entra", "processing"),
        ("okta", "batch"),
        ("okta", "processing"),
    ] {
        let row = out
            .lines()
            .find(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() >= 4 && w[0] == "sqlite" && w[1] == mode && w[2] == phase
            })
            .unwrap_or_else(|| panic!("no sqlite {mode} {phase} row:\n{out}"));
        assert_eq!(row.split_whitespace().nth(3), Some("2"), "{row}");
        if phase == "processing" {
            assert!(row.contains("2 complete, 2 shipments"), "{row}");
        }
    }
    assert!(out.contains("correctness: every request complete"), "{out}");
    assert!(
        !out.contains("postgres"),
        "the default is SQLite only:\n{out}"
    );
}

#[test]
fn an_unreachable_postgresql_server_is_named_in_one_error_line() {
    let (code, out, err) = bench(&[
        "--users",
        "1",
        "--db",
        "postgres",
        "--postgres",
        "postgres://postgres@127.0.0.1:1",
    ]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains(
            "connecting to PostgreSQL at postgres://postgres@127.0.0.1:1 (is it running?)"
        ),
        "{err}"
    );
    assert!(out.is_empty(), "nothing measured, nothing printed: {out}");
}
