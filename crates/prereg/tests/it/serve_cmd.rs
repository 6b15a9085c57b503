//! `prereg serve --config PATH` against an in-process sandbox: one JSON ready line with
//! the base URL; a request survives a kill -9 and a restart on the same database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn serve_prints_its_url_and_keeps_requests_across_a_kill() {
    let sb = in_process(&format!("prereg-serve-{}", std::process::id()), None, "").await;
    let dir = sb.dir.clone();
    let path = sb.config.clone();

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
    drop(sb);
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

#[tokio::test(flavor = "multi_thread")]
async fn killed_between_shipment_created_and_recorded_then_restarted_orders_one_key() {
    let sb = in_process(
        &format!("prereg-serve-kill-{}", std::process::id()),
        None,
        // The dead process held the new request's job: its lease runs out in 3 s.
        "job_lease_seconds = 3\n",
    )
    .await;
    let (fulfiller, dir, path) = (sb.fulfiller.clone(), sb.dir.clone(), sb.config.clone());
    let http = reqwest::Client::new();
    let token = caller_token(&http, &sb.ready).await;
    let body = alex_order();

    // The connector dies (abort, like kill -9) right after the fulfiller created the
    // shipment and before it recorded the shipment id.
    let mut s = serve_with(&path, &[("PREREG_FAULT_ABORT_AFTER_CREATE", "1")]);
    let r = http
        .post(format!("{}/v1/fprRequest", s.1))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await;
    assert!(r.is_err(), "the connector died mid-request");
    let status = s.0.wait().unwrap();
    assert!(!status.success());
    assert_eq!(
        fulfiller_shipments(&http, &fulfiller).await.len(),
        1,
        "the shipment was created before the crash"
    );

    // Restarted, it finds that shipment instead of ordering a second key.
    let s = serve(&path);
    let list = process_then_list(&http, &s.1, &token).await;
    assert_eq!(list["total_count"], 1, "{list}");
    assert_eq!(list["data"][0]["state"], "open", "{list}");
    assert_eq!(
        fulfiller_shipments(&http, &fulfiller).await.len(),
        1,
        "exactly one shipment at the fulfiller"
    );
    drop(s);
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_writes_a_connector_config_that_serve_runs_with_no_edits() {
    let dir = std::env::temp_dir().join(format!("prereg-sbcfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("connector.toml");
    let (sb, ready, _) = spawn_ready(
        sandbox_command()
            .arg("--connector-config")
            .arg(&path)
            .stderr(Stdio::null()),
    );
    let sb = Serve(sb, String::new());
    assert_eq!(ready["ready"], true, "{ready}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("smtp_host"),
        "PIN mail goes to the catcher: {text}"
    );
    // Only the listen address is overridden, to keep the test off fixed ports.
    let s = serve_with(&path, &[("LISTEN_ADDR", "127.0.0.1:0")]);
    let r = reqwest::get(format!("{}/readyz", s.1)).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    drop(s);
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_from_outside_between_created_and_recorded_then_restarted_orders_one_key() {
    let sb = in_process(
        &format!("prereg-serve-sigkill-{}", std::process::id()),
        None,
        // The dead process held the new request's job: its lease runs out in 3 s.
        "job_lease_seconds = 3\n",
    )
    .await;
    let (fulfiller, dir, path) = (sb.fulfiller.clone(), sb.dir.clone(), sb.config.clone());
    let http = reqwest::Client::new();
    let token = caller_token(&http, &sb.ready).await;
    let body = alex_order();

    // The connector pauses right after the fulfiller created the shipment, before it
    // records the id, and says so on stdout; this test then kills it with SIGKILL.
    let (mut child, ready_line, mut lines) = spawn_ready(
        serve_command(&path)
            .env("PREREG_FAULT_PAUSE_AFTER_CREATE", "1")
            .stderr(Stdio::null()),
    );
    let base = ready_line["connector"]["base_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = tokio::spawn({
        let http = http.clone();
        let token = token.clone();
        async move {
            http.post(format!("{base}/v1/fprRequest"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
        }
    });
    let marker = tokio::task::spawn_blocking(move || lines.next().unwrap().unwrap())
        .await
        .unwrap();
    let marker: serde_json::Value = serde_json::from_str(&marker).unwrap();
    assert_eq!(marker["fault"], "paused_after_create", "{marker}");
    let created = marker["shipment_id"].as_str().unwrap().to_owned();
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    }
    assert!(call.await.unwrap().is_err(), "the caller got no answer");
    assert_eq!(
        fulfiller_shipments(&http, &fulfiller).await,
        std::slice::from_ref(&created),
        "created before the kill"
    );

    // Restarted on the same database, it finds that shipment by its reference.
    let s = serve(&path);
    let list = process_then_list(&http, &s.1, &token).await;
    assert_eq!(list["total_count"], 1, "{list}");
    assert_eq!(list["data"][0]["state"], "open", "{list}");
    assert_eq!(list["data"][0]["shipment_id"], created.as_str(), "{list}");
    assert_eq!(
        fulfiller_shipments(&http, &fulfiller).await,
        [created],
        "exactly one shipment at the fulfiller"
    );
    drop(s);
    drop(sb);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The order both kill tests place for Alex (no PIN, one key).
fn alex_order() -> serde_json::Value {
    serde_json::json!({
        "user_id": "72a3e904-0789-594c-8f2b-3fe9bedff6ac",
        "pin_request": {"type": "none"},
        "yubico_shipment_request": {
            "delivery_type": 1,
            "recipient": {"recipient_company": "Contoso", "recipient_email": "alexw@contoso.example",
                "recipient_firstname": "Alex", "recipient_lastname": "Wilber", "recipient_telephone": "5555555555"},
            "mailing_address": {"street_line1": "7788 Foxrun Street", "street_line2": "", "city": "Dedham",
                "region": "MA", "postal_code": "02026", "country_code_2": "US"},
            "shipment_items": [{"product_id": 1, "inventory_product_id": 1, "product_quantity": 1,
                "customization_id": sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION}]
        }
    })
}

/// The shipment ids the fulfiller sandbox holds.
async fn fulfiller_shipments(http: &reqwest::Client, fulfiller: &str) -> Vec<String> {
    let v: serde_json::Value = http
        .get(format!("{fulfiller}/v1/shipments_exact"))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["shipments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["shipment_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Processes until the one request has been handled (the job of a request whose
/// creator died is taken over once the dead holder's lease runs out) and lists the
/// requests.
async fn process_then_list(http: &reqwest::Client, base: &str, token: &str) -> serde_json::Value {
    let mut handled = false;
    for _ in 0..100 {
        let v: serde_json::Value = http
            .post(format!("{base}/v1/fpr/shipments/process?wait=120"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["data"]["idle"], true, "{v}");
        if v["data"]["processed"].as_u64().unwrap() >= 1 {
            handled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(handled, "the request was never processed");
    http.get(format!("{base}/v1/fpr/shipments"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Writes a private CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it
/// (`cert.pem`, `key.pem`) into `dir`, with Python's `cryptography` from the venv.
fn write_test_certs(dir: &std::path::Path) {
    const SCRIPT: &str = r#"
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
d = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("prereg test CA")).issuer_name(name("prereg test CA"))
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .sign(ca_key, hashes.SHA256()))
key = ec.generate_private_key(ec.SECP256R1())
leaf = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256()))
pem = serialization.Encoding.PEM
open(d + "/ca.pem", "wb").write(ca.public_bytes(pem))
open(d + "/cert.pem", "wb").write(leaf.public_bytes(pem) + ca.public_bytes(pem))
open(d + "/key.pem", "wb").write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()))
"#;
    let out = Command::new(testkit::python())
        .args(["-c", SCRIPT])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_certificate_and_key_serve_says_https_and_serves_tls() {
    let dir = std::env::temp_dir().join(format!("prereg-serve-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_test_certs(&dir);
    let extra = format!(
        "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
        dir.join("cert.pem").display().to_string(),
        dir.join("key.pem").display().to_string()
    );
    let sb = in_process(
        &format!("prereg-serve-tls-db-{}", std::process::id()),
        None,
        &extra,
    )
    .await;
    let s = serve(&sb.config);
    assert!(s.1.starts_with("https://127.0.0.1:"), "ready line: {}", s.1);
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let r = http.get(format!("{}/readyz", s.1)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    drop(s);

    // A key file that is not a key: the start fails naming the key.
    std::fs::write(dir.join("key.pem"), "not a key\n").unwrap();
    let out = serve_command(&sb.config)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls_key_file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&sb.dir);
}
