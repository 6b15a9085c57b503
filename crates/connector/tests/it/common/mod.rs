//! Starts the sandboxes (fulfiller + Entra), a PIN webhook receiver and the connector,
//! all on 127.0.0.1 port 0.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use axum::routing::post;
use connector::Application;
use connector::secrets::MasterKey;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

pub const ALEX: &str = "72a3e904-0789-594c-8f2b-3fe9bedff6ac";

pub struct World {
    pub ready: Value,
    pub fulfiller: String,
    /// The fulfiller's live fault setting.
    pub fulfiller_faults: sandbox::faults::Faults,
    pub entra: sandbox::entra::Entra,
    pub connector: String,
    pub state: Arc<connector::AppState>,
    pub pins: Arc<Mutex<Vec<Value>>>,
    pub mail: sandbox::mail::MailCatcher,
    pub http: reqwest::Client,
    pub db_path: std::path::PathBuf,
    pub dir: std::path::PathBuf,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for World {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn start() -> World {
    start_with(sandbox::Config::for_tests(), None).await
}

pub async fn start_with(config: sandbox::Config, database_url: Option<String>) -> World {
    start_full(config, database_url, "", true).await
}

/// Like [`start_with`], with extra TOML lines for the connector's config.
pub async fn start_full(
    config: sandbox::Config,
    database_url: Option<String>,
    extra_toml: &str,
    webhook: bool,
) -> World {
    let extra = extra_toml.to_owned();
    start_full_with(config, database_url, move |_| extra.clone(), webhook).await
}

/// A token for the guide's test client from the Entra sandbox named in `ready` (the
/// sandbox's ready line).
pub async fn caller_token(http: &reqwest::Client, ready: &Value) -> String {
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
    ];
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = http
        .post(e["token_url"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

impl World {
    /// Stops the connector (its API, runner and schedulers), leaving the sandboxes and
    /// the webhook receiver up; returns once its address refuses connections. Point
    /// `connector` at another one to carry on.
    pub async fn stop_connector(&mut self) {
        if self.stops.len() > 2 {
            let _ = self.stops.remove(2).send(());
        }
        let addr = self.connector.trim_start_matches("http://").to_owned();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // The runner stops once the server's last connection closed.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    /// A token for the guide's test client, from the Entra sandbox.
    pub async fn token(&self) -> String {
        caller_token(&self.http, &self.ready).await
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.token().await;
        self.call_as(&token, method, path, body, None).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        idem: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.connector))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        if let Some(k) = idem {
            r = r.header("Idempotency-Key", k);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A sandbox-only call to the fulfiller (asserting success): holds, faults.
    pub async fn fulfiller_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.fulfiller))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// How many shipments the fulfiller holds (every state).
    pub async fn fulfiller_total(&self) -> u64 {
        let r: Value = self
            .http
            .get(format!("{}/v1/shipments_exact", self.fulfiller))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["total_count"].as_u64().unwrap()
    }

    /// Processes (an admin's "process now", waiting for the runner) until the request
    /// is in one of `states`, sleeping a little between rounds so that short backoffs
    /// run out. Panics after 150 rounds.
    pub async fn settle(&self, id: &str, states: &[&str]) -> Value {
        let mut got = Value::Null;
        for _ in 0..150 {
            self.process().await;
            got = self.shipment(id).await;
            if states.iter().any(|s| got["state"] == *s) {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("request {id} never reached {states:?}: {got}");
    }

    /// One sandbox round.
    pub async fn advance(&self) {
        let r = self
            .http
            .post(format!("{}/sandbox/v1/advance", self.fulfiller))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// `POST /v1/fpr/shipments/process?wait=120`: makes due what waits for the
    /// fulfiller and returns once the runner has run everything due as far as it goes.
    pub async fn process(&self) -> Value {
        let (s, v) = self
            .call(
                reqwest::Method::POST,
                "/v1/fpr/shipments/process?wait=120",
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["data"]["idle"], true, "{v}");
        v
    }

    pub async fn shipment(&self, id: &str) -> Value {
        let (s, v) = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/fpr/shipments/{id}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["data"].clone()
    }
}

/// The guide's example request, filled with sandbox values.
pub fn guide_request(user_id: &str) -> Value {
    json!({
        "user_id": user_id,
        "pin_request": {"type": "generate", "length": 8},
        "yubico_shipment_request": {
            "delivery_type": 1,
            "recipient": {
                "recipient_company": "Contoso",
                "recipient_email": "alexw@contoso.example",
                "recipient_firstname": "Alex",
                "recipient_lastname": "Wilber",
                "recipient_telephone": "5555555555"
            },
            "mailing_address": {
                "street_line1": "7788 Foxrun Street",
                "street_line2": "Apt 2",
                "city": "Dedham",
                "region": "MA",
                "postal_code": "02026",
                "country_code_2": "US"
            },
            "shipment_items": [{
                "product_id": 1,
                "inventory_product_id": 1,
                "product_quantity": 1,
                "customization_id": sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION
            }]
        }
    })
}

/// A private CA and a server certificate for `localhost` and 127.0.0.1 signed by it,
/// written as PEM files into `dir`.
pub struct TestCerts {
    /// The CA certificate (PEM), to trust.
    pub ca_pem: String,
    /// Its file.
    pub ca_file: std::path::PathBuf,
    /// The server certificate chain (leaf, then CA).
    pub cert_file: std::path::PathBuf,
    /// The server's private key.
    pub key_file: std::path::PathBuf,
}

pub fn test_certs(dir: &std::path::Path) -> TestCerts {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "prereg test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let certs = TestCerts {
        ca_pem: ca.pem(),
        ca_file: dir.join("ca.pem"),
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
    };
    std::fs::write(&certs.ca_file, ca.pem()).unwrap();
    std::fs::write(&certs.cert_file, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&certs.key_file, key.serialize_pem()).unwrap();
    certs
}

/// Like [`start_full`], with the extra TOML written from the sandbox's ready line (the
/// console's `[console]` section needs the Entra sandbox's issuer and app).
pub async fn start_full_with(
    config: sandbox::Config,
    database_url: Option<String>,
    extra_toml: impl Fn(&Value) -> String,
    webhook: bool,
) -> World {
    start_world(config, database_url, extra_toml, webhook, None).await
}

/// Like [`start`] with PIN mail to the sandbox's mail catcher (no webhook), the
/// connector ordering from another fulfiller: `fulfiller` is the `fulfiller` member of
/// its ready line (a depot's). `World::fulfiller` is its base URL.
pub async fn start_ordering_from(fulfiller: Value) -> World {
    start_world(
        sandbox::Config::for_tests(),
        None,
        |_| String::new(),
        false,
        Some(fulfiller),
    )
    .await
}

async fn start_world(
    config: sandbox::Config,
    database_url: Option<String>,
    extra_toml: impl Fn(&Value) -> String,
    webhook: bool,
    other_fulfiller: Option<Value>,
) -> World {
    let app = sandbox::App::build(config).await.unwrap();
    let mut ready = app.ready_info();
    if let Some(f) = other_fulfiller {
        ready["fulfiller"] = f;
    }
    let fulfiller = ready["fulfiller"]["base_url"].as_str().unwrap().to_owned();
    let fulfiller_faults = app.fulfiller_faults();
    let entra = app.entra();
    let mail = app.mail_catcher();
    let mut stops = Vec::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    stops.push(tx);
    let pins = Arc::new(Mutex::new(Vec::new()));
    let p2 = pins.clone();
    let hook = axum::Router::new().route(
        "/pin",
        post(move |axum::Json(v): axum::Json<Value>| {
            let p = p2.clone();
            async move {
                p.lock().unwrap().push(v);
                axum::Json(json!({"ok": true}))
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/pin", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(l, hook)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    stops.push(tx);
    let dir = std::env::temp_dir().join(format!("prereg-connector-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db_path = dir.join("connector.db");
    let db = database_url.unwrap_or_else(|| format!("sqlite://{}", db_path.display()));
    let key = MasterKey::generate().unwrap().to_base64();
    let toml = connector::sandbox_config::from_ready(
        &ready,
        &connector::sandbox_config::Local {
            database_url: &db,
            master_key_b64: &key,
            listen_addr: "127.0.0.1:0",
            send_pin_url: webhook.then_some(hook_url.as_str()),
        },
    );
    let extra = extra_toml(&ready);
    let config =
        connector::Config::from_parts(&format!("{toml}{extra}"), Default::default()).unwrap();
    let app = Application::build(config).await.unwrap();
    let connector = app.base_url();
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    stops.push(tx);
    World {
        ready,
        fulfiller,
        fulfiller_faults,
        entra,
        connector,
        state,
        pins,
        mail,
        http: reqwest::Client::new(),
        db_path,
        dir,
        stops,
    }
}

/// Signs `upn` in at the Entra or Okta sandbox at `idp` with `key` and `pin`
/// ([`sandbox::signin::sign_in`]): the finish answer's status and body.
pub async fn sign_in_at(
    http: &reqwest::Client,
    idp: &str,
    key: &mut authenticator::VirtualYubiKey,
    upn: &str,
    pin: &str,
) -> (u16, Value) {
    let done = sandbox::signin::sign_in(http, idp, key, upn, &authenticator::Pin::new(pin))
        .await
        .unwrap();
    (done.status, done.body)
}
