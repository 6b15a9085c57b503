//! `prereg serve --config PATH` against an in-process sandbox: one JSON ready line with
//! the base URL; a request survives a kill -9 and a restart on the same database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Serve(Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
    assert_eq!(v["ready"], true);
    let url = v["connector"]["base_url"].as_str().unwrap().to_owned();
    Serve(child, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_prints_its_url_and_keeps_requests_across_a_kill() {
    let app = sandbox::App::build(sandbox::Config::for_tests())
        .await
        .unwrap();
    let ready = app.ready_info();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let dir = std::env::temp_dir().join(format!("prereg-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = connector::secrets::MasterKey::generate()
        .unwrap()
        .to_base64();
    let db = format!("sqlite://{}", dir.join("c.db").display());
    let toml = connector::sandbox_config::from_ready(
        &ready,
        &connector::sandbox_config::Local {
            database_url: &db,
            master_key_b64: &key,
            listen_addr: "127.0.0.1:0",
            send_pin_url: None,
        },
    );
    let path = dir.join("connector.toml");
    std::fs::write(&path, toml).unwrap();

    let http = reqwest::Client::new();
    let s = serve(&path);
    let r = http.get(format!("{}/healthz", s.1)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http.get(format!("{}/readyz", s.1)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http.get(format!("{}/v1/status", s.1)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401, "the API wants a token");
    drop(s); // SIGKILL

    let s = serve(&path);
    let r = http.get(format!("{}/healthz", s.1)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "restarts on the same database");
    drop(s);
    let _ = tx.send(());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_config_fails_at_start_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("prereg-serve-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "ye_api_base_url = \"not a url\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("master_key_file") || err.contains("ye_api_base_url"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
