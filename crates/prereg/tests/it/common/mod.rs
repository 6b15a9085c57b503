//! Shared by the binary's tests: starting `prereg sandbox` and `prereg serve` and
//! reading their ready line, an in-process sandbox with a connector config written for
//! it, and the test client's token for the connector's API.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// Every sandbox listener on a free loopback port.
pub const SANDBOX_LISTEN_ARGS: [&str; 8] = [
    "--fulfiller-listen",
    "127.0.0.1:0",
    "--entra-listen",
    "127.0.0.1:0",
    "--okta-listen",
    "127.0.0.1:0",
    "--smtp-listen",
    "127.0.0.1:0",
];

/// The rest of a child's stdout after its ready line.
pub type StdoutLines = Lines<BufReader<ChildStdout>>;

/// `prereg <args>`, run to completion.
pub fn prereg(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(args)
        .output()
        .unwrap()
}

/// `prereg sandbox` with every listener on a free port, stdout piped (add arguments,
/// stderr or environment before spawning it with [`spawn_ready`]).
pub fn sandbox_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prereg"));
    c.arg("sandbox")
        .args(SANDBOX_LISTEN_ARGS)
        .stdout(Stdio::piped());
    c
}

/// `prereg serve --config <config>`, stdout piped.
pub fn serve_command(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prereg"));
    c.args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped());
    c
}

/// Spawns `cmd` and reads its one JSON ready line; returns the child, the parsed line
/// and the rest of stdout.
pub fn spawn_ready(cmd: &mut Command) -> (Child, Value, StdoutLines) {
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next().unwrap().unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
    (child, ready, lines)
}

/// A `prereg sandbox` stopped with SIGTERM (and waited for) when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// `prereg sandbox` on free ports: the running process and its ready line.
pub fn start_sandbox() -> (Running, Value) {
    let (child, ready, _) = spawn_ready(&mut sandbox_command());
    (Running(child), ready)
}

/// A `prereg serve` child and its base URL; SIGKILLed (and waited for) when dropped.
pub struct Serve(pub Child, pub String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `prereg serve --config <config>` with `env`, stderr discarded; waits for the ready
/// line (which must say ready) and returns the connector's base URL with the child.
pub fn serve_with(config: &Path, env: &[(&str, &str)]) -> Serve {
    let (child, v, _) = spawn_ready(
        serve_command(config)
            .envs(env.iter().copied())
            .stderr(Stdio::null()),
    );
    assert_eq!(v["ready"], true);
    let url = v["connector"]["base_url"].as_str().unwrap().to_owned();
    Serve(child, url)
}

/// [`serve_with`] without extra environment.
pub fn serve(config: &Path) -> Serve {
    serve_with(config, &[])
}

/// The sandboxes in this process, plus a connector config file for them in a fresh
/// directory; the sandboxes stop when this is dropped.
pub struct InProcess {
    /// The sandbox ready info.
    pub ready: Value,
    /// The fulfiller's base URL.
    pub fulfiller: String,
    /// The directory holding the config and the database.
    pub dir: PathBuf,
    /// The connector config file.
    pub config: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts the sandboxes in process and writes `<dir>/connector.toml` for `prereg
/// serve` (SQLite `<dir>/c.db`, a fresh master key, port 0, PINs to `send_pin_url` if
/// given), followed by `extra_toml`. `dir_name` names the directory under the temp dir.
pub async fn in_process(dir_name: &str, send_pin_url: Option<&str>, extra_toml: &str) -> InProcess {
    let app = sandbox::App::build(sandbox::Config::for_tests())
        .await
        .unwrap();
    let ready = app.ready_info();
    let fulfiller = app.fulfiller_url();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let dir = std::env::temp_dir().join(dir_name);
    std::fs::create_dir_all(&dir).unwrap();
    let key = connector::secrets::MasterKey::generate()
        .unwrap()
        .to_base64();
    let db = format!("sqlite://{}", dir.join("c.db").display());
    let mut toml = connector::sandbox_config::from_ready(
        &ready,
        &connector::sandbox_config::Local {
            database_url: &db,
            master_key_b64: &key,
            listen_addr: "127.0.0.1:0",
            send_pin_url,
        },
    );
    toml.push_str(extra_toml);
    let config = dir.join("connector.toml");
    std::fs::write(&config, toml).unwrap();
    InProcess {
        ready,
        fulfiller,
        dir,
        config,
        stop: Some(tx),
    }
}

/// `application/x-www-form-urlencoded` from pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A client-credentials token from the Entra sandbox's token endpoint.
pub async fn client_token(
    http: &reqwest::Client,
    ready: &Value,
    client_id: &str,
    client_secret: &str,
    scope: &str,
) -> String {
    let r = http
        .post(ready["entra"]["token_url"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("scope", scope),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

/// The guide's test client's token for the connector's API (the caller of `prereg
/// serve`).
pub async fn caller_token(http: &reqwest::Client, ready: &Value) -> String {
    let e = &ready["entra"];
    client_token(
        http,
        ready,
        e["test_client_app"]["client_id"].as_str().unwrap(),
        e["test_client_app"]["client_secret"].as_str().unwrap(),
        e["connector_api_scope"].as_str().unwrap(),
    )
    .await
}
