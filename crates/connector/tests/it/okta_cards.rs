//! The guide's four Yubico action cards (`connector::okta::cards`), as functions and as
//! the connector's `/v1/yubico/...` routes, against the real fulfiller and Okta
//! sandboxes on 127.0.0.1 port 0: an Okta enrollment's JWEs go through "Build Shipment
//! Item" and "Create Shipment Request" unchanged, the fulfiller sandbox programs the key
//! from them, and Okta activates with what "Get Shipment Details" returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use connector::okta::cards::{
    self, BuildShipmentItem, CardError, CreateShipmentRequest, ShipmentDetails,
};
use reqwest::Method;
use serde_json::{Value, json};

const ALICE: &str = "00usandboxalice0001";
const CID: &str = sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION;

/// A fulfiller client at a port nobody listens on: any call would fail with
/// `Unavailable`, so a `Validation` error proves nothing was sent.
async fn nowhere() -> yubienterprise::Client {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    yubienterprise::Client::new(
        &format!("http://127.0.0.1:{port}/v1"),
        &format!("http://127.0.0.1:{port}"),
        "unused".to_owned().into(),
    )
    .unwrap()
}

/// `POST /webauthn-registration/api/v1/enroll` at the Okta sandbox for `user`, sealed
/// to `transport_key`; the 200 body.
async fn okta_enroll(w: &common::World, user: &str, transport_key: &Value) -> Value {
    let okta = &w.ready["okta"];
    let r = w
        .http
        .post(format!("{}/enroll", okta["prereg_api"].as_str().unwrap()))
        .header(
            "Authorization",
            format!("SSWS {}", okta["ssws_token"].as_str().unwrap()),
        )
        .json(&json!({
            "enrollmentRpIds": [okta["domain"]], "fulfillmentProvider": "yubico",
            "userId": user, "yubicoTransportKeyJWK": transport_key,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn okta_call(
    w: &common::World,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let okta = &w.ready["okta"];
    let mut r = w
        .http
        .request(
            method,
            format!("{}{path}", okta["prereg_api"].as_str().unwrap()),
        )
        .header(
            "Authorization",
            format!("SSWS {}", okta["ssws_token"].as_str().unwrap()),
        );
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (
        s,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

fn contact() -> CreateShipmentRequest {
    CreateShipmentRequest {
        company: "Example Corp".into(),
        email: "alice.personal@example.net".into(),
        first_name: "Alice".into(),
        last_name: "Anders".into(),
        phone_number: "+1 415 555 0101".into(),
        address: "100 Market St".into(),
        apt_or_unit_number: "Suite 5".into(),
        city: "San Francisco".into(),
        region: "CA".into(),
        postal_code: "94105".into(),
        country_code: "US".into(),
        shipment_items: Vec::new(),
        delivery_type: Some(1),
    }
}

/// A syntactically valid compact JWE that nobody can open.
const FAKE_JWE: &str = "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9.a2V5.aXY.Y2lwaGVy.dGFn";

fn item_input() -> BuildShipmentItem {
    BuildShipmentItem {
        customization_id: CID.into(),
        product_id: 1,
        inventory_product_id: 1,
        quantity: 1,
        pin_request: FAKE_JWE.into(),
        credential_requests: vec![FAKE_JWE.into()],
    }
}

/// Advances the fulfiller sandbox until the shipment has its responses (state 103).
async fn until_shipped(w: &common::World, id: &str) -> ShipmentDetails {
    let mut d = cards::get_shipment_details(&w.state.fulfiller, id)
        .await
        .unwrap();
    for _ in 0..10 {
        if d.shipment_state_id >= 103 {
            break;
        }
        w.advance().await;
        d = cards::get_shipment_details(&w.state.fulfiller, id)
            .await
            .unwrap();
    }
    d
}

#[tokio::test(flavor = "multi_thread")]
async fn an_okta_enrollment_goes_through_the_cards_and_the_fulfiller_programs_the_key() {
    let w = common::start().await;
    let f = &w.state.fulfiller;

    // Get Public Transport Keys and Signing Certificate.
    let keys = cards::get_keys(f).await.unwrap();
    let published: Value = w
        .http
        .get(format!("{}/.well-known/yubico-sign.jwks", w.fulfiller))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The card hands on the keys; the certificate chain the fulfiller publishes with
    // them (`x5c`, `x5t#S256`) is not part of a key and is left out.
    let mut published = published;
    for k in published["keys"].as_array_mut().unwrap() {
        let k = k.as_object_mut().unwrap();
        k.remove("x5c");
        k.remove("x5t#S256");
    }
    assert_eq!(
        serde_json::to_value(&keys.signing_public_keys_jwks).unwrap(),
        published
    );
    let transport = serde_json::to_value(&keys.transport_keys_jwks).unwrap();
    let tk = transport["keys"][0].clone();
    assert_eq!(tk["use"], "enc");
    assert_eq!(tk["crv"], "P-384");

    // Okta seals the requests to the transport key.
    let enrolled = okta_enroll(&w, ALICE, &tk).await;
    let pin_jwe = enrolled["pinRequestJwe"].as_str().unwrap().to_owned();
    let cred_jwes: Vec<String> = enrolled["credRequests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["credRequestJwe"].as_str().unwrap().to_owned())
        .collect();

    // Build Shipment Item: Okta's strings (and ids as strings), relayed unchanged.
    let input: BuildShipmentItem = serde_json::from_value(json!({
        "customization_id": CID, "product_id": "1", "inventory_product_id": 1, "quantity": 1,
        "pin_request": pin_jwe, "credential_requests": cred_jwes,
    }))
    .unwrap();
    let item = cards::build_shipment_item(&input).unwrap();
    let wire = serde_json::to_value(&item).unwrap();
    assert_eq!(
        wire,
        json!({"product_id": 1, "inventory_product_id": 1, "product_quantity": 1,
               "customization_id": CID, "product_customizations": [
                   {"fido_pin_request": pin_jwe, "fido_credential_requests": cred_jwes}]})
    );

    // Create Shipment Request.
    let mut req = contact();
    req.shipment_items = vec![item];
    let created = cards::create_shipment_request(f, &req).await.unwrap();
    assert_eq!(created.shipment_id.len(), 22);
    assert_eq!(created.shipment_state_id, 2, "received");

    // Get Shipment Details: nothing to activate with yet, then the programmed key.
    let early = cards::get_shipment_details(f, &created.shipment_id)
        .await
        .unwrap();
    assert_eq!(early.shipment_id, created.shipment_id);
    assert!(early.product_data().is_none());
    assert_eq!(early.shipment_items[0].customization_id, CID);
    let d = until_shipped(&w, &created.shipment_id).await;
    assert_eq!(d.shipment_state_id, 103, "{d:?}");
    assert_eq!(d.shipment_state_message, "Shipped");
    let item = &d.shipment_items[0];
    assert_eq!(
        (
            item.product_id,
            item.inventory_product_id,
            item.product_quantity
        ),
        (1, 1, 1)
    );
    let pd = d.product_data().unwrap().clone();
    assert!(!pd.serial.is_empty() && !pd.version.is_empty());
    assert_eq!(pd.fido_credential_response.len(), cred_jwes.len());

    // The key the fulfiller programmed from the relayed JWEs is the one shipped...
    let parcel: Value = w
        .http
        .get(format!(
            "{}/sandbox/v1/shipments/{}/key",
            w.fulfiller, created.shipment_id
        ))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(parcel.to_string().contains(&pd.serial), "{parcel}");

    // ...and Okta accepts its responses: the credential it asked for is on the key.
    let fid = enrolled["credRequests"][0]["authenticatorEnrollmentId"].clone();
    let (s, v) = okta_call(
        &w,
        Method::POST,
        "/activate",
        Some(json!({
            "fulfillmentProvider": "yubico", "userId": ALICE,
            "serial": pd.serial, "version": pd.version,
            "pinResponseJwe": pd.fido_pin_response,
            "credResponses": [{"authenticatorEnrollmentId": fid, "credResponseJwe": pd.fido_credential_response[0]}],
            "yubicoSigningJwks": serde_json::to_value(&keys.signing_public_keys_jwks).unwrap()["keys"],
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["authenticatorEnrollmentIds"], json!([fid]));
    let (_, list) = okta_call(
        &w,
        Method::GET,
        &format!("/users/{ALICE}/enrollments"),
        None,
    )
    .await;
    assert_eq!(list[0]["status"], "ACTIVE");
    assert_eq!(list[0]["profile"]["serial"], pd.serial.as_str());
}

#[tokio::test]
async fn create_names_the_field_that_breaks_a_fulfiller_limit_and_sends_nothing() {
    let f = nowhere().await;
    let ok = || {
        let mut r = contact();
        r.shipment_items = vec![cards::build_shipment_item(&item_input()).unwrap()];
        r
    };
    type Edit = fn(&mut CreateShipmentRequest);
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            |r| r.company = String::new(),
            "company",
            "Input for Company is required",
        ),
        (
            |r| r.company = "C".repeat(21),
            "company",
            "Input for Company exceeded limit of 20 characters",
        ),
        (
            |r| r.first_name = "F".repeat(16),
            "first_name",
            "Input for First Name exceeded limit of 15 characters",
        ),
        (
            |r| r.last_name = "L".repeat(21),
            "last_name",
            "Input for Last Name exceeded limit of 20 characters",
        ),
        (
            |r| r.email = format!("{}@example.com", "e".repeat(70)),
            "email",
            "Input for Email exceeded limit of 80 characters",
        ),
        (
            |r| r.phone_number = String::new(),
            "phone_number",
            "Input for Phone Number is required",
        ),
        (
            |r| r.phone_number = "5".repeat(41),
            "phone_number",
            "Input for Phone Number exceeded limit of 40 characters",
        ),
        (
            |r| r.phone_number = "call me".into(),
            "phone_number",
            "Input for Phone Number may only contain",
        ),
        (
            |r| r.address = "A".repeat(61),
            "address",
            "Input for Address exceeded limit of 60 characters",
        ),
        (
            |r| r.apt_or_unit_number = "U".repeat(61),
            "apt_or_unit_number",
            "Input for Apt or Unit Number exceeded limit of 60 characters",
        ),
        (
            // Lengths count UTF-8 bytes: 11 "é" are 22.
            |r| r.last_name = "é".repeat(11),
            "last_name",
            "Input for Last Name exceeded limit of 20 characters",
        ),
        (
            |r| r.city = String::new(),
            "city",
            "Input for City is required",
        ),
        (
            |r| r.city = "C".repeat(61),
            "city",
            "Input for City exceeded limit of 60 characters",
        ),
        (
            |r| r.region = String::new(),
            "region",
            "Input for Region is required",
        ),
        (|r| r.region = "California".into(), "region", "2-letter"),
        (
            |r| {
                r.country_code = "DE".into();
                r.region = "R".repeat(51);
            },
            "region",
            "Input for Region exceeded limit of 50 characters",
        ),
        (
            |r| r.postal_code = String::new(),
            "postal_code",
            "Input for Postal Code is required",
        ),
        (
            |r| r.country_code = "USA".into(),
            "country_code",
            "Input for Country Code must be a 2-letter ISO country code",
        ),
        (
            |r| r.delivery_type = Some(3),
            "delivery_type",
            "must be 1 (standard) or 2 (expedited)",
        ),
        (
            |r| r.shipment_items.clear(),
            "shipment_items",
            "exactly one item",
        ),
        (
            |r| r.shipment_items[0].product_quantity = 2,
            "shipment_items[0].product_quantity",
            "must be 1",
        ),
        (
            |r| r.shipment_items[0].customization_id = String::new(),
            "shipment_items[0].customization_id",
            "Input for Customization ID is required",
        ),
        (
            |r| r.shipment_items[0].product_customizations[0].fido_pin_request = "not a jwe".into(),
            "shipment_items[0].product_customizations[0].fido_pin_request",
            "must be a compact JWE",
        ),
        (
            |r| {
                r.shipment_items[0].product_customizations[0]
                    .fido_credential_requests
                    .clear()
            },
            "shipment_items[0].product_customizations[0].fido_credential_requests",
            "is required",
        ),
    ];
    for (edit, field, message) in cases {
        let mut r = ok();
        edit(&mut r);
        let e = cards::create_shipment_request(&f, &r).await.unwrap_err();
        let CardError::Validation {
            field: got,
            message: m,
            ..
        } = &e
        else {
            panic!("{field}: expected a validation error, got {e:?}");
        };
        assert_eq!(got, field, "{m}");
        assert!(m.contains(message), "{field}: {m}");
        assert_eq!(e.status(), 400);
        assert_eq!(e.body()["error_code"], "api_error");
        assert_eq!(e.body()["error_data"]["error_type"], "validation");
        assert_eq!(e.body()["error_data"]["field"], field);
    }
    // With the edits undone, the same client is reached: the checks passed.
    let e = cards::create_shipment_request(&f, &ok()).await.unwrap_err();
    assert!(matches!(e, CardError::Unavailable { .. }), "{e:?}");
    assert!(e.is_transient());
    assert_eq!(e.status(), 502);
    assert_eq!(
        e.body()["error_data"]["error_type"],
        "fulfiller_unavailable"
    );
    // The Indian telephone limit is 255.
    let mut r = ok();
    r.country_code = "IN".into();
    r.region = String::new();
    r.phone_number = "9".repeat(200);
    let e = cards::create_shipment_request(&f, &r).await.unwrap_err();
    assert!(matches!(e, CardError::Unavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn build_shipment_item_names_the_field_it_refuses() {
    type Edit = fn(&mut BuildShipmentItem);
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            |i| i.customization_id = " ".into(),
            "customization_id",
            "Input for Customization ID is required",
        ),
        (
            |i| i.product_id = 0,
            "product_id",
            "Input for Product ID is required",
        ),
        (
            |i| i.inventory_product_id = 0,
            "inventory_product_id",
            "Input for Inventory Product ID is required",
        ),
        (
            |i| i.quantity = 2,
            "quantity",
            "Input for Quantity must be 1",
        ),
        (
            |i| i.pin_request = String::new(),
            "pin_request",
            "Input for PIN Request - Encrypted is required",
        ),
        (
            |i| i.pin_request = format!(" {FAKE_JWE}"),
            "pin_request",
            "must be a compact JWE",
        ),
        (
            |i| i.credential_requests.clear(),
            "credential_requests",
            "Input for Credential Requests - Encrypted is required",
        ),
        (
            |i| i.credential_requests.push("a.b.c".into()),
            "credential_requests[1]",
            "must be a compact JWE",
        ),
    ];
    for (edit, field, message) in cases {
        let mut i = item_input();
        edit(&mut i);
        let e = cards::build_shipment_item(&i).unwrap_err();
        assert_eq!(e.field(), Some(field), "{e}");
        assert!(e.to_string().contains(message), "{field}: {e}");
    }
    // Unknown and missing input fields are named too.
    let e = cards::parse_input::<BuildShipmentItem>(br#"{"customization_id":"C","product_id":1}"#)
        .unwrap_err();
    assert_eq!(e.field(), Some("inventory_product_id"), "{e}");
    let e = cards::parse_input::<CreateShipmentRequest>(br#"{"compnay":"Example"}"#).unwrap_err();
    assert_eq!(e.field(), Some("compnay"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fulfillers_refusal_is_relayed() {
    let w = common::start().await;
    let f = &w.state.fulfiller;
    let mut input = item_input();
    input.customization_id = "NOTOURS".into();
    let mut req = contact();
    req.shipment_items = vec![cards::build_shipment_item(&input).unwrap()];
    let e = cards::create_shipment_request(f, &req).await.unwrap_err();
    let CardError::Refused { status, error, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(*status, 400);
    assert_eq!(error.code, yubienterprise::ErrorCode::UnknownCustomization);
    let body = e.body();
    assert_eq!(body["error_code"], "ye_error");
    assert_eq!(
        body["error_message"],
        "Validation error when creating YED shipment"
    );
    assert_eq!(body["error_data"]["code"], "unknown_customization");
    assert_eq!(body["error_data"]["message"], error.message.as_str());

    // Details: a malformed id is ours to refuse; an unknown one is the fulfiller's 404.
    let e = cards::get_shipment_details(f, "../v1/products")
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("shipment_id"));
    let e = cards::get_shipment_details(f, "1111111111111111111111")
        .await
        .unwrap_err();
    assert_eq!(e.status(), 404, "{e:?}");
    assert_eq!(e.body()["error_data"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cards_answer_over_http_with_a_token() {
    let w = common::start().await;
    let token = w.token().await;

    // No token: 401 like every other route.
    let r = w
        .http
        .get(format!("{}/v1/yubico/keys", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The routes are in the OpenAPI document.
    let doc: Value = w
        .http
        .get(format!("{}/openapi.json", w.connector))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, method) in [
        ("/v1/yubico/shipments", "post"),
        ("/v1/yubico/shipments/{id}", "get"),
        ("/v1/yubico/shipment-items", "post"),
        ("/v1/yubico/keys", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{path}");
    }

    let (s, keys) = w
        .call_as(&token, Method::GET, "/v1/yubico/keys", None, None)
        .await;
    assert_eq!(s, 200, "{keys}");
    let tk = keys["data"]["transport_keys_jwks"]["keys"][0].clone();
    assert_eq!(tk["use"], "enc");
    assert!(keys["data"]["signing_public_keys_jwks"]["keys"][0]["use"] == "sig");

    // Build Shipment Item over HTTP with a real enrollment's JWEs.
    let enrolled = okta_enroll(&w, ALICE, &tk).await;
    let creds: Vec<Value> = enrolled["credRequests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["credRequestJwe"].clone())
        .collect();
    let (s, built) = w
        .call_as(
            &token,
            Method::POST,
            "/v1/yubico/shipment-items",
            Some(json!({
                "customization_id": CID, "product_id": 1, "inventory_product_id": 1, "quantity": 1,
                "pin_request": enrolled["pinRequestJwe"], "credential_requests": creds,
            })),
            None,
        )
        .await;
    assert_eq!(s, 200, "{built}");
    let item = built["data"]["shipment_item"].clone();
    assert_eq!(
        item["product_customizations"][0]["fido_pin_request"],
        enrolled["pinRequestJwe"]
    );
    assert_eq!(
        item["product_customizations"][0]["fido_credential_requests"],
        json!(creds)
    );

    // Build refusing: the field is named in the guide's error shape.
    let (s, v) = w
        .call_as(
            &token,
            Method::POST,
            "/v1/yubico/shipment-items",
            Some(json!({"customization_id": CID, "product_id": 1, "inventory_product_id": 1, "quantity": 2,
                        "pin_request": FAKE_JWE, "credential_requests": [FAKE_JWE]})),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_code"], "api_error");
    assert_eq!(
        v["error_data"],
        json!({"error_type": "validation", "field": "quantity"})
    );

    // Create Shipment Request over HTTP.
    let body = json!({
        "company": "Example Corp", "email": "alice.personal@example.net",
        "first_name": "Alice", "last_name": "Anders", "phone_number": "+1 415 555 0101",
        "address": "100 Market St", "apt_or_unit_number": "", "city": "San Francisco",
        "region": "CA", "postal_code": "94105", "country_code": "US",
        "shipment_items": [item], "delivery_type": 2,
    });
    let mut too_long = body.clone();
    too_long["last_name"] = json!("L".repeat(21));
    let (s, v) = w
        .call_as(
            &token,
            Method::POST,
            "/v1/yubico/shipments",
            Some(too_long),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        v["error_message"],
        "Input for Last Name exceeded limit of 20 characters"
    );
    assert_eq!(v["error_data"]["field"], "last_name");
    let mut typo = body.clone();
    typo["phone_numbr"] = json!("1");
    let (s, v) = w
        .call_as(
            &token,
            Method::POST,
            "/v1/yubico/shipments",
            Some(typo),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_data"]["field"], "phone_numbr");

    let (s, created) = w
        .call_as(
            &token,
            Method::POST,
            "/v1/yubico/shipments",
            Some(body.clone()),
            None,
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["data"]["shipment_id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["shipment_state_id"], 2);

    // Get Shipment Details over HTTP, once shipped.
    for _ in 0..10 {
        w.advance().await;
    }
    let (s, d) = w
        .call_as(
            &token,
            Method::GET,
            &format!("/v1/yubico/shipments/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["data"]["shipment_id"], id.as_str());
    let n = d["data"]["shipment_state_id"].as_u64().unwrap();
    assert!(n == 103 || n == 104, "{d}");
    let pd = &d["data"]["shipment_items"][0]["product_data"][0];
    for k in ["serial", "version", "fido_pin_response"] {
        assert!(pd[k].as_str().is_some_and(|s| !s.is_empty()), "{k}: {d}");
    }
    assert_eq!(
        pd["fido_credential_response"].as_array().unwrap().len(),
        creds.len()
    );

    // The fulfiller's refusal, relayed over HTTP.
    let mut refused = body;
    refused["shipment_items"][0]["customization_id"] = json!("NOTOURS");
    let (s, v) = w
        .call_as(
            &token,
            Method::POST,
            "/v1/yubico/shipments",
            Some(refused),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_code"], "ye_error");
    assert_eq!(v["error_data"]["code"], "unknown_customization");
    let (s, v) = w
        .call_as(
            &token,
            Method::GET,
            "/v1/yubico/shipments/1111111111111111111111",
            None,
            None,
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error_code"], "ye_error");
}

async fn faults(w: &common::World, config: Value) {
    let r = w
        .http
        .put(format!("{}/sandbox/v1/faults", w.fulfiller))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .json(&config)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_or_failing_fulfiller_is_relayed_with_the_documented_status() {
    let w = common::start().await;
    let token = w.token().await;
    let id = "1111111111111111111111";

    // 429: passed through with its Retry-After.
    faults(&w, json!({"rate_limit_rate": 1.0, "retry_after_secs": 7})).await;
    let e = cards::get_shipment_details(&w.state.fulfiller, id)
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    let r = w
        .http
        .get(format!("{}/v1/yubico/shipments/{id}", w.connector))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_code"], "ye_error");
    assert_eq!(v["error_data"]["code"], "rate_limited");

    // 500: not the caller's fault, so 502, with the fulfiller's body relayed.
    faults(&w, json!({"error_rate": 1.0})).await;
    let (s, v) = w
        .call_as(
            &token,
            Method::GET,
            &format!("/v1/yubico/shipments/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(v["error_code"], "ye_error");
    assert_eq!(v["error_data"]["code"], "internal_error");
    // The JWKS endpoints failing: 502 fulfiller_unavailable, naming the URL.
    let (s, v) = w
        .call_as(&token, Method::GET, "/v1/yubico/keys", None, None)
        .await;
    assert_eq!(s, 502, "{v}");
    assert_eq!(
        v["error_data"]["error_type"], "fulfiller_unavailable",
        "{v}"
    );
    assert!(
        v["error_message"]
            .as_str()
            .unwrap()
            .contains("/.well-known/"),
        "{v}"
    );

    // Faults off: the same calls answer.
    faults(&w, json!({})).await;
    let (s, v) = w
        .call_as(&token, Method::GET, "/v1/yubico/keys", None, None)
        .await;
    assert_eq!(s, 200, "{v}");
}
