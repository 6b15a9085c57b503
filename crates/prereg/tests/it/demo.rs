//! `prereg demo` through the built binary: a small run of the whole system in both modes
//! (sandboxes, connector, keys ordered, shipped, registered, PINs mailed, users signing
//! in) must exit 0, print one table line per user with a serial and "yes", and report
//! the three bad cases of each mode as expected failures with the error an admin sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn demo(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The table rows of one IdP: `idp  user  serial  state  signed-in`.
fn rows<'a>(stdout: &'a str, idp: &str) -> Vec<Vec<&'a str>> {
    stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{idp} ")))
        .map(|l| l.split_whitespace().collect())
        .collect()
}

fn expected_line<'a>(out: &'a str, idp: &str, what: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("expected failure: {idp} {what}: ")))
        .unwrap_or_else(|| panic!("no expected-failure line for {idp} {what}:\n{out}"))
}

#[test]
fn both_modes_sign_every_user_in_and_report_the_three_bad_cases_each() {
    let (code, out, err) = demo(&["--users", "3"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for idp in ["entra", "okta"] {
        // Not a terminal: plain progress lines, one per stage.
        for stage in [
            "ordered",
            "shipped",
            "registered",
            "PIN delivered",
            "signed in",
        ] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(&format!("progress: {idp:<5} {stage}"))),
                "no {idp} progress line for {stage}:\n{out}"
            );
        }
        let rows = rows(&out, idp);
        assert_eq!(rows.len(), 6, "3 users and 3 bad cases:\n{out}");
        let signed: Vec<_> = rows.iter().filter(|r| r.last() == Some(&"yes")).collect();
        assert_eq!(signed.len(), 3, "{out}");
        for r in &signed {
            assert_eq!(r[3], "complete", "{out}");
            assert!(r[2].parse::<u32>().is_ok(), "serial in {r:?}");
        }
        let undeliverable = expected_line(&out, idp, "undeliverable address");
        assert!(
            undeliverable.contains("una.nowhere@") && undeliverable.contains("error state 7"),
            "{undeliverable}"
        );
        let tampered = expected_line(&out, idp, "tampered fulfiller response");
        assert!(
            tampered.contains("theo.tampered@")
                && tampered.contains("ciphertext or header was altered"),
            "{tampered}"
        );
    }
    // Entra: the connector refuses the order, naming the fields Entra lacks; nothing is
    // registered from the tampered response.
    let missing = expected_line(&out, "entra", "missing profile fields");
    assert!(
        missing.contains("EnricoC@contoso.onmicrosoft.com")
            && missing.contains("400")
            && missing.contains("streetAddress"),
        "{missing}"
    );
    let tampered = expected_line(&out, "entra", "tampered fulfiller response");
    assert!(
        tampered.contains("nothing was registered")
            && tampered.contains("registered in Entra for this user: none"),
        "{tampered}"
    );
    // Okta: the request ends in error naming the profile fields; Okta refuses to activate
    // the tampered key.
    let missing = expected_line(&out, "okta", "missing profile fields");
    assert!(
        missing.contains("dave.dietrich@example.com")
            && missing.contains("missing profile fields: ")
            && missing.contains("streetAddress"),
        "{missing}"
    );
    let tampered = expected_line(&out, "okta", "tampered fulfiller response");
    assert!(
        tampered.contains("Okta refused the activation")
            && tampered.contains("active Okta enrollments for this user: none"),
        "{tampered}"
    );
    assert!(
        out.contains("totals: 6 of 6 users signed in; 6 of 6 expected failures as expected"),
        "{out}"
    );
    assert!(
        !out.contains("UNEXPECTED") && !out.contains("FAILED"),
        "{out}"
    );
}

#[test]
fn entra_alone_runs_only_the_entra_half() {
    let (code, out, err) = demo(&["--users", "2", "--idp", "entra"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(rows(&out, "entra").len(), 5, "{out}");
    assert!(rows(&out, "okta").is_empty(), "{out}");
    assert!(
        out.contains("totals: 2 of 2 users signed in; 3 of 3 expected failures as expected"),
        "{out}"
    );
}

#[test]
fn keep_leaves_the_database_and_key_files_and_says_where() {
    let (code, out, err) = demo(&["--users", "1", "--idp", "okta", "--keep"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let kept = out
        .lines()
        .find_map(|l| l.strip_prefix("kept: "))
        .unwrap_or_else(|| panic!("no kept line:\n{out}"));
    let dir = std::path::PathBuf::from(kept.split(" (").next().unwrap());
    assert!(dir.join("connector.db").is_file(), "{}", dir.display());
    let keys: Vec<_> = std::fs::read_dir(dir.join("keys")).unwrap().collect();
    assert_eq!(keys.len(), 1, "one signed-in user, one key file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn users_must_be_at_least_one() {
    let (code, _out, err) = demo(&["--users", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--users"), "{err}");
}
