//! A whole flow through `prereg serve` with debug logging: the PIN reaches the PIN
//! channel and nowhere else: not the log, not an API response, not the database files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn with_debug_logs_the_pin_appears_only_in_the_pin_channel() {
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

    let sb = in_process(
        &format!("prereg-secrecy-{}", std::process::id()),
        Some(&hook_url),
        "log_format = \"json\"\n",
    )
    .await;
    let ready = sb.ready.clone();
    let fulfiller = sb.fulfiller.clone();
    let dir = sb.dir.clone();
    let path = sb.config.clone();
    let log_path = dir.join("serve.log");
    let (mut child, v, _) = spawn_ready(
        serve_command(&path)
            .env("PREREG_LOG", "debug")
            .stderr(std::fs::File::create(&log_path).unwrap()),
    );
    let base = v["connector"]["base_url"].as_str().unwrap().to_owned();

    let http = reqwest::Client::new();
    let token = caller_token(&http, &ready).await;
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
    let request_id = v["data"]["request_id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        http.post(format!("{fulfiller}/sandbox/v1/advance"))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
    }
    call(
        reqwest::Method::POST,
        "/v1/fpr/shipments/process?wait=120",
        None,
    )
    .await;
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
    drop(sb);

    let pin = pins.lock().unwrap()[0]["pin"].as_str().unwrap().to_owned();
    assert_eq!(pin.len(), 8);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("credential registered in Entra"),
        "debug log was written"
    );
    assert!(!log.contains(&pin), "PIN in the log");
    spans_carry_the_ids(&log, &request_id);
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

/// The JSON log of that flow: an `http` span per HTTP request (its id, method, route
/// template, status, duration) and a `job_step` span per step of the runner (the
/// request id, IdP, state, outcome, duration) with the vendor calls inside.
fn spans_carry_the_ids(log: &str, request_id: &str) {
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let message = |l: &Value| {
        l["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let create = lines
        .iter()
        .find(|l| message(l) == "request finished" && l["span"]["route"] == "/v1/fprRequest")
        .unwrap_or_else(|| panic!("no http span for the order in {log}"));
    assert_eq!(create["span"]["name"], "http");
    assert_eq!(create["span"]["method"], "POST");
    assert_eq!(create["span"]["status"], 201, "{create}");
    assert!(create["span"]["duration_ms"].is_u64(), "{create}");
    let http_id = create["span"]["http_request_id"].as_str().unwrap();
    assert_eq!(http_id.len(), 36, "a UUID: {create}");
    // What the handler logged while serving it nests in that span.
    assert!(
        lines.iter().any(|l| message(l) != "request finished"
            && l["fields"]["request_id"] == request_id
            && l["spans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["http_request_id"] == http_id))),
        "the handler's events carry the HTTP request id"
    );
    assert!(
        lines.iter().any(|l| message(l) == "request finished"
            && l["span"]["route"] == "/v1/fpr/shipments/{id}"
            && l["span"]["status"] == 200),
        "routes show as their template"
    );

    let steps: Vec<&Value> = lines
        .iter()
        .filter(|l| message(l) == "job step finished" && l["span"]["request_id"] == request_id)
        .collect();
    assert!(!steps.is_empty(), "job_step spans for {request_id}");
    for s in &steps {
        assert_eq!(s["span"]["name"], "job_step");
        assert_eq!(s["span"]["idp"], "entra");
        assert!(
            s["span"]["state"].is_string() && s["span"]["outcome"].is_string(),
            "{s}"
        );
        assert!(s["span"]["duration_ms"].is_u64(), "{s}");
    }
    assert!(
        steps.iter().any(|s| s["span"]["outcome"] == "complete"),
        "the last step completed the request"
    );
    let vendor_in_step = |vendor: &str| {
        lines.iter().any(|l| {
            message(l) == "vendor call"
                && l["fields"]["vendor"] == vendor
                && l["fields"]["status"].is_u64()
                && l["spans"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|s| s["name"] == "job_step" && s["request_id"] == request_id)
                })
        })
    };
    assert!(
        vendor_in_step("fulfiller"),
        "fulfiller calls inside the job step"
    );
    assert!(vendor_in_step("graph"), "Graph calls inside the job step");
}
