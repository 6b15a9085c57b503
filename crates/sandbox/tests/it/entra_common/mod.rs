//! Starts the sandbox (fulfiller + Entra) on 127.0.0.1 port 0 and gives the Entra tests
//! tokens, raw calls, a Graph client and virtual keys.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Running, run, send_json};
use authenticator::{KeyProgrammer, Pin, VirtualYubiKey, client};
use graph::fido2::NewFido2Method;
use graph::{ApiVersion, CreationOptions, GraphClient, GraphConfig, RetryPolicy};
use reqwest::Method;
use sandbox::entra::{Entra, TenantSeed};
use sandbox::{App, Config};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::time::Duration;
use webauthn::options::RegistrationResponse;

pub const PIN: &str = "482915";
pub const ADELE: &str = "AdeleV@contoso.onmicrosoft.com";
pub const ALEX: &str = "AlexW@contoso.onmicrosoft.com";
/// Seeded without a manager.
pub const MEGAN: &str = "MeganB@contoso.onmicrosoft.com";
pub const GUEST: &str = "vendor_fabrikam.com#EXT#@contoso.onmicrosoft.com";

pub struct Sandbox {
    pub url: String,
    pub entra: Entra,
    pub http: reqwest::Client,
    pub tenant: String,
    pub connector_id: String,
    pub connector_secret: String,
    pub client_id: String,
    pub client_secret: String,
    pub connector_api: String,
    _running: Running,
}

pub async fn start() -> Sandbox {
    start_with(TenantSeed::default()).await
}

pub async fn start_with(seed: TenantSeed) -> Sandbox {
    let mut config = Config::for_tests();
    config.entra_seed = seed.clone();
    let app = App::build(config).await.expect("sandbox starts");
    let url = app.entra_url();
    let entra = app.entra();
    let running = run(app);
    let connector = seed.connector_app().unwrap().clone();
    let client = seed.test_client_app().unwrap().clone();
    Sandbox {
        url,
        entra,
        http: reqwest::Client::new(),
        tenant: seed.tenant_id.clone(),
        connector_api: connector.identifier_uri.clone().unwrap(),
        connector_id: connector.client_id,
        connector_secret: connector.client_secret,
        client_id: client.client_id,
        client_secret: client.client_secret,
        _running: running,
    }
}

impl Sandbox {
    /// `POST /{tenant}/oauth2/v2.0/token` with a form; (status, body).
    pub async fn token_raw(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A token for `client_id` on `scope`.
    pub async fn token(&self, client_id: &str, secret: &str, scope: &str) -> String {
        let (s, v) = self
            .token_raw(
                &self.tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret),
                    ("scope", scope),
                ],
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// The connector app's Graph token.
    pub async fn graph_token(&self) -> String {
        self.token(
            &self.connector_id,
            &self.connector_secret,
            "https://graph.microsoft.com/.default",
        )
        .await
    }

    /// A raw call; (status, JSON body or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        send_json(req, body).await
    }

    /// A Graph client as the connector app.
    pub fn graph(&self) -> GraphClient {
        self.graph_as(&self.connector_id, &self.connector_secret)
    }

    pub fn graph_as(&self, client_id: &str, secret: &str) -> GraphClient {
        let mut cfg = GraphConfig::new(&self.tenant, client_id, SecretString::from(secret));
        cfg.authority_url = self.url.clone();
        cfg.graph_url = self.url.clone();
        cfg.retry = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(2),
        };
        GraphClient::new(cfg).unwrap()
    }

    /// creationOptions through the Graph client (beta, `minutes` or the default).
    pub async fn options(&self, user: &str, minutes: Option<u32>) -> CreationOptions {
        let v = if minutes.is_some() {
            ApiVersion::Beta
        } else {
            ApiVersion::V1
        };
        self.graph()
            .creation_options(v, user, minutes)
            .await
            .unwrap()
    }

    /// `POST .../fido2Methods` with the connector's token; (status, body).
    pub async fn post_method(&self, user: &str, body: &Value) -> (u16, Value) {
        let t = self.graph_token().await;
        self.call(
            Method::POST,
            &format!("/beta/users/{user}/authentication/fido2Methods"),
            Some(&t),
            Some(body),
        )
        .await
    }

    pub async fn advance_minutes(&self, minutes: u64) {
        let (s, v) = self
            .call(
                Method::POST,
                "/sandbox/v1/clock/advance",
                None,
                Some(&json!({"minutes": minutes})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn policy(&self) -> Value {
        self.call(Method::GET, "/sandbox/v1/fido2-policy", None, None)
            .await
            .1
    }

    pub async fn set_policy(&self, policy: &Value) {
        let (s, v) = self
            .call(Method::PUT, "/sandbox/v1/fido2-policy", None, Some(policy))
            .await;
        assert_eq!(s, 200, "{v}");
    }

    pub async fn edit_policy(&self, edit: impl FnOnce(&mut Value)) {
        let mut p = self.policy().await;
        edit(&mut p);
        self.set_policy(&p).await;
    }
}

/// Form-encodes one value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A YubiKey 5 NFC (firmware 5.7) with the test PIN.
pub fn new_key() -> VirtualYubiKey {
    let mut k = VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        "5.7.1".parse().unwrap(),
        None,
    )
    .unwrap();
    k.set_pin(&Pin::new(PIN)).unwrap();
    k
}

/// The key's registration for `options`, as a browser at login.microsoft.com makes it.
pub fn register_json(key: &mut VirtualYubiKey, options: &CreationOptions) -> RegistrationResponse {
    client::make_credential(
        key,
        &serde_json::to_string(options).unwrap(),
        graph::ENTRA_ORIGIN,
        Some(&Pin::new(PIN)),
    )
    .unwrap()
}

/// The POST body for a registration.
pub fn body_for(reg: &RegistrationResponse) -> Value {
    serde_json::to_value(NewFido2Method::from_registration(
        Some("YubiKey 5 NFC 12345678".into()),
        reg,
    ))
    .unwrap()
}

/// A registration made directly on the key with any clientDataJSON, rp id, and UV.
pub fn register_raw(
    key: &mut VirtualYubiKey,
    options: &CreationOptions,
    rp_id: &str,
    client_data_json: &[u8],
    with_pin: bool,
) -> RegistrationResponse {
    let made = key
        .make_credential(
            &authenticator::MakeCredentialRequest {
                client_data_hash: webauthn::client_data::hash_bytes(client_data_json),
                client_data_json: Some(client_data_json.to_vec()),
                rp: authenticator::RelyingParty {
                    id: rp_id.into(),
                    name: Some("Microsoft".into()),
                },
                user: authenticator::User {
                    id: options.public_key.user.id.clone(),
                    name: Some(options.public_key.user.name.clone()),
                    display_name: None,
                },
                algorithms: vec![-7],
                exclude_list: vec![],
                resident_key: with_pin,
                user_verification: with_pin,
                cred_protect: Some(1),
                hmac_secret: true,
            },
            with_pin.then(|| Pin::new(PIN)).as_ref(),
        )
        .unwrap();
    RegistrationResponse {
        id: made.credential_id.clone(),
        raw_id: Some(made.credential_id),
        typ: Some("public-key".into()),
        authenticator_attachment: None,
        response: webauthn::options::AttestationResponse {
            client_data_json: client_data_json.to_vec(),
            attestation_object: made.attestation_object,
            transports: vec![],
        },
        client_extension_results: serde_json::Map::new(),
    }
}

/// `innerError.code` of a Graph error body.
pub fn reason(v: &Value) -> &str {
    v["error"]["innerError"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// Every member of `fixture` appears in `actual` with the same JSON type, recursively
/// (arrays: by their first elements). Values may differ.
pub fn assert_same_shape(fixture: &Value, actual: &Value, at: &str) {
    match (fixture, actual) {
        (Value::Object(f), Value::Object(a)) => {
            for (k, fv) in f {
                let av = a.get(k).unwrap_or_else(|| {
                    panic!("{at}.{k} missing from the sandbox's answer: {actual}")
                });
                assert_same_shape(fv, av, &format!("{at}.{k}"));
            }
        }
        (Value::Array(f), Value::Array(a)) => {
            if let (Some(fv), Some(av)) = (f.first(), a.first()) {
                assert_same_shape(fv, av, &format!("{at}[0]"));
            }
        }
        (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Null, Value::Null) => {}
        _ => panic!("{at}: fixture has {fixture}, the sandbox answered {actual}"),
    }
}

/// A fixture of the graph crate.
pub fn graph_fixture(name: &str) -> Value {
    let path = format!(
        "{}/../graph/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}
