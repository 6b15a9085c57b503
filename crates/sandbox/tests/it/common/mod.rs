//! Starts a real fulfiller sandbox on 127.0.0.1 port 0 and hands out clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sandbox::fulfiller::Store;
use sandbox::{App, Config};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;
use yubienterprise::Client;
use yubienterprise::exact::{CreateShipmentExact, ExactItemRequest};
use yubienterprise::fpr::{
    CreateFprShipment, MailingAddress, ProductCustomization, Recipient, ShipmentItemRequest,
};

pub const TOKEN: &str = sandbox::fulfiller::seed::DEFAULT_TOKEN;
pub const CID: &str = sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION;

pub struct Sandbox {
    pub url: String,
    pub client: Client,
    pub http: reqwest::Client,
    pub store: Arc<Store>,
    _running: Running,
}

/// Sends `req`, with `body` as JSON when given; (status, JSON body or Null).
pub async fn send_json(mut req: reqwest::RequestBuilder, body: Option<&Value>) -> (u16, Value) {
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A sandbox running on the test's runtime; dropping it stops the sandbox.
pub struct Running(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            let _ = s.send(());
        }
    }
}

/// Runs the built sandbox (every service it has on 127.0.0.1 port 0) until the
/// returned guard is dropped.
pub fn run(app: App) -> Running {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    Running(Some(tx))
}

pub async fn start() -> Sandbox {
    start_with(Config::for_tests()).await
}

pub async fn start_with(config: Config) -> Sandbox {
    let app = App::build(config).await.expect("sandbox starts");
    let url = app.fulfiller_url();
    let store = app.fulfiller_store();
    let running = run(app);
    let client = Client::new(
        &format!("{url}/v1"),
        &url,
        SecretString::from(TOKEN.to_owned()),
    )
    .unwrap();
    Sandbox {
        url,
        client,
        http: reqwest::Client::new(),
        store,
        _running: running,
    }
}

impl Sandbox {
    /// A raw call with the token; returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        send_json(req, body.as_ref()).await
    }

    pub async fn advance(&self) -> Value {
        let (s, v) = self
            .call(
                reqwest::Method::POST,
                "/sandbox/v1/advance",
                Some(json!({})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }

    pub async fn move_to(&self, id: &str, to: u16) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "/sandbox/v1/advance",
            Some(json!({"shipment_id": id, "to_state": to})),
        )
        .await
    }

    pub async fn state_of(&self, id: &str) -> u16 {
        self.client
            .get_shipment_exact(id)
            .await
            .unwrap()
            .shipment_state_id
            .id()
    }
}

pub fn fpr_body() -> CreateFprShipment {
    CreateFprShipment {
        delivery_type: Some(1),
        recipient: Recipient {
            recipient_company: "Example Inc.".into(),
            recipient_email: "jan.lindberg@example.com".into(),
            recipient_firstname: "Jan".into(),
            recipient_lastname: "Lindberg".into(),
            recipient_telephone: "555-5555".into(),
        },
        mailing_address: MailingAddress {
            street_line1: "7788 Foxrun Street".into(),
            street_line2: String::new(),
            street_line3: String::new(),
            city: "Dedham".into(),
            region: "MA".into(),
            postal_code: "02026".into(),
            country_code_2: "US".into(),
        },
        shipment_items: vec![ShipmentItemRequest {
            product_id: 1,
            inventory_product_id: 1,
            product_quantity: 1,
            customization_id: CID.into(),
            product_customizations: vec![ProductCustomization {
                fido_pin_request: "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9.a.b.c.d".into(),
                fido_credential_requests: vec!["eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9.a.b.c.d".into()],
            }],
        }],
        reseller_organization_id: None,
        address_validation_bypass: None,
        customer_reference: None,
    }
}

pub fn exact_body(lastname: &str) -> CreateShipmentExact {
    CreateShipmentExact {
        channelpartner_id: Some(1),
        delivery_type: Some(1),
        country_code_2: "US".into(),
        recipient: "Example Inc.".into(),
        recipient_email: "someone@example.com".into(),
        recipient_firstname: "Firstname".into(),
        recipient_lastname: lastname.into(),
        recipient_telephone: "555-5555".into(),
        street_line1: "123 Street Name".into(),
        street_line2: String::new(),
        street_line3: String::new(),
        city: "City Name".into(),
        region: "MA".into(),
        postal_code: "02026".into(),
        address_validation_bypass: None,
        shipment_type: None,
        shipment_items: vec![ExactItemRequest {
            product_id: 3,
            inventory_product_id: 15,
            shipment_product_quantity: 1,
        }],
    }
}

/// The input of `interop/sandbox_e2e.py` (the requester built from independent tools)
/// for this sandbox: a PIN choice, the relying party, whether python-fido2 verifies the
/// attestation.
pub fn e2e_input(sb: &Sandbox, rp_id: &str, pin: Value, verify_attestation: bool) -> Value {
    json!({
        "base_url": sb.url, "token": TOKEN,
        "origin": format!("https://{rp_id}"), "rp_id": rp_id,
        "pin": pin, "min_pin_length": 6, "force_pin_change": true,
        "product_id": 1, "inventory_product_id": 1, "customization_id": CID,
        "verify_attestation": verify_attestation,
    })
}
