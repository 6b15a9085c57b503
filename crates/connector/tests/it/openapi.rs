//! The OpenAPI document (`GET /openapi.json`) against the live connector: it lists
//! exactly the routes the connector serves (both modes, the cards, monitoring), each
//! with the methods it answers; and schemathesis (pinned in `interop/requirements.txt`)
//! finds no server error and no answer outside its schema over the generated cases.

use crate::okta_common::{self, OktaWorld};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeSet;

/// Every route the connector serves outside the console (docs/connector.md,
/// docs/okta-mode.md, docs/yubico-cards.md list them for admins).
const SERVED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/v1/status"),
    ("post", "/v1/fprRequest"),
    ("post", "/v1/fpr/shipments"),
    ("post", "/v1/batch"),
    ("post", "/v1/entra/reconcile"),
    ("post", "/v2/credential-requests"),
    ("get", "/v2/credential-requests/{id}"),
    ("delete", "/v2/credential-requests/{id}"),
    ("get", "/v1/fpr/shipments"),
    ("post", "/v1/fpr/shipments/process"),
    ("get", "/v1/fpr/shipments/{id}"),
    ("delete", "/v1/fpr/shipments/{id}"),
    ("post", "/v1/fpr/shipments/{id}/retry"),
    ("post", "/v1/fpr/shipments/{id}/resend-pin"),
    ("post", "/v1/fpr/shipments/{id}/pin-acknowledged"),
    ("get", "/v1/okta/events"),
    ("post", "/v1/okta/events"),
    ("post", "/v1/okta/batch"),
    ("post", "/v1/okta/reconcile"),
    ("get", "/v1/okta/requests"),
    ("get", "/v1/okta/requests/{id}"),
    ("post", "/v1/okta/requests/{id}/approve"),
    ("post", "/v1/yubico/shipments"),
    ("get", "/v1/yubico/shipments/{id}"),
    ("post", "/v1/yubico/shipment-items"),
    ("get", "/v1/yubico/keys"),
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(w: &OktaWorld) -> Value {
    let r = w
        .http
        .get(format!("{}/openapi.json", w.connector))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut set = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                set.insert((method.clone(), path.clone()));
            }
        }
    }
    set
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_is_openapi_3_1_for_both_modes_with_the_guides_errors() {
    let w = okta_common::start().await;
    let doc = document(&w).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let title = doc["info"]["title"].as_str().unwrap();
    assert!(title.contains("Entra") && title.contains("Okta"), "{title}");
    let s = &doc["components"]["schemas"];
    // The newer form's PIN is 4-63; the guide's 4-8.
    assert_eq!(s["PinBody"]["properties"]["length"]["maximum"], 63);
    assert_eq!(s["PinBody"]["properties"]["value"]["maxLength"], 63);
    assert_eq!(s["GuidePinBody"]["properties"]["length"]["maximum"], 8);
    // Closed bodies stay closed.
    assert_eq!(s["CreateBody"]["additionalProperties"], false);
    // The guide's error body.
    let codes: Vec<&str> = s["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(codes, ["api_error", "ye_error", "idp_error"]);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Each bearer operation documents 401 and 403; the open ones none.
    let fpr = &doc["paths"]["/v1/fprRequest"]["post"];
    assert_eq!(fpr["security"][0]["bearer"], serde_json::json!([]));
    for status in ["201", "400", "401", "403", "500", "502", "503"] {
        assert!(fpr["responses"][status].is_object(), "{status}: {fpr}");
    }
    assert!(
        fpr["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("/GuideCreateBody")
    );
    // One operation id per operation (client generators name methods after them).
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        }
    }
    assert_eq!(ids.len(), SERVED.len());
    let health = &doc["paths"]["/healthz"]["get"];
    assert!(health.get("security").is_none(), "{health}");
    assert!(health["responses"]["401"].is_null());
    assert_eq!(
        doc["paths"]["/v1/okta/events"]["post"]["security"][0]["okta_event_hook"],
        serde_json::json!([])
    );
}

/// The document and the router come from one `OpenApiRouter`; this checks the result
/// from outside: the documented routes are exactly the served ones, each documented
/// method is answered by a handler (never axum's bare 404 or 405), and every other
/// method on a documented path is 405.
#[tokio::test(flavor = "multi_thread")]
async fn the_document_lists_exactly_the_routes_the_connector_answers() {
    let w = okta_common::start().await;
    let doc = document(&w).await;
    let served: BTreeSet<(String, String)> = SERVED
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let documented = documented(&doc);
    assert_eq!(
        documented.difference(&served).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but not in the served list"
    );
    assert_eq!(
        served.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "served but not documented"
    );

    let token = w.token().await;
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let url = format!("{}{}", w.connector, path.replace("{id}", "no-such-request"));
        for method in METHODS {
            let is_documented = documented.contains(&(method.to_owned(), path.clone()));
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let mut req = w.http.request(m, &url).bearer_auth(&token);
            if method != "get" && method != "delete" {
                req = req.json(&serde_json::json!({}));
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            if is_documented {
                assert_ne!(status, 405, "{method} {path} is documented: {body}");
                // A 404 must come from a handler (the guide's error body), not from
                // an unrouted path.
                if status == 404 {
                    let v: Value = serde_json::from_str(&body)
                        .unwrap_or_else(|_| panic!("{method} {path}: bare 404 {body:?}"));
                    assert_eq!(v["error_code"], "api_error", "{method} {path}: {body}");
                }
            } else {
                assert_eq!(status, 405, "{method} {path} is not documented: {body}");
            }
        }
    }
}

/// schemathesis (`interop/requirements.txt`) against a live connector in both modes
/// with a valid token and the event hook's secret: the examples, coverage and fuzzing
/// phases, bounded by `--max-examples`, with the response checks (no 5xx, documented
/// statuses, content types and schemas). The `{id}` routes get real requests (one per
/// mode and a credential request of two keys, made first) so their answers are checked
/// too, not only their 404s.
/// docs/connector.md records a run's case count.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_schema() {
    let w = okta_common::start().await;
    let token = w.token().await;
    let (s, entra) = w
        .call(
            Method::POST,
            "/v1/fpr/shipments",
            Some(crate::common::guide_request(crate::common::ALEX)),
        )
        .await;
    assert_eq!(s, 201, "{entra}");
    let (s, okta) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(serde_json::json!({"users": [okta_common::ALICE]})),
        )
        .await;
    assert_eq!(s, 202, "{okta}");
    assert_eq!(okta["data"][0]["status"], "created", "{okta}");
    let (s, v2) = w
        .call(
            Method::POST,
            "/v2/credential-requests",
            Some(serde_json::json!({
                "person": {"entra_user": crate::common::ALEX, "okta_user": okta_common::BOB},
                "product": {"product_id": 1, "inventory_product_id": 1,
                            "customization_id": sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION},
                "keys": [{"label": "primary", "credentials": [{"idp": "entra"}, {"idp": "okta"}]},
                         {"label": "backup", "credentials": [{"idp": "entra"}]}]
            })),
        )
        .await;
    assert_eq!(s, 202, "{v2}");
    // All as far as they go now (the Okta ones enrolled, the Entra ones open).
    w.process().await;
    let config = format!(
        r#"
[auth.openapi.bearer]
bearer = "${{PREREG_TOKEN}}"

[auth.openapi.okta_event_hook]
api_key = "{hook}"

[[operations]]
include-path-regex = '^/v1/fpr/shipments/\{{id\}}'
parameters = {{ id = "{entra_id}" }}

[[operations]]
include-path-regex = '^/v1/okta/requests/\{{id\}}'
parameters = {{ id = "{okta_id}" }}

[[operations]]
include-path = "/v1/yubico/shipments/{{id}}"
parameters = {{ id = "{shipment_id}" }}

[[operations]]
include-path-regex = '^/v2/credential-requests/\{{id\}}'
parameters = {{ id = "{credential_request}" }}
"#,
        hook = okta_common::HOOK_SECRET,
        entra_id = entra["data"]["request_id"].as_str().unwrap(),
        okta_id = okta["data"][0]["request_id"].as_str().unwrap(),
        shipment_id = entra["data"]["shipment_id"].as_str().unwrap(),
        credential_request = v2["data"]["id"].as_str().unwrap(),
    );
    let config_file = w.dir.join("schemathesis.toml");
    std::fs::write(&config_file, config).unwrap();
    let python = testkit::python();
    let st = python.parent().expect("the venv's bin folder").join("st");
    assert!(
        st.exists(),
        "no schemathesis at {}: run scripts/test once (it installs interop/requirements.txt), or `{} -m pip install -r interop/requirements.txt`",
        st.display(),
        python.display()
    );
    let report = w.dir.join("schemathesis.json");
    let args = vec![
        "--config-file".to_owned(),
        config_file.display().to_string(),
        "run".to_owned(),
        format!("{}/openapi.json", w.connector),
        "--checks".to_owned(),
        CHECKS.to_owned(),
        "--phases".to_owned(),
        "examples,coverage,fuzzing".to_owned(),
        "--max-examples".to_owned(),
        max_examples().to_string(),
        "--seed".to_owned(),
        "17".to_owned(),
        // One worker: with two, hypothesis's lambda descriptions call `ast.parse` from two
        // threads at once, which CPython 3.11 can fail ("AST constructor recursion depth
        // mismatch", a runtime error of the run, not of the connector; seen 2026-12-04).
        "--workers".to_owned(),
        "1".to_owned(),
        "--request-timeout".to_owned(),
        "30".to_owned(),
        "--report".to_owned(),
        "json".to_owned(),
        "--report-json-path".to_owned(),
        report.display().to_string(),
    ];
    let dir = w.dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&st)
            .args(&args)
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .env("PREREG_TOKEN", &token)
            .env("COLUMNS", "120")
            .output()
            .unwrap_or_else(|e| panic!("starting {}: {e}", st.display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The summary, for the record (docs/connector.md).
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found failures ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The run's own report: every operation tested, cases run, none failed.
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let ops = &report["operations"];
    assert!(ops["total"].as_u64().unwrap() >= 24, "{ops}");
    assert_eq!(ops["tested"], ops["total"], "{ops}");
    assert_eq!(ops["errored"], 0, "{ops}");
    let cases = &report["test_cases"];
    assert!(cases["generated"].as_u64().unwrap() > 500, "{cases}");
    assert_eq!(cases["with_failures"], 0, "{cases}");
    assert_eq!(cases["errored"], 0, "{cases}");
    assert_eq!(report["failures"], serde_json::json!([]));
    assert_eq!(report["errors"], serde_json::json!([]));
    println!(
        "schemathesis: {} operations, {} test cases, 0 failures",
        ops["tested"], cases["generated"]
    );
}

/// Every check schemathesis has but `positive_data_acceptance` (a schema-valid body
/// may still be refused: an unknown user, the fulfiller's rules across fields) and the
/// stateful ones (no links in the document): no 5xx; statuses, content types, headers
/// and bodies as documented; bearer operations refuse requests without the token;
/// undocumented methods are 405; a missing required header or a body outside the
/// schema is refused.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,negative_data_rejection,\
missing_required_header,unsupported_method,ignored_auth";

/// Test cases per operation and phase: 25 keeps the run near half a minute;
/// `PREREG_SCHEMATHESIS_MAX_EXAMPLES` asks for a deeper run.
fn max_examples() -> u32 {
    std::env::var("PREREG_SCHEMATHESIS_MAX_EXAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
}
