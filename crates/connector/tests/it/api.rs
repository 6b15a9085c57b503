//! Every error shape of the guide, 401s, and nothing written for a rejected request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::{ALEX, guide_request, start};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn bad_input_gets_the_guides_error_shapes_and_writes_nothing() {
    let w = start().await;
    let post = |b: Value| {
        let w = &w;
        async move { w.call(Method::POST, "/v1/fprRequest", Some(b)).await }
    };

    // api_error: our validation, naming the field.
    let mut b = guide_request(ALEX);
    b["pin_request"] = json!({"type": "generate", "length": 9});
    let (s, v) = post(b).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"error_code":"api_error","error_message":"PIN `length` must be between 4 and 8","error_data":{"error_type":"validation"}})
    );
    let mut b = guide_request(ALEX);
    b["pin_request"] = json!({"type": "static", "value": "12-4"});
    let (s, v) = post(b).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("api_error")),
        "{v}"
    );
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["recipient"]["favourite_colour"] = json!("blue");
    let (s, v) = post(b).await;
    assert_eq!((s, v["error_code"].as_str()), (400, Some("api_error")));
    assert!(
        v["error_message"]
            .as_str()
            .unwrap()
            .contains("favourite_colour"),
        "{v}"
    );
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["shipment_items"][0]["product_id"] = json!("one");
    let (s, v) = post(b).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("api_error")),
        "{v}"
    );
    let (s, v) = post(json!("not an object")).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("api_error")),
        "{v}"
    );
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["mailing_address"]["street_line2"] = json!("x".repeat(100_000));
    let (s, v) = post(b).await;
    assert_eq!(
        (
            s,
            v["error_code"].as_str(),
            v["error_data"]["error_type"].as_str()
        ),
        (413, Some("api_error"), Some("payload_too_large")),
        "oversized: {v}"
    );

    // ye_error: the fulfiller's rules, in the fulfiller's words.
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["recipient"]["recipient_lastname"] =
        json!("Wilber-Wilberforce-Smythe");
    let (s, v) = post(b).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"error_code":"ye_error","error_message":"Validation error when creating YED shipment","error_data":{"code":"validation_error","message":"Input for Last Name exceeded limit of 20 characters"}})
    );
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["mailing_address"]["country_code_2"] = json!("USA");
    let (s, v) = post(b).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("ye_error")),
        "{v}"
    );
    // ... and the fulfiller's own refusal (an unknown customization) passes through.
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["shipment_items"][0]["customization_id"] = json!("NOPE42");
    let (s, v) = post(b).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("ye_error")),
        "{v}"
    );
    assert_eq!(v["error_data"]["code"], "unknown_customization", "{v}");
    // Yubico's newer members reach the fulfiller: a reseller it does not know is its
    // refusal, passed through; a malformed one is refused before anything is written.
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["reseller_organization_id"] = json!("Zx1ap3BG24ytkAwmQG8NWn");
    b["yubico_shipment_request"]["address_validation_bypass"] = json!(true);
    let (s, v) = post(b).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("ye_error")),
        "{v}"
    );
    let m = v["error_data"]["message"].as_str().unwrap();
    assert!(m.contains("not a reseller of this organization"), "{v}");
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["reseller_organization_id"] = json!("not-an-org");
    let (s, v) = post(b).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("ye_error")),
        "{v}"
    );
    assert!(v.to_string().contains("reseller_organization_id"), "{v}");

    // idp_error: an unknown user.
    let ghost = "7dc95e2f-5300-4000-8000-000000000000";
    let (s, v) = post(guide_request(ghost)).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!({"error_code":"idp_error","error_message":format!("Could not find user: {ghost}")})
    );

    // Nothing was written, here or at the fulfiller.
    let (_, list) = w.call(Method::GET, "/v1/fpr/shipments", None).await;
    assert_eq!(list["total_count"], 0, "{list}");
    assert_eq!(w.fulfiller_total().await, 0);
}

#[tokio::test]
async fn a_missing_or_bad_token_is_401() {
    let w = start().await;
    for token in ["", "garbage", "eyJhbGciOiJub25lIn0.e30."] {
        let (s, v) = w
            .call_as(
                token,
                Method::POST,
                "/v1/fprRequest",
                Some(guide_request(ALEX)),
                None,
            )
            .await;
        assert_eq!(s, 401, "{token}: {v}");
        assert_eq!(v["error_code"], "api_error");
    }
    let r = w
        .http
        .get(format!("{}/v1/status", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // A token with a tampered payload does not verify.
    let good = w.token().await;
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = format!("{}A", &parts[1][..parts[1].len() - 1]);
    let (s, _) = w
        .call_as(&parts.join("."), Method::GET, "/v1/status", None, None)
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn status_shows_the_configuration_and_no_secret() {
    let w = start().await;
    let (s, v) = w.call(Method::GET, "/v1/status", None).await;
    assert_eq!(s, 200, "{v}");
    for key in [
        "AZURE_TENANT_ID",
        "CRON_PROCESS_SHIPMENT_SCHEDULE",
        "ENTRA_FIDO_API_CLIENT_ID",
        "ENTRA_FIDO_API_VERSION",
        "YE_API_BASE_URL",
        "YE_JWKS_SIGN_ENDPOINT",
        "YE_JWKS_TRANSPORT_ENDPOINT",
        "CRON_DATA_CLEANUP_SCHEDULE",
        "CRON_DATA_CLEANUP_COMPLETED_DAYS",
        "RETENTION_DAYS",
        "ENTRA_FIDO_API_CHALLENGE_TIMEOUT_MINUTES",
        "FIDO_CONNECTOR_VERSION",
        "LOGGING_LEVEL_COM_YUBICO",
    ] {
        assert!(v[key].is_string(), "{key} in {v}");
    }
    // Every value a string, as Yubico's connector answers.
    let all = v.as_object().unwrap();
    assert!(all.values().all(Value::is_string), "{v}");
    assert_eq!(v["ENTRA_FIDO_API_VERSION"], "beta");
    assert_eq!(v["CRON_DATA_CLEANUP_COMPLETED_DAYS"], "0");
    assert_eq!(
        v["RETENTION_DAYS"], "0",
        "personal data kept unless configured"
    );
    assert_eq!(v["FIDO_CONNECTOR_VERSION"], env!("CARGO_PKG_VERSION"));
    let text = v.to_string();
    let secret = w.ready["entra"]["connector_app"]["client_secret"]
        .as_str()
        .unwrap();
    assert!(!text.contains(secret));
    assert!(!text.contains(sandbox::fulfiller::seed::DEFAULT_TOKEN));
    let r = w
        .http
        .get(format!("{}/healthz", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = w
        .http
        .get(format!("{}/readyz", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r: Value = w
        .http
        .get(format!("{}/openapi.json", w.connector))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["paths"]["/v1/fprRequest"].is_object());
}

#[tokio::test]
async fn the_same_idempotency_key_creates_one_shipment() {
    let w = start().await;
    let token = w.token().await;
    let (s1, v1) = w
        .call_as(
            &token,
            Method::POST,
            "/v1/fprRequest",
            Some(guide_request(ALEX)),
            Some("order-1"),
        )
        .await;
    let (s2, v2) = w
        .call_as(
            &token,
            Method::POST,
            "/v1/fprRequest",
            Some(guide_request(ALEX)),
            Some("order-1"),
        )
        .await;
    assert_eq!((s1, s2), (201, 201), "{v1} {v2}");
    assert_eq!(v1["data"]["shipment_id"], v2["data"]["shipment_id"]);
    assert_eq!(w.fulfiller_total().await, 1);
}

#[tokio::test]
async fn the_newer_form_fills_recipient_and_address_from_entra_and_names_what_is_missing() {
    let w = start().await;
    let body = json!({
        "user_id": "AlexW@contoso.onmicrosoft.com",
        "pin_request": {"type": "generate", "length": 12},
        "enrollment_contacts": {"emails_to": ["it-desk@contoso.example"]},
        "yubico_shipment_request": {
            "delivery_type": 1,
            "shipment_items": [{"product_id": 1, "inventory_product_id": 1, "product_quantity": 1,
                "customization_id": sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION}]
        }
    });
    let (s, v) = w
        .call(Method::POST, "/v1/fpr/shipments", Some(body.clone()))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap();
    let at_fulfiller = w.state.fulfiller.get_fpr_shipment(sid).await.unwrap();
    assert!(!at_fulfiller.mailing_address.street_line1.is_empty());
    assert_eq!(at_fulfiller.mailing_address.country_code_2, "US");
    assert_eq!(at_fulfiller.recipient.recipient_company, "Contoso");
    use connector::store::Store;
    let row = w
        .state
        .store
        .get_request(v["data"]["request_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.pin_contacts, "[\"it-desk@contoso.example\"]");

    // Enrico has no address, phone or company in Entra: one error names each.
    let mut b = body.clone();
    b["user_id"] = json!("EnricoC@contoso.onmicrosoft.com");
    let (s, v) = w.call(Method::POST, "/v1/fpr/shipments", Some(b)).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("api_error")),
        "{v}"
    );
    let m = v["error_message"].as_str().unwrap();
    for field in [
        "companyName",
        "mobilePhone",
        "streetAddress",
        "city",
        "postalCode",
        "country",
    ] {
        assert!(m.contains(field), "{field} in {m}");
    }

    // Raul has no manager: without a PIN contact the request is refused.
    let mut b = guide_request("b21eea82-781f-5190-867f-c1f0357034f7");
    b["yubico_shipment_request"]["recipient"]["recipient_email"] = json!("");
    let (s, v) = w.call(Method::POST, "/v1/fprRequest", Some(b)).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("api_error")),
        "{v}"
    );
    assert!(
        v["error_message"].as_str().unwrap().contains("no manager"),
        "{v}"
    );

    // The guide's form still requires the recipient and address.
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]
        .as_object_mut()
        .unwrap()
        .remove("mailing_address");
    let (s, v) = w.call(Method::POST, "/v1/fprRequest", Some(b)).await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("api_error")),
        "{v}"
    );
    assert_eq!(w.fulfiller_total().await, 1);
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// An API app registered as the guide says (Application ID URI, no manifest change)
/// gets v1.0 tokens from Entra: `iss` `https://sts.windows.net/{tid}/`, `aud` the App ID
/// URI, `appid`. The connector accepts them as it accepts v2.0 ones.
#[tokio::test]
async fn v1_and_v2_caller_tokens_of_the_tenant_are_accepted() {
    let w = start().await;
    let v2 = w.token().await;
    assert_eq!(claims_of(&v2)["ver"], "2.0");
    let (s, v) = w.call_as(&v2, Method::GET, "/v1/status", None, None).await;
    assert_eq!(s, 200, "v2.0: {v}");
    let e = &w.ready["entra"];
    let api = e["connector_app"]["client_id"].as_str().unwrap();
    let r = w
        .http
        .patch(format!(
            "{}/sandbox/v1/apps/{api}",
            e["authority_host"].as_str().unwrap()
        ))
        .json(&json!({"accessTokenAcceptedVersion": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v1 = w.token().await;
    let c = claims_of(&v1);
    assert_eq!(c["ver"], "1.0", "{c}");
    let tid = e["tenant_id"].as_str().unwrap();
    assert_eq!(c["iss"], format!("https://sts.windows.net/{tid}/"), "{c}");
    let (s, v) = w.call_as(&v1, Method::GET, "/v1/status", None, None).await;
    assert_eq!(s, 200, "v1.0: {v}");
}

/// A caller whose token is valid but carries neither the app role nor the scope
/// `create_request` (the app was never granted it) is refused with 403, naming the role.
#[tokio::test]
async fn a_token_without_the_create_request_role_is_403() {
    let mut seed = sandbox::entra::TenantSeed::default();
    for app in &mut seed.apps {
        for p in &mut app.api_permissions {
            p.roles.clear();
        }
    }
    let w = crate::okta_common::start_with(crate::okta_common::Options {
        entra_seed: Some(seed),
        ..Default::default()
    })
    .await;
    let (s, v) = w.call(Method::GET, "/v1/status", None).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error_data"]["error_type"], "forbidden", "{v}");
    assert!(
        v["error_message"]
            .as_str()
            .unwrap()
            .contains("create_request"),
        "{v}"
    );
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 403, "{v}");
}

/// The connector authenticates to Entra with a certificate registered on its app
/// (`entra_fido_api_client_certificate_file` and `..._key_file`) instead of the secret:
/// before the certificate is registered, the token service refuses it and nothing is
/// ordered; once registered, the order goes through.
#[tokio::test]
async fn the_connector_can_authenticate_to_entra_with_a_certificate() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["prereg-connector".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("prereg-cert-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("app.crt"), dir.join("app.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let extra = format!(
        "entra_fido_api_client_certificate_file = {:?}\nentra_fido_api_client_key_file = {:?}\n",
        cert_file.display().to_string(),
        key_file.display().to_string()
    );
    let w = common::start_full(sandbox::Config::for_tests(), None, &extra, true).await;
    let (s, v) = w
        .call(Method::POST, "/v1/fpr/shipments", Some(guide_request(ALEX)))
        .await;
    assert_eq!(
        v["error_code"], "idp_error",
        "unregistered certificate: {s} {v}"
    );
    assert_eq!(w.fulfiller_total().await, 0, "nothing ordered");
    let e = &w.ready["entra"];
    let r = w
        .http
        .post(format!(
            "{}/sandbox/v1/apps/{}/certificates",
            e["authority_host"].as_str().unwrap(),
            e["connector_app"]["client_id"].as_str().unwrap()
        ))
        .body(cert.pem())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let (s, v) = w
        .call(Method::POST, "/v1/fpr/shipments", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(w.fulfiller_total().await, 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// `/metrics` serves the figures in the Prometheus text format after a request went
/// through (requests by state, the vendors' calls, PIN deliveries, the runner alive);
/// `/readyz` asks only the database: the fulfiller refusing every connection does not
/// make the replica unready.
#[tokio::test]
async fn metrics_show_the_work_and_readiness_does_not_hang_on_a_vendor() {
    let w = start().await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    w.advance().await;
    w.advance().await;
    w.process().await;
    let r = w
        .http
        .get(format!("{}/metrics", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    let value = |line: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line)
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no {line} in:\n{text}"))
    };
    assert_eq!(
        value("prereg_requests{idp=\"entra\",state=\"complete\"}"),
        1.0
    );
    assert_eq!(value("prereg_pin_deliveries "), 1.0);
    assert_eq!(value("prereg_job_runs_total{outcome=\"completed\"}"), 1.0);
    assert!(value("prereg_vendor_calls_total{vendor=\"fulfiller\"}") >= 2.0);
    assert!(value("prereg_vendor_calls_total{vendor=\"graph\"}") >= 3.0);
    assert_eq!(value("prereg_vendor_in_flight{vendor=\"graph\"}"), 0.0);
    let idle = value("prereg_runner_idle_seconds ");
    assert!((0.0..=30.0).contains(&idle), "the runner lives: {idle}");
    assert!(!text.contains("alex"), "no personal data: {text}");

    let mut f = w.fulfiller_faults.get();
    f.drop_rate = 1.0;
    w.fulfiller_faults.set(f);
    for path in ["/readyz", "/healthz"] {
        let r = w
            .http
            .get(format!("{}{path}", w.connector))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
}

/// Every metric the Grafana dashboard in `deploy/` queries is one `/metrics` serves (the
/// dashboard cannot drift from the names).
#[tokio::test]
async fn the_grafana_dashboard_queries_only_served_metrics() {
    let w = start().await;
    let text = w
        .http
        .get(format!("{}/metrics", w.connector))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dashboard: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana-dashboard.json"
    )))
    .unwrap();
    let mut names = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("prereg_") {
                    names.push(word.to_owned());
                }
            }
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    for n in names {
        // A family may have no series yet (no request at all): its TYPE line counts.
        let family = n
            .strip_suffix("_sum")
            .or_else(|| n.strip_suffix("_count"))
            .unwrap_or(&n);
        let served = text.lines().any(|l| {
            l.starts_with(&format!("{n} "))
                || l.starts_with(&format!("{n}{{"))
                || l.starts_with(&format!("# TYPE {family} "))
        });
        assert!(served, "{n} is not served:\n{text}");
    }
}
