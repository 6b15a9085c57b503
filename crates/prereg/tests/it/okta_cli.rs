//! `prereg okta batch|reconcile` against the in-process sandboxes: a connector config
//! with an `[okta]` section, the binary run as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::process::Command;

fn prereg(args: &[&str]) -> (bool, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(args)
        .output()
        .unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_and_reconcile_order_keys_from_the_command_line() {
    let app = sandbox::App::build(sandbox::Config::for_tests())
        .await
        .unwrap();
    let ready = app.ready_info();
    let fulfiller = app.fulfiller_url();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let dir = std::env::temp_dir().join(format!("prereg-okta-cli-{}", uuid_like()));
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
            send_pin_url: None,
        },
    );
    toml.push_str(&connector::sandbox_config::okta_section(
        &ready,
        &connector::sandbox_config::OktaLocal {
            hook_secret: "s",
            approval: "admin",
            reconcile_interval_seconds: 0,
            event_hook_url: None,
        },
    ));
    let path = dir.join("connector.toml");
    std::fs::write(&path, toml).unwrap();
    let config = path.to_str().unwrap();

    let users = dir.join("users.txt");
    std::fs::write(
        &users,
        "# one per line\nbob.brown@example.com\nnobody@example.com\n",
    )
    .unwrap();
    let (ok, lines, err) = prereg(&[
        "okta",
        "batch",
        "--config",
        config,
        "--file",
        users.to_str().unwrap(),
        "--process",
    ]);
    assert!(!ok, "one user is unknown: exit 1");
    assert!(err.contains("1 users were refused"), "{err}");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["status"], "created");
    assert_eq!(lines[1]["status"], "refused");
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("nobody@example.com")
    );
    // --process created the shipment at the fulfiller.
    let r = reqwest::Client::new()
        .get(format!("{fulfiller}/v1/shipments_exact"))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["shipments"].as_array().unwrap().len(), 1, "{v}");

    // Bob again: his request is open.
    let (ok, lines, _) = prereg(&["okta", "batch", "--config", config, "bob.brown@example.com"]);
    assert!(ok);
    assert_eq!(lines[0]["status"], "already_open");

    // Reconcile: Alice is a member of the mapped group and never had a request.
    let (ok, lines, err) = prereg(&["okta", "reconcile", "--config", config]);
    assert!(ok, "{err}");
    assert_eq!(
        lines[0]["started"].as_array().unwrap().len(),
        1,
        "{lines:?}"
    );

    // A config without [okta] is refused, naming the file.
    let plain = dir.join("plain.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&plain, text.split("\n[okta]").next().unwrap()).unwrap();
    let (ok, _, err) = prereg(&["okta", "reconcile", "--config", plain.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("no [okta] section"), "{err}");
    let _ = tx.send(());
    let _ = std::fs::remove_dir_all(&dir);
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
