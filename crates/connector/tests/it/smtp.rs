//! PIN mail through a real, independent SMTP server (Python aiosmtpd).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::{ALEX, guide_request, start_full};
use reqwest::Method;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pin_is_mailed_to_the_manager_through_an_independent_smtp_server() {
    let (sink, port, mut lines) = start_sink(&[]);

    let extra = format!(
        "smtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_security = \"plain\"\nsmtp_from = \"pins@contoso.example\"\n"
    );
    let w = start_full(sandbox::Config::for_tests(), None, &extra, true).await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    w.advance().await;
    w.advance().await;
    w.process().await;
    let got = w.shipment(&sid).await;
    assert_eq!(got["state"], "complete", "{got}");
    let serial = got["serial_number"].as_str().unwrap().to_owned();

    let mail: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    drop(sink);
    assert_eq!(mail["mail_from"], "pins@contoso.example");
    assert_eq!(
        mail["rcpt_tos"][0], "AdeleV@contoso.onmicrosoft.com",
        "the manager"
    );
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains(&serial), "names the key serial: {data}");
    assert!(
        data.contains("AlexW@contoso.onmicrosoft.com"),
        "names the user"
    );
    let pin: String = data
        .split("Its PIN is: ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    assert_eq!(pin.len(), 8, "{data}");
    assert!(
        w.pins.lock().unwrap().is_empty(),
        "SMTP wins over the webhook"
    );
    assert!(!got.to_string().contains(&pin));
}

#[tokio::test]
async fn the_pin_is_mailed_to_the_sandbox_mail_catcher_with_the_generated_config() {
    // No webhook: the config from the sandbox's ready line points PIN mail at its catcher.
    let w = start_full(sandbox::Config::for_tests(), None, "", false).await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    w.advance().await;
    w.advance().await;
    w.process().await;
    let got = w.shipment(&sid).await;
    assert_eq!(got["state"], "complete", "{got}");
    let mails = w.mail.messages();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.to, ["AdeleV@contoso.onmicrosoft.com"]);
    assert!(
        m.subject.contains(got["serial_number"].as_str().unwrap()),
        "{}",
        m.subject
    );
    assert!(m.body.contains("Its PIN is: "));
}

#[test]
fn the_written_sandbox_config_parses_and_mails_pins_to_the_catcher() {
    let ready = serde_json::json!({
        "fulfiller": {"api_base_url": "http://127.0.0.1:8700/v1", "tokens": ["t"],
            "transport_jwks_url": "http://127.0.0.1:8700/.well-known/yubico-transport-keys.jwks",
            "signing_jwks_url": "http://127.0.0.1:8700/.well-known/yubico-sign.jwks"},
        "entra": {"tenant_id": "tid", "domain": "contoso.example", "authority_host": "http://127.0.0.1:8701",
            "graph_url": "http://127.0.0.1:8701", "issuer": "http://127.0.0.1:8701/tid/v2.0",
            "jwks_url": "http://127.0.0.1:8701/tid/discovery/v2.0/keys",
            "connector_app": {"client_id": "c", "client_secret": "s", "identifier_uri": "api://x"},
            "test_client_app": {"client_id": "tc"}},
        "mail": {"smtp": "127.0.0.1:8725"}
    });
    let dir = std::env::temp_dir().join(format!("prereg-wsc-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("connector.toml");
    connector::sandbox_config::write_file(&path, &ready).unwrap();
    let c = connector::Config::load(Some(&path)).unwrap();
    let smtp = c.smtp.unwrap();
    assert_eq!((smtp.host.as_str(), smtp.port), ("127.0.0.1", 8725));
    assert_eq!(smtp.from, "fido-connector@contoso.example");
    assert_eq!(c.allowed_client_apps, ["tc"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `interop/smtp_sink.py` on a free port with `args`; returns it, its port and
/// its output lines (after READY).
fn start_sink(
    args: &[&str],
) -> (
    Sink,
    u16,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(testkit::python())
        .arg(testkit::repo_root().join("interop/smtp_sink.py"))
        .arg(port.to_string())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let sink = Sink(child);
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    (sink, port, lines)
}

/// Orders for Alex through a connector mailing PINs by `smtp` (TOML lines) and runs it
/// as far as it goes; returns the request's view.
async fn order_with_smtp(smtp: &str) -> (common::World, Value) {
    // With the webhook on, the generated config has no SMTP keys; these win over it.
    let w = start_full(sandbox::Config::for_tests(), None, smtp, true).await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    w.advance().await;
    w.advance().await;
    w.process().await;
    let got = w.shipment(&sid).await;
    (w, got)
}

async fn mailed_over_tls(mode: &str) {
    let dir = std::env::temp_dir().join(format!("prereg-smtp-{mode}-{}", uuid::Uuid::new_v4()));
    let certs = common::test_certs(&dir);
    let (sink, port, mut lines) = start_sink(&[
        "--mode",
        mode,
        "--cert",
        certs.cert_file.to_str().unwrap(),
        "--key",
        certs.key_file.to_str().unwrap(),
        "--auth",
        "pinbot:s3cret-pass",
    ]);
    let smtp = format!(
        "smtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_security = \"{mode}\"\n\
         smtp_from = \"pins@contoso.example\"\nsmtp_username = \"pinbot\"\n\
         smtp_password = \"s3cret-pass\"\nsmtp_ca_file = {:?}\n",
        certs.ca_file.display().to_string()
    );
    let (w, got) = order_with_smtp(&smtp).await;
    assert_eq!(got["state"], "complete", "{got}");
    let mail: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    drop(sink);
    assert_eq!(mail["tls"], true, "{mail}");
    assert_eq!(mail["auth_login"], "pinbot", "{mail}");
    assert_eq!(mail["rcpt_tos"][0], "AdeleV@contoso.onmicrosoft.com");
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("Its PIN is: "), "{data}");
    assert!(data.contains(got["serial_number"].as_str().unwrap()));
    assert!(w.pins.lock().unwrap().is_empty(), "SMTP, not the webhook");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pin_is_mailed_over_starttls_with_login_trusting_a_private_ca() {
    mailed_over_tls("starttls").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pin_is_mailed_over_implicit_tls_with_login_trusting_a_private_ca() {
    mailed_over_tls("tls").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_smtp_ca_file_a_private_certificate_is_refused_and_delivery_waits() {
    let dir = std::env::temp_dir().join(format!("prereg-smtp-noca-{}", uuid::Uuid::new_v4()));
    let certs = common::test_certs(&dir);
    let (sink, port, _lines) = start_sink(&[
        "--mode",
        "starttls",
        "--cert",
        certs.cert_file.to_str().unwrap(),
        "--key",
        certs.key_file.to_str().unwrap(),
    ]);
    let smtp = format!(
        "smtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_security = \"starttls\"\n\
         smtp_from = \"pins@contoso.example\"\n"
    );
    let (_w, got) = order_with_smtp(&smtp).await;
    drop(sink);
    assert_eq!(got["state"], "pin_pending", "kept for a retry: {got}");
    let err = got["last_error"].as_str().unwrap();
    assert!(
        err.contains("PIN delivery failed") && err.contains("SMTP"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreadable_smtp_ca_file_fails_at_start_naming_the_key() {
    let key = connector::secrets::MasterKey::generate()
        .unwrap()
        .to_base64();
    let toml = format!(
        "master_key = \"{}\"\nye_api_base_url = \"http://127.0.0.1:9/v1\"\nyed_api_token = \"t\"\n\
         ye_jwks_transport_endpoint = \"http://127.0.0.1:9/t.jwks\"\n\
         ye_jwks_sign_endpoint = \"http://127.0.0.1:9/s.jwks\"\nazure_tenant_id = \"tid\"\n\
         entra_fido_api_client_id = \"c\"\nentra_fido_api_client_secret = \"s\"\n\
         allowed_audiences = [\"a\"]\nallowed_client_apps = [\"b\"]\n\
         smtp_host = \"mail.example.com\"\nsmtp_from = \"pins@example.com\"\n\
         smtp_ca_file = \"/nonexistent/ca.pem\"\n",
        key.as_str()
    );
    let e = connector::Config::from_parts(&toml, Default::default()).unwrap_err();
    assert_eq!(e.key, "smtp_ca_file", "{e}");
    // A file that holds no certificate is refused too.
    let dir = std::env::temp_dir().join(format!("prereg-smtp-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("ca.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let toml = toml.replace("/nonexistent/ca.pem", garbage.to_str().unwrap());
    let e = connector::Config::from_parts(&toml, Default::default()).unwrap_err();
    assert_eq!(e.key, "smtp_ca_file", "{e}");
    assert!(e.problem.contains("no PEM certificate"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
