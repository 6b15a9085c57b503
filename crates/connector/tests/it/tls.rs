//! HTTPS on the connector's listener (`tls_cert_file`/`tls_key_file`), and failures at
//! start that name the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::{ALEX, guide_request, start_full, test_certs};
use reqwest::Method;

#[tokio::test]
async fn the_connector_serves_https_from_the_configured_certificate() {
    let dir = std::env::temp_dir().join(format!("prereg-tls-{}", uuid::Uuid::new_v4()));
    let certs = test_certs(&dir);
    let extra = format!(
        "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
        certs.cert_file.display().to_string(),
        certs.key_file.display().to_string()
    );
    let mut w = start_full(sandbox::Config::for_tests(), None, &extra, true).await;
    assert!(
        w.connector.starts_with("https://127.0.0.1:"),
        "{}",
        w.connector
    );

    // A client that does not trust the private CA cannot talk to it.
    let untrusting = reqwest::Client::new();
    let e = untrusting
        .get(format!("{}/healthz", w.connector))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect() || e.is_request(), "{e:?}");
    // Plain HTTP to the TLS port is not served either.
    let plain = w.connector.replacen("https://", "http://", 1);
    let r = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(r.is_err() || !r.unwrap().status().is_success());

    // One that trusts it runs the API as usual.
    w.http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(certs.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let r = w
        .http
        .get(format!("{}/healthz", w.connector))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    assert_eq!(w.shipment(&sid).await["state"], "open");
    let _ = std::fs::remove_dir_all(&dir);
}

fn base_config(extra: &str) -> connector::Config {
    let key = connector::secrets::MasterKey::generate()
        .unwrap()
        .to_base64();
    let toml = format!(
        r#"
listen_addr = "127.0.0.1:0"
database_url = "sqlite::memory:"
master_key = "{}"
ye_api_base_url = "http://127.0.0.1:9/v1"
yed_api_token = "tok"
ye_jwks_transport_endpoint = "http://127.0.0.1:9/.well-known/yubico-transport-keys.jwks"
ye_jwks_sign_endpoint = "http://127.0.0.1:9/.well-known/yubico-sign.jwks"
azure_tenant_id = "tid"
entra_fido_api_client_id = "cid"
entra_fido_api_client_secret = "sec"
allowed_audiences = ["api://x"]
allowed_client_apps = ["app"]
{extra}"#,
        key.as_str()
    );
    connector::Config::from_parts(&toml, Default::default()).unwrap()
}

#[tokio::test]
async fn an_unreadable_or_invalid_certificate_or_key_fails_at_start_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("prereg-tls-bad-{}", uuid::Uuid::new_v4()));
    let certs = test_certs(&dir);
    let other = test_certs(&dir.join("other"));
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a pem file\n").unwrap();
    let missing = dir.join("missing.pem");
    let cases = [
        (&missing, &certs.key_file, "tls_cert_file", "cannot read"),
        (
            &garbage,
            &certs.key_file,
            "tls_cert_file",
            "no PEM certificate",
        ),
        (&certs.cert_file, &missing, "tls_key_file", "cannot read"),
        (
            &certs.cert_file,
            &garbage,
            "tls_key_file",
            "no PEM private key",
        ),
        (
            &certs.cert_file,
            &other.key_file,
            "tls_key_file",
            "does not fit",
        ),
    ];
    for (cert, key, named, says) in cases {
        let c = base_config(&format!(
            "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ));
        let e = match connector::Application::build(c).await {
            Ok(_) => panic!("{cert:?} / {key:?} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(named) && e.contains(says), "{named}: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
