//! Starts the whole sandbox (fulfiller, Entra, Okta, mail catcher) on 127.0.0.1 port 0
//! and drives the Okta and fulfiller sandboxes over plain HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Running, run, send_json};
use reqwest::Method;
use sandbox::mail::MailCatcher;
use sandbox::okta::Okta;
use sandbox::{App, Config};
use serde_json::{Value, json};

pub const SSWS: &str = sandbox::okta::seed::DEFAULT_API_TOKEN;
pub const FULFILLER_TOKEN: &str = sandbox::fulfiller::seed::DEFAULT_TOKEN;
pub const CID: &str = sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION;
pub const ALICE: &str = "00usandboxalice0001";
pub const CAROL: &str = "00usandboxcarol0003";
pub const BOB: &str = "00usandboxbob000002";
pub const PREREG: &str = "/webauthn-registration/api/v1";
pub const RP: &str = "prereg-sandbox.okta.com";

pub struct Sb {
    pub okta_url: String,
    pub fulfiller_url: String,
    pub okta: Okta,
    pub catcher: MailCatcher,
    pub http: reqwest::Client,
    _running: Running,
}

pub async fn start() -> Sb {
    start_with(Config::for_tests()).await
}

pub async fn start_with(config: Config) -> Sb {
    let app = App::build(config).await.expect("sandbox starts");
    let okta_url = app.okta_url();
    let fulfiller_url = app.fulfiller_url();
    let okta = app.okta();
    let catcher = app.mail_catcher();
    let running = run(app);
    Sb {
        okta_url,
        fulfiller_url,
        okta,
        catcher,
        http: reqwest::Client::new(),
        _running: running,
    }
}

/// A fulfilled key: what the fulfiller returned for an enroll.
pub struct Fulfilled {
    pub shipment_id: String,
    pub serial: String,
    pub version: String,
    pub pin_response: String,
    pub cred_responses: Vec<String>,
}

impl Sb {
    /// An Okta call with the SSWS token; (status, JSON or Null).
    pub async fn okta(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.okta_auth(method, path, body, &format!("SSWS {SSWS}"))
            .await
    }

    pub async fn okta_auth(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: &str,
    ) -> (u16, Value) {
        let req = self
            .http
            .request(method, format!("{}{path}", self.okta_url))
            .header("Authorization", auth);
        send_json(req, body.as_ref()).await
    }

    pub async fn fulfiller(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = self
            .http
            .request(method, format!("{}{path}", self.fulfiller_url))
            .bearer_auth(FULFILLER_TOKEN);
        send_json(req, body.as_ref()).await
    }

    pub async fn transport_key(&self) -> Value {
        let (s, v) = self
            .fulfiller(Method::GET, "/.well-known/yubico-transport-keys.jwks", None)
            .await;
        assert_eq!(s, 200);
        v["keys"][0].clone()
    }

    pub async fn signing_keys(&self) -> Value {
        let (s, v) = self
            .fulfiller(Method::GET, "/.well-known/yubico-sign.jwks", None)
            .await;
        assert_eq!(s, 200);
        v["keys"].clone()
    }

    /// `POST .../enroll` for `user` on the default RP; the 200 body.
    pub async fn enroll(&self, user: &str, rp_ids: &[&str]) -> Value {
        let tk = self.transport_key().await;
        let (s, v) = self
            .okta(
                Method::POST,
                &format!("{PREREG}/enroll"),
                Some(json!({
                    "enrollmentRpIds": rp_ids, "fulfillmentProvider": "yubico",
                    "userId": user, "yubicoTransportKeyJWK": tk,
                })),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    /// Creates the FPR shipment with the enroll's JWEs and advances it to shipped.
    pub async fn fulfil(&self, enrolled: &Value) -> Fulfilled {
        let creds: Vec<Value> = enrolled["credRequests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["credRequestJwe"].clone())
            .collect();
        let (s, v) = self
            .fulfiller(Method::POST, "/v1/fpr/shipments", Some(json!({
                "delivery_type": 1,
                "recipient": {"recipient_company": "Example Corp", "recipient_email": "alice.personal@example.net",
                    "recipient_firstname": "Alice", "recipient_lastname": "Anders", "recipient_telephone": "+1 415 555 0101"},
                "mailing_address": {"street_line1": "100 Market St", "street_line2": "", "city": "San Francisco",
                    "region": "CA", "postal_code": "94105", "country_code_2": "US"},
                "shipment_items": [{"product_id": 1, "inventory_product_id": 1, "product_quantity": 1, "customization_id": CID,
                    "product_customizations": [{"fido_pin_request": enrolled["pinRequestJwe"], "fido_credential_requests": creds}]}],
            })))
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["shipment_id"].as_str().unwrap().to_owned();
        let mut shipment = v;
        for _ in 0..10 {
            if shipment["shipment_state"]["shipment_state_id"]
                .as_u64()
                .unwrap_or(0)
                >= 103
            {
                break;
            }
            let (s, v) = self
                .fulfiller(Method::POST, "/sandbox/v1/advance", Some(json!({})))
                .await;
            assert_eq!(s, 200, "{v}");
            let (s, v) = self
                .fulfiller(Method::GET, &format!("/v1/fpr/shipments/{id}"), None)
                .await;
            assert_eq!(s, 200, "{v}");
            shipment = v;
        }
        let pd = &shipment["shipment_items"][0]["product_data"][0];
        assert!(pd.is_object(), "shipped: {shipment}");
        Fulfilled {
            shipment_id: id,
            serial: pd["serial_number"].as_str().unwrap().to_owned(),
            version: pd["firmware_version"].as_str().unwrap().to_owned(),
            pin_response: pd["fido_pin_response"].as_str().unwrap().to_owned(),
            cred_responses: pd["fido_credential_responses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect(),
        }
    }

    /// The activate body for `enrolled` + `f`, signing keys as the fulfiller publishes them.
    pub async fn activate_body(&self, user: &str, enrolled: &Value, f: &Fulfilled) -> Value {
        let ids: Vec<&str> = enrolled["credRequests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["authenticatorEnrollmentId"].as_str().unwrap())
            .collect();
        json!({
            "credResponses": ids.iter().zip(&f.cred_responses).map(|(id, r)| json!({"authenticatorEnrollmentId": id, "credResponseJwe": r})).collect::<Vec<_>>(),
            "fulfillmentProvider": "yubico",
            "pinResponseJwe": f.pin_response,
            "serial": f.serial, "userId": user, "version": f.version,
            "yubicoSigningJwks": self.signing_keys().await,
        })
    }

    pub async fn activate(&self, body: Value) -> (u16, Value) {
        self.okta(Method::POST, &format!("{PREREG}/activate"), Some(body))
            .await
    }

    /// enroll + fulfil + activate; returns (enrolled, fulfilled).
    pub async fn active_key(&self, user: &str) -> (Value, Fulfilled) {
        let e = self.enroll(user, &[RP]).await;
        let f = self.fulfil(&e).await;
        let (s, v) = self.activate(self.activate_body(user, &e, &f).await).await;
        assert_eq!(s, 200, "{v}");
        (e, f)
    }

    /// The shipped key as the recipient holds it.
    pub async fn shipped_key(&self, shipment_id: &str) -> authenticator::VirtualYubiKey {
        let (s, v) = self
            .fulfiller(
                Method::GET,
                &format!("/sandbox/v1/shipments/{shipment_id}/key"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        authenticator::VirtualYubiKey::from_json(&v.to_string()).unwrap()
    }

    /// Signs in with `key` and `pin` ([`sandbox::signin::sign_in`]): the finish
    /// answer's status and body.
    pub async fn sign_in(
        &self,
        key: &mut authenticator::VirtualYubiKey,
        login: &str,
        pin: &str,
    ) -> (u16, Value) {
        let done = sandbox::signin::sign_in(
            &self.http,
            &self.okta_url,
            key,
            login,
            &authenticator::Pin::new(pin),
        )
        .await
        .unwrap();
        (done.status, done.body)
    }

    /// Mail that arrived, via `GET /sandbox/v1/mail`.
    pub async fn mail(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/sandbox/v1/mail", self.okta_url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json::<Vec<Value>>().await.unwrap()
    }
}

/// The 6-digit PIN in a PIN mail body.
pub fn pin_in(body: &str) -> String {
    let at = body.find("PIN is: ").expect("the mail names the PIN") + 8;
    body[at..at + 6].to_owned()
}
