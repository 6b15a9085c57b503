//! The Entra sandbox through the binary: `prereg sandbox` prints the tenant, its URLs and
//! the guide's two app registrations; with those alone an admin provisions a passkey
//! (token, creationOptions, `prereg key make-credential`, POST fido2Methods) and the
//! user signs in with `prereg key sign-in`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;

use serde_json::{Value, json};

const PIN: &str = "24681357";
const UPN: &str = "AlexW@contoso.onmicrosoft.com";

#[tokio::test]
async fn provision_through_graph_and_sign_in_with_prereg_key() {
    let (_running, ready) = start_sandbox();
    let e = &ready["entra"];
    let base = e["base_url"].as_str().unwrap().to_owned();
    let tid = e["tenant_id"].as_str().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_eq!(e["domain"], "contoso.onmicrosoft.com");
    assert_eq!(
        e["authority_url"].as_str().unwrap(),
        format!("{base}/{tid}")
    );
    assert_eq!(e["graph_url"].as_str().unwrap(), base);
    assert_eq!(e["issuer"].as_str().unwrap(), format!("{base}/{tid}/v2.0"));
    let connector = &e["connector_app"];
    assert_eq!(
        connector["identifier_uri"],
        "api://fido-connector-api.contoso.onmicrosoft.com"
    );
    assert_eq!(
        e["connector_api_scope"],
        "api://fido-connector-api.contoso.onmicrosoft.com/.default"
    );
    let test_client = &e["test_client_app"];
    assert!(test_client["client_secret"].is_string());

    let http = reqwest::Client::new();
    let token = async |id: String, secret: String, scope: String| {
        client_token(&http, &ready, &id, &secret, &scope).await
    };
    // The test client can get a token for the connector's API (what the guide's test does).
    token(
        test_client["client_id"].as_str().unwrap().into(),
        test_client["client_secret"].as_str().unwrap().into(),
        e["connector_api_scope"].as_str().unwrap().into(),
    )
    .await;
    let graph_token = token(
        connector["client_id"].as_str().unwrap().into(),
        connector["client_secret"].as_str().unwrap().into(),
        e["graph_scope"].as_str().unwrap().into(),
    )
    .await;

    let dir = std::env::temp_dir().join(format!("prereg-entra-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key.json").to_string_lossy().into_owned();
    let opts_path = dir.join("options.json").to_string_lossy().into_owned();
    assert!(prereg(&["key", "create", "--out", &key]).status.success());
    assert!(
        prereg(&["key", "set-pin", &key, "--pin", PIN])
            .status
            .success()
    );

    let methods = format!("{base}/beta/users/{UPN}/authentication/fido2Methods");
    let opts: Value = http
        .get(format!(
            "{methods}/creationOptions(challengeTimeoutInMinutes=20160)"
        ))
        .bearer_auth(&graph_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    std::fs::write(&opts_path, opts.to_string()).unwrap();
    let out = prereg(&[
        "key",
        "make-credential",
        &key,
        "--options",
        &opts_path,
        "--origin",
        "https://login.microsoft.com",
        "--pin",
        PIN,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reg: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = http
        .post(&methods)
        .bearer_auth(&graph_token)
        .json(&json!({"displayName": "YubiKey 5 NFC", "publicKeyCredential": reg}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let out = prereg(&[
        "key", "sign-in", &key, "--pin", PIN, "--entra", &base, "--user", UPN,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let who: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(who["signedIn"], true);
    assert_eq!(who["user"]["userPrincipalName"], UPN);
    assert_eq!(who["user"]["displayName"], "Alex Wilber");
    let first = who["signCount"].as_u64().unwrap();
    // The key file kept the counter: the next sign-in is accepted with a higher one.
    let out = prereg(&[
        "key", "sign-in", &key, "--pin", PIN, "--entra", &base, "--user", UPN,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let who: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(who["signCount"].as_u64().unwrap() > first);
    // A wrong PIN fails on the key; a user without a passkey is refused by the sandbox.
    let out = prereg(&[
        "key", "sign-in", &key, "--pin", "00000000", "--entra", &base, "--user", UPN,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .to_lowercase()
            .contains("pin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = prereg(&[
        "key",
        "sign-in",
        &key,
        "--pin",
        PIN,
        "--entra",
        &base,
        "--user",
        "MeganB@contoso.onmicrosoft.com",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no passkey registered"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
