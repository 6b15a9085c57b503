//! `prereg secrets rotate|status` and `prereg retention apply` against a connector
//! database, as an admin runs them: JSON on success, one line and exit 1 on failure.

use connector::secrets::{MasterKey, Purpose};
use connector::store::{SqlStore, Store};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Setup {
    dir: PathBuf,
    db: String,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!("prereg-secrets-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("c.db").display());
    Setup { dir, db }
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

/// A configuration on `db` with `extra` lines (the master keys).
fn config(dir: &Path, db: &str, extra: &str) -> PathBuf {
    let path = dir.join("connector.toml");
    std::fs::write(
        &path,
        format!(
            r#"{extra}
database_url = "{db}"
ye_api_base_url = "http://127.0.0.1:9/v1"
yed_api_token = "tok"
ye_jwks_transport_endpoint = "http://127.0.0.1:9/.well-known/yubico-transport-keys.jwks"
ye_jwks_sign_endpoint = "http://127.0.0.1:9/.well-known/yubico-sign.jwks"
azure_tenant_id = "t1"
entra_fido_api_client_id = "c1"
entra_fido_api_client_secret = "s1"
allowed_audiences = ["api://fido-connector-api.contoso"]
allowed_client_apps = ["app1"]
"#
        ),
    )
    .unwrap();
    path
}

fn run(args: &[&str], config: &Path) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let v = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (
        out.status.success(),
        v,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_rotate_reseals_with_the_new_key_and_status_shows_nothing_left() {
    let s = setup();
    let old = MasterKey::generate().unwrap();
    let new = MasterKey::generate().unwrap();
    let store = SqlStore::connect(&s.db).await.unwrap();
    for id in ["r1", "r2"] {
        let sealed = old.seal(id, Purpose::Pin, b"48291763").unwrap();
        store.put_secret(id, Purpose::Pin, &sealed).await.unwrap();
    }
    store.close().await;

    let both = config(
        &s.dir,
        &s.db,
        &format!(
            "master_key = \"{}\"\nmaster_key_old = [\"{}\"]",
            new.to_base64().as_str(),
            old.to_base64().as_str()
        ),
    );
    let (ok, v, err) = run(&["secrets", "status"], &both);
    assert!(ok, "{err}");
    assert_eq!(v["key_id"], new.key_id());
    assert_eq!(v["old_key_ids"][0], old.key_id());
    assert_eq!(v["not_current"], 2);
    let (ok, v, err) = run(&["secrets", "rotate"], &both);
    assert!(ok, "{err}");
    assert_eq!(
        (v["resealed"].as_u64(), v["failed"].as_array().map(Vec::len)),
        (Some(2), Some(0)),
        "{v}"
    );
    let (ok, v, _) = run(&["secrets", "rotate"], &both);
    assert!(ok);
    assert_eq!(
        (v["resealed"].as_u64(), v["current"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );

    // The old key can go: the new one alone opens everything.
    let only_new = config(
        &s.dir,
        &s.db,
        &format!("master_key = \"{}\"", new.to_base64().as_str()),
    );
    let (ok, v, _) = run(&["secrets", "status"], &only_new);
    assert!(ok);
    assert_eq!(v["not_current"], 0);

    // A configuration without that key: the values are named with the key id they
    // need, and rotate fails; no secret appears.
    let stranger = MasterKey::generate().unwrap();
    let wrong = config(
        &s.dir,
        &s.db,
        &format!("master_key = \"{}\"", stranger.to_base64().as_str()),
    );
    let (ok, v, err) = run(&["secrets", "rotate"], &wrong);
    assert!(!ok);
    let failed = v["failed"].to_string();
    assert!(failed.contains(&new.key_id()), "{failed}");
    assert!(err.contains("did not open"), "{err}");
    assert!(!failed.contains("48291763") && !err.contains("48291763"));
}

#[test]
fn retention_apply_needs_retention_days_or_days() {
    let s = setup();
    let key = MasterKey::generate().unwrap();
    let c = config(
        &s.dir,
        &s.db,
        &format!("master_key = \"{}\"", key.to_base64().as_str()),
    );
    let (ok, _, err) = run(&["retention", "apply"], &c);
    assert!(!ok);
    assert!(err.contains("retention_days is 0"), "{err}");
    let (ok, v, err) = run(&["retention", "apply", "--days", "30"], &c);
    assert!(ok, "{err}");
    assert_eq!(v["retention_days"], 30);
    assert_eq!(v["requests_cleaned"], 0);
}
