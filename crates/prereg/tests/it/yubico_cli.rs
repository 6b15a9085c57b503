//! `prereg yubico create-shipment|shipment|build-item|keys` through the binary, against
//! the sandboxes started in this process on 127.0.0.1 port 0: an Okta enrollment's JWEs
//! go through `build-item` and `create-shipment`, the fulfiller sandbox programs the
//! key, `shipment` shows its responses and Okta activates with them. Failures print one
//! line naming the field and exit 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::path::PathBuf;

const ALICE: &str = "00usandboxalice0001";
const CID: &str = sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION;
const ENV: [&str; 4] = [
    "YE_API_BASE_URL",
    "YED_API_TOKEN",
    "YE_JWKS_TRANSPORT_ENDPOINT",
    "YE_JWKS_SIGN_ENDPOINT",
];

struct Sb {
    ready: Value,
    okta_url: String,
    fulfiller_url: String,
    dir: PathBuf,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Sb {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start() -> Sb {
    let app = sandbox::App::build(sandbox::Config::for_tests())
        .await
        .unwrap();
    let ready = app.ready_info();
    let okta_url = app.okta_url();
    let fulfiller_url = app.fulfiller_url();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    let dir = std::env::temp_dir().join(format!(
        "prereg-yubico-cli-{}-{}",
        std::process::id(),
        ready["fulfiller"]["base_url"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Sb {
        ready,
        okta_url,
        fulfiller_url,
        dir,
        http: reqwest::Client::new(),
        stop: Some(tx),
    }
}

struct Out {
    code: i32,
    stdout: Value,
    stderr: String,
}

impl Sb {
    /// The guide's environment variables pointing at the fulfiller sandbox.
    fn env(&self) -> Vec<(&'static str, String)> {
        let f = &self.ready["fulfiller"];
        vec![
            (
                "YE_API_BASE_URL",
                f["api_base_url"].as_str().unwrap().into(),
            ),
            ("YED_API_TOKEN", f["tokens"][0].as_str().unwrap().into()),
            (
                "YE_JWKS_TRANSPORT_ENDPOINT",
                f["transport_jwks_url"].as_str().unwrap().into(),
            ),
            (
                "YE_JWKS_SIGN_ENDPOINT",
                f["signing_jwks_url"].as_str().unwrap().into(),
            ),
        ]
    }

    /// Runs `prereg yubico ARGS` with `env` (and none of the guide's variables besides).
    async fn run(&self, args: &[&str], env: Vec<(&'static str, String)>) -> Out {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_prereg"));
            c.arg("yubico").args(&args);
            for k in ENV {
                c.env_remove(k);
            }
            c.envs(env);
            c.output().unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: serde_json::from_str(&stdout).unwrap_or(Value::String(stdout)),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn file(&self, name: &str, v: &Value) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    }

    async fn okta(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let ssws = self.ready["okta"]["ssws_token"].as_str().unwrap();
        let url = format!("{}/webauthn-registration/api/v1{path}", self.okta_url);
        let r = match body {
            Some(b) => self.http.post(url).json(&b),
            None => self.http.get(url),
        };
        let r = r
            .header("Authorization", format!("SSWS {ssws}"))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (
            s,
            serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }

    async fn advance(&self) {
        let r = self
            .http
            .post(format!("{}/sandbox/v1/advance", self.fulfiller_url))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// A `prereg serve` configuration pointing at this sandbox.
    fn connector_config(&self) -> String {
        let key = connector::secrets::MasterKey::generate()
            .unwrap()
            .to_base64();
        let db = format!("sqlite://{}", self.dir.join("c.db").display());
        let toml = connector::sandbox_config::from_ready(
            &self.ready,
            &connector::sandbox_config::Local {
                database_url: &db,
                master_key_b64: &key,
                listen_addr: "127.0.0.1:0",
                send_pin_url: None,
            },
        );
        let p = self.dir.join("connector.toml");
        std::fs::write(&p, toml).unwrap();
        p.display().to_string()
    }
}

fn contact() -> Value {
    json!({
        "company": "Example Corp", "email": "alice.personal@example.net",
        "first_name": "Alice", "last_name": "Anders", "phone_number": "+1 415 555 0101",
        "address": "100 Market St", "apt_or_unit_number": "Suite 5", "city": "San Francisco",
        "region": "CA", "postal_code": "94105", "country_code": "US", "delivery_type": 1,
    })
}

const FAKE_JWE: &str = "eyJhbGciOiJFQ0RILUVTK0EyNTZLVyJ9.a2V5.aXY.Y2lwaGVy.dGFn";

#[tokio::test(flavor = "multi_thread")]
async fn the_four_commands_ship_an_okta_enrollment_that_okta_then_activates() {
    let sb = start().await;

    // keys: both JWKS, from the guide's environment variables.
    let keys = sb.run(&["keys"], sb.env()).await;
    assert_eq!(keys.code, 0, "{}", keys.stderr);
    let tk = keys.stdout["transport_keys_jwks"]["keys"][0].clone();
    assert_eq!(tk["use"], "enc");
    let signing = keys.stdout["signing_public_keys_jwks"]["keys"].clone();
    assert_eq!(signing[0]["use"], "sig");

    // Okta enrolls, sealing to the transport key.
    let (s, enrolled) = sb
        .okta(
            "/enroll",
            Some(json!({"enrollmentRpIds": [sb.ready["okta"]["domain"]], "fulfillmentProvider": "yubico",
                        "userId": ALICE, "yubicoTransportKeyJWK": tk})),
        )
        .await;
    assert_eq!(s, 200, "{enrolled}");
    let pin_jwe = enrolled["pinRequestJwe"].as_str().unwrap();
    let cred_jwe = enrolled["credRequests"][0]["credRequestJwe"]
        .as_str()
        .unwrap();

    // build-item: flags, the PIN request from a file (with a trailing newline).
    let pin_file = sb.dir.join("pin.jwe");
    std::fs::write(&pin_file, format!("{pin_jwe}\n")).unwrap();
    let pin_arg = format!("@{}", pin_file.display());
    let built = sb
        .run(
            &[
                "build-item",
                "--customization-id",
                CID,
                "--product-id",
                "1",
                "--inventory-product-id",
                "1",
                "--quantity",
                "1",
                "--pin-request",
                &pin_arg,
                "--credential-request",
                cred_jwe,
            ],
            vec![],
        )
        .await;
    assert_eq!(built.code, 0, "{}", built.stderr);
    let item = &built.stdout["shipment_item"];
    assert_eq!(
        item["product_customizations"][0]["fido_pin_request"],
        pin_jwe
    );
    assert_eq!(
        item["product_customizations"][0]["fido_credential_requests"],
        json!([cred_jwe])
    );
    assert_eq!(item["product_quantity"], 1);

    // create-shipment: the contact from a file, the item from build-item's output.
    let input = sb.file("contact.json", &contact());
    let item_file = sb.file("item.json", &built.stdout);
    let created = sb
        .run(
            &["create-shipment", "--input", &input, "--item", &item_file],
            sb.env(),
        )
        .await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let id = created.stdout["shipment_id"].as_str().unwrap().to_owned();
    assert_eq!(created.stdout["shipment_state_id"], 2);

    // shipment: no product_data yet, then the programmed key's responses.
    let early = sb.run(&["shipment", &id], sb.env()).await;
    assert_eq!(early.code, 0, "{}", early.stderr);
    assert_eq!(early.stdout["shipment_items"][0]["product_data"], json!([]));
    for _ in 0..10 {
        sb.advance().await;
    }
    let d = sb.run(&["shipment", &id], sb.env()).await;
    assert_eq!(d.code, 0, "{}", d.stderr);
    let state = d.stdout["shipment_state_id"].as_u64().unwrap();
    assert!(state == 103 || state == 104, "{}", d.stdout);
    let pd = d.stdout["shipment_items"][0]["product_data"][0].clone();

    // Okta activates with them: the key was programmed from the relayed requests.
    let fid = enrolled["credRequests"][0]["authenticatorEnrollmentId"].clone();
    let (s, v) = sb
        .okta(
            "/activate",
            Some(json!({
                "fulfillmentProvider": "yubico", "userId": ALICE,
                "serial": pd["serial"], "version": pd["version"],
                "pinResponseJwe": pd["fido_pin_response"],
                "credResponses": [{"authenticatorEnrollmentId": fid, "credResponseJwe": pd["fido_credential_response"][0]}],
                "yubicoSigningJwks": signing,
            })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, list) = sb.okta(&format!("/users/{ALICE}/enrollments"), None).await;
    assert_eq!(list[0]["status"], "ACTIVE");

    // The same through --config (a prereg serve configuration).
    let config = sb.connector_config();
    let d2 = sb
        .run(&["shipment", "--config", &config, &id], vec![])
        .await;
    assert_eq!(d2.code, 0, "{}", d2.stderr);
    assert_eq!(d2.stdout, d.stdout);
    let k2 = sb.run(&["keys", "--config", &config], vec![]).await;
    assert_eq!(k2.code, 0, "{}", k2.stderr);
    assert_eq!(k2.stdout, keys.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_name_the_field_and_exit_1() {
    let sb = start().await;
    let item = json!({"shipment_item": {"product_id": 1, "inventory_product_id": 1, "product_quantity": 1,
        "customization_id": CID, "product_customizations": [{"fido_pin_request": FAKE_JWE, "fido_credential_requests": [FAKE_JWE]}]}});
    let item_file = sb.file("item.json", &item);
    let input = sb.file("contact.json", &contact());

    // A limit broken: reported before any setting is needed, so nothing was sent.
    let long = "L".repeat(21);
    let o = sb
        .run(
            &[
                "create-shipment",
                "--input",
                &input,
                "--item",
                &item_file,
                "--last-name",
                &long,
            ],
            vec![],
        )
        .await;
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr.trim(),
        "error: Input for Last Name exceeded limit of 20 characters (field last_name)"
    );
    let o = sb
        .run(
            &[
                "create-shipment",
                "--input",
                &input,
                "--item",
                &item_file,
                "--region",
                "",
            ],
            vec![],
        )
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("(field region)"), "{}", o.stderr);
    let o = sb
        .run(&["create-shipment", "--input", &input], vec![])
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("(field shipment_items)"), "{}", o.stderr);

    // A misspelt field in the input file is named.
    let mut typo = contact();
    typo["phone_numbr"] = json!("1");
    let typo = sb.file("typo.json", &typo);
    let o = sb
        .run(
            &["create-shipment", "--input", &typo, "--item", &item_file],
            vec![],
        )
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("(field phone_numbr)"), "{}", o.stderr);
    let mut wrong_type = contact();
    wrong_type["delivery_type"] = json!("fast");
    let wrong_type = sb.file("wrong_type.json", &wrong_type);
    let o = sb
        .run(
            &[
                "create-shipment",
                "--input",
                &wrong_type,
                "--item",
                &item_file,
            ],
            vec![],
        )
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("(field delivery_type)"), "{}", o.stderr);

    // build-item refuses a second key and a non-JWE, naming the field.
    let o = sb
        .run(
            &[
                "build-item",
                "--customization-id",
                CID,
                "--product-id",
                "1",
                "--inventory-product-id",
                "1",
                "--quantity",
                "2",
                "--pin-request",
                FAKE_JWE,
                "--credential-request",
                FAKE_JWE,
            ],
            vec![],
        )
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("(field quantity)"), "{}", o.stderr);
    let o = sb
        .run(
            &[
                "build-item",
                "--customization-id",
                CID,
                "--product-id",
                "1",
                "--inventory-product-id",
                "1",
                "--pin-request",
                FAKE_JWE,
                "--credential-request",
                "not-a-jwe",
            ],
            vec![],
        )
        .await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("(field credential_requests[0])"),
        "{}",
        o.stderr
    );

    // Valid input but no fulfiller configured: the missing variable is named.
    let o = sb
        .run(
            &["create-shipment", "--input", &input, "--item", &item_file],
            vec![],
        )
        .await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("YE_API_BASE_URL is not set"),
        "{}",
        o.stderr
    );
    let o = sb.run(&["keys"], vec![]).await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("YE_JWKS_TRANSPORT_ENDPOINT is not set"),
        "{}",
        o.stderr
    );

    // The fulfiller refuses a customization that is not the organisation's: relayed.
    let mut other = item.clone();
    other["shipment_item"]["customization_id"] = json!("NOTOURS");
    let other = sb.file("other.json", &other);
    let o = sb
        .run(
            &["create-shipment", "--input", &input, "--item", &other],
            sb.env(),
        )
        .await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("the fulfiller refused (400 unknown_customization)"),
        "{}",
        o.stderr
    );
    assert!(
        o.stdout.as_str().is_some_and(str::is_empty),
        "{:?}",
        o.stdout
    );

    // An unknown shipment is the fulfiller's 404; a malformed id is refused here.
    let o = sb
        .run(&["shipment", "1111111111111111111111"], sb.env())
        .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("(404 not_found)"), "{}", o.stderr);
    let o = sb.run(&["shipment", "x?y"], sb.env()).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("(field shipment_id)"), "{}", o.stderr);

    // A wrong token is the fulfiller's 401, relayed.
    let mut env = sb.env();
    env[1].1 = "wrong-token".into();
    let o = sb.run(&["shipment", "1111111111111111111111"], env).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("(401 unauthorized)"), "{}", o.stderr);
    assert!(!o.stderr.contains("wrong-token"), "{}", o.stderr);
}
