//! The `[okta]` section: invalid values name their key (file and environment), group
//! mappings as TOML tables or JSON, and the OAuth service app (`private_key_jwt`)
//! reaching the Okta sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common;

use okta_common::*;
use reqwest::Method;
use serde_json::json;
use std::collections::BTreeMap;

const BASE: &str = r#"
master_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
ye_api_base_url = "http://127.0.0.1:1/v1"
yed_api_token = "t"
ye_jwks_transport_endpoint = "http://127.0.0.1:1/.well-known/yubico-transport-keys.jwks"
ye_jwks_sign_endpoint = "http://127.0.0.1:1/.well-known/yubico-sign.jwks"
azure_tenant_id = "tid"
entra_fido_api_client_id = "c"
entra_fido_api_client_secret = "s"
allowed_audiences = ["a"]
allowed_client_apps = ["b"]
"#;

fn parse(okta: &str, env: &[(&str, &str)]) -> Result<connector::Config, String> {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    connector::Config::from_parts(&format!("{BASE}\n[okta]\n{okta}"), env)
        .map_err(|e| e.to_string())
}

const OK: &str = r#"
org_url = "https://login.example.com"
api_token = "00abc"
event_hook_secret = "s3cret"
"#;

#[test]
fn a_minimal_section_parses_with_the_documented_defaults() {
    let c = parse(OK, &[]).unwrap();
    let o = c.okta.unwrap();
    assert_eq!(o.org_url, "https://login.example.com");
    assert_eq!(
        o.rp_ids,
        ["login.example.com"],
        "a custom domain is the RP id"
    );
    assert_eq!(o.approval, connector::okta::Approval::Admin);
    assert!(o.trigger_group_add && o.trigger_mfa_initiated);
    assert_eq!(o.reconcile_interval_seconds, 3600);
    assert_eq!(o.delivery_type, 1);
    let debug = format!("{o:?}");
    assert!(
        !debug.contains("00abc") && !debug.contains("s3cret"),
        "{debug}"
    );
}

#[test]
fn invalid_values_name_their_key() {
    for (okta, key) in [
        (format!("{OK}approval = \"maybe\""), "okta.approval"),
        (format!("{OK}delivery_type = 3"), "okta.delivery_type"),
        (format!("{OK}auth = \"basic\""), "okta.auth"),
        (format!("{OK}trigger_group_add = \"sometimes\""), "okta.trigger_group_add"),
        (format!("{OK}colour = \"blue\""), "okta.colour"),
        (format!("{OK}hr_csv = \"/nonexistent/hr.csv\""), "okta.hr_csv"),
        ("org_url = \"https://x.okta.com\"\nevent_hook_secret = \"s\"".to_owned(), "okta.api_token"),
        ("org_url = \"not a url\"\napi_token = \"t\"\nevent_hook_secret = \"s\"".to_owned(), "okta.org_url"),
        ("org_url = \"https://x.okta.com\"\napi_token = \"t\"".to_owned(), "okta.event_hook_secret"),
        (
            "org_url = \"https://x.okta.com\"\nclient_id = \"0oa1\"\nprivate_key_file = \"/nonexistent.pem\"\nkey_id = \"k\"\nevent_hook_secret = \"s\"".to_owned(),
            "okta.private_key_file",
        ),
        (
            format!("{OK}\n[[okta.groups]]\ngroup_id = \"00g1\"\nproduct_id = \"one\"\ninventory_product_id = 1\ncustomization_id = \"C1\""),
            "okta.groups",
        ),
    ] {
        let e = parse(&okta, &[]).unwrap_err();
        assert!(e.contains(key), "{key} not named in: {e}");
        let env = format!("OKTA_{}", key.trim_start_matches("okta.").to_ascii_uppercase());
        assert!(e.contains(&env), "{env} not named in: {e}");
    }
    // From the environment too.
    let e = parse(OK, &[("OKTA_APPROVAL", "later")]).unwrap_err();
    assert!(
        e.contains("okta.approval") && e.contains("OKTA_APPROVAL"),
        "{e}"
    );
}

#[test]
fn group_mappings_come_as_toml_tables_or_as_json_in_the_environment() {
    let c = parse(
        &format!(
            "{OK}\n[[okta.groups]]\ngroup_id = \"00g1\"\nproduct_id = 1\ninventory_product_id = 2\ncustomization_id = \"C1\"\n\n[[okta.groups]]\ngroup_id = \"00g2\"\nproduct_id = 3\ninventory_product_id = 15\ncustomization_id = \"C2\"\n"
        ),
        &[],
    )
    .unwrap();
    let o = c.okta.unwrap();
    assert_eq!(o.groups.len(), 2);
    assert_eq!(o.group("00g2").unwrap().inventory_product_id, 15);
    let c = parse(
        OK,
        &[(
            "OKTA_GROUPS",
            r#"[{"group_id":"00g9","product_id":1,"inventory_product_id":1,"customization_id":"C9"}]"#,
        )],
    )
    .unwrap();
    assert_eq!(c.okta.unwrap().groups[0].group_id, "00g9");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_app_with_private_key_jwt_reaches_the_okta_sandbox() {
    let dir = std::env::temp_dir().join(format!("prereg-okta-key-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("app.pem");
    std::fs::write(&key, sandbox::okta::seed::DEFAULT_CLIENT_PRIVATE_KEY_PEM).unwrap();
    // The extra keys switch the section from the SSWS token to the service app.
    let w = start_with(Options {
        approval: "auto",
        extra_okta_toml: format!(
            "client_id = {:?}\nprivate_key_file = {:?}\nkey_id = {:?}\n",
            sandbox::okta::seed::DEFAULT_CLIENT_ID,
            key.display().to_string(),
            sandbox::okta::seed::DEFAULT_CLIENT_KID
        ),
        ..Default::default()
    })
    .await;
    let (s, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": ["bob.brown@example.com"]})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"][0]["status"], "created", "{v}");
    let id = v["data"][0]["request_id"].as_str().unwrap().to_owned();
    w.drive_to(&id, "complete").await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `private_key_file` takes what the Okta Admin Console generates (an RSA key, PKCS#8)
/// and the older PKCS#1 form (`RSA PRIVATE KEY`); anything else is refused naming the
/// key, without the key's bytes in the message.
#[test]
fn the_service_app_key_may_be_pkcs8_or_pkcs1_rsa() {
    use base64::Engine;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let der = key.serialize_der();
    let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(info.private_key.as_bytes());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pkcs1 = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let dir = std::env::temp_dir().join(format!("prereg-okta-key-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let section = |file: &std::path::Path| {
        format!(
            "org_url = \"https://x.okta.com\"\nclient_id = \"0oa1\"\nprivate_key_file = {:?}\nkey_id = \"k\"\nevent_hook_secret = \"s\"",
            file.display().to_string()
        )
    };
    for (name, pem) in [("pkcs8.pem", key.serialize_pem()), ("pkcs1.pem", pkcs1)] {
        let file = dir.join(name);
        std::fs::write(&file, pem).unwrap();
        parse(&section(&file), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let file = dir.join("cert.pem");
    let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    std::fs::write(&file, junk).unwrap();
    let e = parse(&section(&file), &[]).unwrap_err();
    assert!(
        e.contains("okta.private_key_file") && !e.contains("AAAA"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
