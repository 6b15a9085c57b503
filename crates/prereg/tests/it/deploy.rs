//! `deploy/`: the systemd unit passes `systemd-analyze verify` (when installed) and, like
//! the compose file, the container file and the example settings, names only real
//! `prereg` subcommands, flags and settings; where a container runtime works, the image
//! builds and `prereg demo` runs inside it with a read-only root filesystem.

use crate::common::prereg;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(name)).unwrap()
}

/// The settings `prereg serve` reads from the environment (`LISTEN_ADDR`, ...).
fn is_setting(env: &str) -> bool {
    connector::config::KEYS
        .iter()
        .any(|k| k.to_ascii_uppercase() == env)
}

/// `prereg SUB --help` succeeds and lists every flag.
fn assert_command(sub: &str, flags: &[&str]) {
    let out = prereg(&[sub, "--help"]);
    assert!(out.status.success(), "prereg {sub} is a subcommand");
    let help = String::from_utf8_lossy(&out.stdout);
    for f in flags {
        assert!(help.contains(f), "prereg {sub} takes {f}: {help}");
    }
}

#[test]
fn the_systemd_unit_is_valid_and_runs_a_real_command_with_real_settings() {
    let unit = read("prereg.service");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert!(words[0].ends_with("/prereg"), "{exec}");
    let flags: Vec<&str> = words[2..]
        .iter()
        .copied()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert_command(words[1], &flags);
    let mut envs = 0;
    for l in unit.lines() {
        if let Some(kv) = l.strip_prefix("Environment=") {
            let key = kv.split('=').next().unwrap();
            assert!(is_setting(key), "{key} is a prereg setting");
            envs += 1;
        }
    }
    assert!(
        envs >= 2,
        "the unit sets the database and the master key file"
    );
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=prereg",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(hardening), "the unit has {hardening:?}");
    }

    let Ok(v) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("systemd-analyze verify skipped: systemd-analyze is not installed");
        return;
    };
    assert!(v.status.success());
    // verify checks that the binary exists: point it at the one built for the tests.
    let dir = std::env::temp_dir().join(format!("prereg-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prereg.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/prereg", env!("CARGO_BIN_EXE_prereg")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    assert!(
        !said.contains("Unknown") && !said.contains("ignoring") && !said.contains("Failed"),
        "systemd-analyze verify warns: {said}"
    );
}

#[test]
fn the_compose_file_runs_two_replicas_on_postgres_with_real_settings() {
    let compose = read("compose.yaml");
    assert!(!compose.contains('\t'), "YAML is indented with spaces");
    // The services: top-level keys under `services:` (two spaces of indent).
    let services: Vec<&str> = compose
        .split("\nservices:\n")
        .nth(1)
        .unwrap()
        .split("\nsecrets:\n")
        .next()
        .unwrap()
        .split("\n\n")
        .filter_map(|block| {
            block
                .lines()
                .find(|l| l.starts_with("  ") && !l.starts_with("   "))
                .map(|l| {
                    l.trim()
                        .trim_end_matches(" &connector")
                        .trim_end_matches(':')
                })
        })
        .collect();
    let replicas: Vec<&&str> = services
        .iter()
        .filter(|s| s.starts_with("connector"))
        .collect();
    assert_eq!(replicas.len(), 2, "{services:?}");
    assert!(services.contains(&"db"), "{services:?}");
    assert!(compose.contains("image: docker.io/library/postgres:"));
    assert!(
        compose.contains("<<: *connector"),
        "the second replica is the first's copy"
    );
    assert!(compose.contains("read_only: true"));
    assert!(compose.contains("dockerfile: deploy/Containerfile"));

    let command = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("command: [\""))
        .expect("a command");
    assert_command(command.trim_end_matches("\"]"), &[]);
    // Every environment entry of the replicas is a prereg setting (the database's are
    // PostgreSQL's own).
    let replica = compose
        .split("  connector-1: &connector\n")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    let env = replica
        .split("    environment:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("      "));
    let keys: Vec<&str> = env.map(|l| l.trim().split(':').next().unwrap()).collect();
    assert!(keys.contains(&"DATABASE_URL") && keys.contains(&"MASTER_KEY_FILE"));
    for k in &keys {
        assert!(is_setting(k), "{k} is a prereg setting");
    }
    assert!(
        replica.contains("postgres://"),
        "the replicas share the PostgreSQL database"
    );
    for l in read("prereg.env.example").lines() {
        if let Some((k, _)) = l.split_once('=')
            && !l.starts_with('#')
        {
            assert!(
                is_setting(k),
                "{k} in prereg.env.example is a prereg setting"
            );
        }
    }
}

#[test]
fn the_containerfile_is_multi_stage_non_root_and_runs_prereg() {
    let file = read("Containerfile");
    let stages = file.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "a build stage and a runtime stage");
    assert!(file.contains("cargo build --release --locked -p prereg"));
    let user = file
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "{user}"
    );
    assert!(file.contains("VOLUME [\"/var/lib/prereg\"]"));
    let cmd = file
        .lines()
        .find_map(|l| l.strip_prefix("CMD [\""))
        .unwrap();
    assert_command(cmd.trim_end_matches("\"]"), &[]);
    let env_block: String = file
        .split("\nENV ")
        .nth(1)
        .unwrap()
        .split("\nEXPOSE")
        .next()
        .unwrap()
        .to_owned();
    for kv in env_block.split_whitespace().filter(|w| w.contains('=')) {
        let k = kv.split('=').next().unwrap();
        assert!(is_setting(k), "{k} is a prereg setting");
    }
}

/// The first of podman and docker whose `info` succeeds (a working runtime, not only
/// its CLI).
fn container_runtime() -> Result<&'static str, String> {
    let mut why = Vec::new();
    for rt in ["podman", "docker"] {
        match Command::new(rt).arg("info").output() {
            Ok(o) if o.status.success() => return Ok(rt),
            Ok(o) => why.push(format!(
                "`{rt} info` failed: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no message")
            )),
            Err(_) => why.push(format!("{rt} is not installed")),
        }
    }
    Err(why.join("; "))
}

#[test]
fn the_container_image_builds_and_runs_the_demo_on_a_read_only_root() {
    let rt = match container_runtime() {
        Ok(rt) => rt,
        Err(why) => {
            println!("skipped: no working container runtime ({why})");
            return;
        }
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tag = format!("localhost/prereg-test:{}", std::process::id());
    let build = Command::new(rt)
        .args(["build", "-f", "deploy/Containerfile", "-t", &tag, "."])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{rt} build: {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let run = Command::new(rt)
        .args([
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            &tag,
            "demo",
            "--users",
            "2",
        ])
        .output()
        .unwrap();
    let _ = Command::new(rt).args(["rmi", "-f", &tag]).output();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "prereg demo in the container: {out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("signed in"), "{out}");
}
