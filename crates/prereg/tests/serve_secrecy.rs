//! A whole flow through `prereg serve` with debug logging: the PIN reaches the PIN
//! channel and nowhere else: not the log, not an API response, not the database files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_debug_logs_the_pin_appears_only_in_the_pin_channel() {
    let app = sandbox::App::build(sandbox::Config::for_tests())
        .await
        .unwrap();
    let ready = app.ready_info();
    let fulfiller = app.fulfiller_url();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    // The PIN channel: a minimal HTTP/1.1 server that records each JSON body.
    let pins = Arc::new(Mutex::new(Vec::<Value>::new()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/pin", l.local_addr().unwrap());
    let p2 = pins.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            let p = p2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let v: Value =
                                serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap();
                            p.lock().unwrap().push(v);
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });

    let dir = std::env::temp_dir().join(format!("prereg-secrecy-{}", std::process::id()));
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
            send_pin_url: Some(&hook_url),
        },
    );
    toml.push_str("log_format = \"json\"\n");
    let path = dir.join("connector.toml");
    std::fs::write(&path, toml).unwrap();
    let log_path = dir.join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_prereg"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("PREREG_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let base = v["connector"]["base_url"].as_str().unwrap().to_owned();

    let http = reqwest::Client::new();
    let e = &ready["entra"];
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_id",
            e["test_client_app"]["client_id"].as_str().unwrap(),
        ),
        (
            "client_secret",
            e["test_client_app"]["client_secret"].as_str().unwrap(),
        ),
        ("scope", e["connector_api_scope"].as_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", enc(v)))
    .collect::<Vec<_>>()
    .join("&");
    let t: Value = http
        .post(e["token_url"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().unwrap().to_owned();
    let mut answers = String::new();
    let mut call = async |m: reqwest::Method, p: &str, b: Option<Value>| {
        let mut r = http.request(m, format!("{base}{p}")).bearer_auth(&token);
        if let Some(b) = b {
            r = r.json(&b);
        }
        let text = r.send().await.unwrap().text().await.unwrap();
        answers.push_str(&text);
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let v = call(
        reqwest::Method::POST,
        "/v1/fprRequest",
        Some(json!({
            "user_id": "72a3e904-0789-594c-8f2b-3fe9bedff6ac",
            "pin_request": {"type": "generate", "length": 8},
            "yubico_shipment_request": {
                "delivery_type": 1,
                "recipient": {"recipient_company": "Contoso", "recipient_email": "alexw@contoso.example",
                    "recipient_firstname": "Alex", "recipient_lastname": "Wilber", "recipient_telephone": "5555555555"},
                "mailing_address": {"street_line1": "7788 Foxrun Street", "street_line2": "", "city": "Dedham",
                    "region": "MA", "postal_code": "02026", "country_code_2": "US"},
                "shipment_items": [{"product_id": 1, "inventory_product_id": 1, "product_quantity": 1,
                    "customization_id": sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION}]
            }
        })),
    )
    .await;
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        http.post(format!("{fulfiller}/sandbox/v1/advance"))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
    }
    call(reqwest::Method::POST, "/v1/fpr/shipments/process", None).await;
    let got = call(
        reqwest::Method::GET,
        &format!("/v1/fpr/shipments/{sid}"),
        None,
    )
    .await;
    assert_eq!(got["data"]["state"], "complete", "{got}");
    call(reqwest::Method::GET, "/v1/fpr/shipments", None).await;
    call(reqwest::Method::GET, "/v1/status", None).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = tx.send(());

    let pin = pins.lock().unwrap()[0]["pin"].as_str().unwrap().to_owned();
    assert_eq!(pin.len(), 8);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("credential registered in Entra"),
        "debug log was written"
    );
    assert!(!log.contains(&pin), "PIN in the log");
    assert!(!answers.contains(&pin), "PIN in an API response");
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.to_string_lossy().contains("c.db") {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(pin.len()).any(|w| w == pin.as_bytes()),
                "PIN in {}",
                f.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
