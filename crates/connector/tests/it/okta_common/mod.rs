//! Okta mode test world: the sandboxes (fulfiller, Entra for API tokens, Okta, mail
//! catcher) and a connector with an `[okta]` section pointing at the Okta sandbox, all
//! on 127.0.0.1 port 0.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

/// The shared test world (the caller token comes from there).
pub use crate::common;

use connector::Application;
use connector::secrets::MasterKey;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;

pub const ALICE: &str = "00usandboxalice0001";
pub const BOB: &str = "00usandboxbob000002";
pub const DAVE: &str = "00usandboxdave00004";
pub const ERIN: &str = "00usandboxerin00005";
pub const FRANK: &str = "00usandboxfrank0006";
pub const GROUP: &str = connector::sandbox_config::SANDBOX_GROUP;
pub const HOOK_SECRET: &str = "test-hook-secret-0123456789";

pub struct OktaWorld {
    pub ready: Value,
    pub fulfiller: String,
    pub okta: String,
    pub okta_token: String,
    /// The Okta sandbox itself (trusted signing keys, faults).
    pub okta_org: sandbox::okta::Okta,
    /// The fulfiller's and the Entra sandbox's live fault settings.
    pub fulfiller_faults: sandbox::faults::Faults,
    pub entra: sandbox::entra::Entra,
    pub connector: String,
    pub state: Arc<connector::AppState>,
    pub mail: sandbox::mail::MailCatcher,
    pub http: reqwest::Client,
    pub dir: std::path::PathBuf,
    token: tokio::sync::Mutex<Option<String>>,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for OktaWorld {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Options {
    pub approval: &'static str,
    pub seed: Option<sandbox::okta::seed::OrgSeed>,
    pub database_url: Option<String>,
    pub extra_okta_toml: String,
    /// Top-level connector keys (before `[okta]`).
    pub extra_toml: String,
    /// The Entra tenant (default: the built-in one).
    pub entra_seed: Option<sandbox::entra::seed::TenantSeed>,
    /// At least this many keys in each of the fulfiller's inventory buckets (default:
    /// the seed's, 100 YubiKey 5 NFC).
    pub stock: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            approval: "admin",
            seed: None,
            database_url: None,
            extra_okta_toml: String::new(),
            extra_toml: String::new(),
            entra_seed: None,
            stock: None,
        }
    }
}

pub async fn start() -> OktaWorld {
    start_with(Options::default()).await
}

pub async fn start_with(o: Options) -> OktaWorld {
    let mut config = sandbox::Config::for_tests();
    if let Some(seed) = o.seed {
        config.okta_seed = seed;
    }
    if let Some(seed) = o.entra_seed {
        config.entra_seed = seed;
    }
    if let Some(n) = o.stock {
        for b in &mut config.seed.inventory {
            b.quantity = b.quantity.max(n);
        }
    }
    let app = sandbox::App::build(config).await.unwrap();
    let ready = app.ready_info();
    let fulfiller = app.fulfiller_url();
    let okta = app.okta_url();
    let okta_org = app.okta();
    let fulfiller_faults = app.fulfiller_faults();
    let entra = app.entra();
    let mail = app.mail_catcher();
    let mut stops = Vec::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    stops.push(tx);

    let dir = std::env::temp_dir().join(format!("prereg-okta-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = o
        .database_url
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("connector.db").display()));
    let key = MasterKey::generate().unwrap().to_base64();
    let mut toml = connector::sandbox_config::from_ready(
        &ready,
        &connector::sandbox_config::Local {
            database_url: &db,
            master_key_b64: &key,
            listen_addr: "127.0.0.1:0",
            send_pin_url: None,
        },
    );
    let section = connector::sandbox_config::okta_section(
        &ready,
        &connector::sandbox_config::OktaLocal {
            hook_secret: HOOK_SECRET,
            approval: o.approval,
            reconcile_interval_seconds: 0,
            event_hook_url: None,
        },
    );
    // Extra [okta] keys go right after the section's own keys (before [[okta.groups]]).
    let section = match section.split_once("\n[[okta.groups]]") {
        Some((head, tail)) => format!("{head}{}\n[[okta.groups]]{tail}", o.extra_okta_toml),
        None => section,
    };
    toml.push_str(&o.extra_toml);
    toml.push_str(&section);
    let config = connector::Config::from_parts(&toml, Default::default()).unwrap();
    let app = Application::build(config).await.unwrap();
    let connector = app.base_url();
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    stops.push(tx);
    OktaWorld {
        okta_token: ready["okta"]["ssws_token"].as_str().unwrap().to_owned(),
        okta_org,
        fulfiller_faults,
        entra,
        ready,
        fulfiller,
        okta,
        connector,
        state,
        mail,
        http: reqwest::Client::new(),
        dir,
        token: tokio::sync::Mutex::new(None),
        stops,
    }
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl OktaWorld {
    /// An API token for the connector (the Entra sandbox's test client).
    pub async fn token(&self) -> String {
        let mut g = self.token.lock().await;
        if let Some(t) = g.as_ref() {
            return t.clone();
        }
        let t = common::caller_token(&self.http, &self.ready).await;
        *g = Some(t.clone());
        t
    }

    /// The connector's API with a bearer token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = self.token().await;
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.connector))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        json_of(r.send().await.unwrap()).await
    }

    /// The Okta sandbox with the SSWS token.
    pub async fn okta_call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.okta))
            .header("Authorization", format!("SSWS {}", self.okta_token));
        if let Some(b) = body {
            r = r.json(&b);
        }
        json_of(r.send().await.unwrap()).await
    }

    /// The fulfiller sandbox.
    pub async fn fulfiller_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.fulfiller))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN);
        if let Some(b) = body {
            r = r.json(&b);
        }
        json_of(r.send().await.unwrap()).await
    }

    /// Registers the connector's event hook at the Okta sandbox and has it verified.
    pub async fn register_hook(&self) -> String {
        let (s, v) = self
            .okta_call(
                Method::POST,
                "/api/v1/eventHooks",
                Some(json!({
                    "name": "prereg connector",
                    "events": {"type": "EVENT_TYPE", "items": [
                        "group.user_membership.add",
                        "user.authenticator.enroll.webauthn_preregistration"]},
                    "channel": {"type": "HTTP", "version": "1.0.0", "config": {
                        "uri": format!("{}/v1/okta/events", self.connector),
                        "headers": [],
                        "authScheme": {"type": "HEADER", "key": "Authorization", "value": HOOK_SECRET}}}
                })),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let (s, v) = self
            .okta_call(
                Method::POST,
                &format!("/api/v1/eventHooks/{id}/lifecycle/verify"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["verificationStatus"], "VERIFIED");
        id
    }

    /// Adds a user to a group at the Okta sandbox (emits the group event).
    pub async fn add_to_group(&self, group: &str, user: &str) {
        let (s, v) = self
            .okta_call(
                Method::PUT,
                &format!("/api/v1/groups/{group}/users/{user}"),
                None,
            )
            .await;
        assert_eq!(s, 204, "{v}");
    }

    /// The Okta-mode requests (the shipments table), newest first.
    pub async fn table(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let (s, v) = self
                .call(
                    Method::GET,
                    &format!("/v1/okta/requests?limit=100&offset={offset}"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{v}");
            let page = v["data"].as_array().unwrap().clone();
            let n = page.len();
            out.extend(page);
            if n < 100 {
                return out;
            }
            offset += 100;
        }
    }

    /// The requests of one Okta user.
    pub async fn requests_of(&self, okta_user: &str) -> Vec<Value> {
        self.table()
            .await
            .into_iter()
            .filter(|r| r["user_id"] == okta_user)
            .collect()
    }

    /// Waits (awaiting a condition, not a time) until `okta_user` has a request.
    pub async fn wait_request_of(&self, okta_user: &str) -> Value {
        for _ in 0..200 {
            if let Some(r) = self.requests_of(okta_user).await.into_iter().next() {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no request for {okta_user} appeared");
    }

    /// Waits (awaiting a condition) until the request reaches `state` on its own: the
    /// trigger started the processing, nobody calls `process`.
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = self.request(id).await;
            if last["state"] == state {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("request never reached {state} on its own: {last}");
    }

    pub async fn request(&self, id: &str) -> Value {
        let (s, v) = self
            .call(Method::GET, &format!("/v1/okta/requests/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v["data"].clone()
    }

    /// `POST /v1/fpr/shipments/process` (runs every due job, Okta ones included).
    pub async fn process(&self) -> Value {
        let (s, v) = self
            .call(Method::POST, "/v1/fpr/shipments/process?wait=120", None)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// One fulfiller sandbox round.
    pub async fn advance(&self) {
        let (s, v) = self
            .fulfiller_call(Method::POST, "/sandbox/v1/advance", Some(json!({})))
            .await;
        assert_eq!(s, 200, "{v}");
    }

    /// Processes (and advances the fulfiller while the shipment is open) until the
    /// request reaches `state`. A worker started by a trigger may hold the job for a
    /// moment: then the loop waits a little and processes again (bounded).
    pub async fn drive_to(&self, id: &str, state: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            self.process().await;
            last = self.request(id).await;
            if last["state"] == state {
                return last;
            }
            if last["state"] == "error" && state != "error" {
                panic!("request went to error: {last}");
            }
            if last["state"] == "open" {
                self.advance().await;
            } else {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        panic!("request never reached {state}: {last}");
    }

    /// Okta's enrollments of a user.
    pub async fn enrollments(&self, okta_user: &str) -> Vec<Value> {
        let (s, v) = self
            .okta_call(
                Method::GET,
                &format!("/webauthn-registration/api/v1/users/{okta_user}/enrollments"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v.as_array().unwrap().clone()
    }

    /// Shipments at the fulfiller (all pages).
    pub async fn fulfiller_shipments(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let (s, v) = self
                .fulfiller_call(
                    Method::GET,
                    &format!("/v1/shipments_exact?limit=100&offset={offset}"),
                    None,
                )
                .await;
            assert_eq!(s, 200, "{v}");
            let page = v["shipments"].as_array().unwrap().clone();
            let n = page.len();
            out.extend(page);
            if n < 100 {
                return out;
            }
            offset += 100;
        }
    }

    /// The shipped key as the recipient holds it.
    pub async fn shipped_key(&self, shipment_id: &str) -> authenticator::VirtualYubiKey {
        let (s, v) = self
            .fulfiller_call(
                Method::GET,
                &format!("/sandbox/v1/shipments/{shipment_id}/key"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        authenticator::VirtualYubiKey::from_json(&v.to_string()).unwrap()
    }

    /// Signs in at the Okta sandbox with `key`.
    pub async fn sign_in(
        &self,
        key: &mut authenticator::VirtualYubiKey,
        login: &str,
        pin: &str,
    ) -> (u16, Value) {
        common::sign_in_at(&self.http, &self.okta, key, login, pin).await
    }
}

/// The 6-digit PIN in an Okta PIN mail.
pub fn pin_in(body: &str) -> String {
    let at = body.find("PIN is: ").expect("the mail names the PIN") + 8;
    body[at..at + 6].to_owned()
}

/// An Okta user for a custom seed; `full` false leaves out the street address and phone.
pub fn seed_user(n: usize, full: bool) -> okta::User {
    let login = format!("user{n:03}@example.com");
    let mut profile = json!({
        "login": login, "email": login, "firstName": format!("User{n}"), "lastName": "Batch",
        "organization": "Example Corp", "city": "Boston", "state": "MA", "zipCode": format!("02{n:03}"),
        "countryCode": "US",
    });
    if full {
        profile["streetAddress"] = json!(format!("{n} Main St"));
        profile["primaryPhone"] = json!("+1 617 555 0100");
    }
    serde_json::from_value(json!({
        "id": format!("00ubatch{n:011}"),
        "status": "ACTIVE",
        "profile": profile,
    }))
    .unwrap()
}

/// An Okta event hook delivery of one `group.user_membership.add` event (`uuid`: the
/// event's id) for `user` joining `group`.
pub fn group_add_event(uuid: &str, user: &str, group: &str) -> Value {
    json!({
        "eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "cloudEventsVersion": "0.1",
        "source": "https://example.okta.com/api/v1/eventHooks/who", "eventId": uuid::Uuid::new_v4().to_string(),
        "eventTime": "2026-11-29T06:00:00.000Z", "contentType": "application/json",
        "data": {"events": [{
            "uuid": uuid, "published": "2026-11-29T06:00:00.000Z",
            "eventType": "group.user_membership.add", "version": "0",
            "displayMessage": "Add user to group membership", "severity": "INFO",
            "actor": {"id": "00uadmin", "type": "User"},
            "target": [
                {"id": user, "type": "User", "alternateId": "x", "displayName": "x"},
                {"id": group, "type": "UserGroup", "alternateId": "unknown", "displayName": "g"}
            ],
            "outcome": {"result": "SUCCESS"}, "debugContext": {"debugData": {}}
        }]}
    })
}
