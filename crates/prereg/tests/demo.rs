//! `prereg demo` through the built binary: a small run of the whole system (sandboxes,
//! connector, keys ordered, shipped, registered, PINs mailed, users signing in) must
//! exit 0, print one table line per user with a serial and "yes", and report the three
//! bad cases as expected failures with the error an admin would see.
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

#[test]
fn entra_demo_signs_every_user_in_and_reports_the_three_bad_cases() {
    let (code, out, err) = demo(&["--users", "3", "--idp", "entra"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
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
                .any(|l| l.starts_with("progress: entra") && l.contains(stage)),
            "no progress line for {stage}:\n{out}"
        );
    }
    let rows = rows(&out, "entra");
    let signed: Vec<_> = rows.iter().filter(|r| r.last() == Some(&"yes")).collect();
    assert_eq!(signed.len(), 3, "{out}");
    for r in &signed {
        assert_eq!(r[3], "complete", "{out}");
        assert!(r[2].parse::<u32>().is_ok(), "serial in {r:?}");
    }
    let expected: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("expected failure: entra"))
        .collect();
    assert_eq!(expected.len(), 3, "{out}");
    let line = |what: &str| {
        *expected
            .iter()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no expected-failure line for {what}:\n{out}"))
    };
    let undeliverable = line("undeliverable address");
    assert!(
        undeliverable.contains("una.nowhere@contoso.onmicrosoft.com")
            && undeliverable.contains("error state 7")
            && undeliverable.contains("undeliverable"),
        "{undeliverable}"
    );
    let missing = line("missing profile fields");
    assert!(
        missing.contains("EnricoC@contoso.onmicrosoft.com") && missing.contains("streetAddress"),
        "{missing}"
    );
    let tampered = line("tampered fulfiller response");
    assert!(
        tampered.contains("nothing was registered")
            && tampered.contains("registered in Entra for this user: none"),
        "{tampered}"
    );
    assert!(
        out.contains("totals: 3 of 3 users signed in; 3 of 3 expected failures as expected"),
        "{out}"
    );
    assert!(
        !out.contains("UNEXPECTED") && !out.contains("FAILED"),
        "{out}"
    );
}

#[test]
fn keep_leaves_the_database_and_key_files_and_says_where() {
    let (code, out, err) = demo(&["--users", "1", "--idp", "entra", "--keep"]);
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
