//! Credential requests, API v2 (issue #19 item 1, docs/credential-requests.md): a primary
//! and a backup key for one person, each with its own shipment and PIN, both signing in
//! at Entra; one key registered at Entra and at Okta, signing in at both; the order's
//! idempotency; and the refusals naming the member at fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, ALEX};
use crate::okta_common::{self, BOB, Options};
use crate::pg::TestDb;
use authenticator::{KeyProgrammer, Pin, VirtualYubiKey};
use reqwest::Method;
use sandbox::faults::{FaultKind, ScriptedFault};
use serde_json::{Value, json};

const ALEX_UPN: &str = "AlexW@contoso.onmicrosoft.com";
const BOB_LOGIN: &str = "bob.brown@example.com";

fn product() -> Value {
    json!({
        "product_id": 1,
        "inventory_product_id": 1,
        "customization_id": sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION,
    })
}

/// The PIN in the mail whose subject names `serial`, and that mail's subject.
fn mailed(mail: &sandbox::mail::MailCatcher, serial: &str) -> (String, String) {
    let m = mail
        .messages()
        .into_iter()
        .find(|m| m.subject.contains(serial))
        .unwrap_or_else(|| panic!("no PIN mail names {serial}"));
    let at = m.body.find("Its PIN is: ").expect("the mail names the PIN") + 12;
    let pin = m.body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (pin, m.subject)
}

/// A fresh PIN when the key demands a change; the PIN to sign in with.
fn ready_pin(key: &mut VirtualYubiKey, pin: &str, new: &str) -> String {
    if key.summary().force_pin_change {
        key.change_pin(&Pin::new(pin), &Pin::new(new)).unwrap();
        new.to_owned()
    } else {
        pin.to_owned()
    }
}

/// The shipped key of a shipment, as the person holds it.
async fn shipped_key(w: &common::World, shipment_id: &str) -> VirtualYubiKey {
    let v = w
        .fulfiller_call(
            Method::GET,
            &format!("/sandbox/v1/shipments/{shipment_id}/key"),
            None,
        )
        .await;
    VirtualYubiKey::from_json(&v.to_string()).unwrap()
}

/// Okta mode with automatic approval (Okta mails the PIN once the key is activated),
/// beside Entra mode.
async fn okta_world(database_url: Option<String>) -> okta_common::OktaWorld {
    okta_common::start_with(Options {
        approval: "auto",
        database_url,
        ..Default::default()
    })
    .await
}

async fn order_as(w: &common::World, body: &Value, idempotency: Option<&str>) -> (u16, Value) {
    let token = w.token().await;
    w.call_as(
        &token,
        Method::POST,
        "/v2/credential-requests",
        Some(body.clone()),
        idempotency,
    )
    .await
}

async fn primary_and_backup(database_url: Option<String>) {
    let w = common::start_full(sandbox::Config::for_tests(), database_url, "", false).await;
    let body = json!({
        "person": {"entra_user": ALEX_UPN, "pin_contacts": ["helpdesk@contoso.example"]},
        "product": product(),
        "keys": [
            {"label": "primary", "credentials": [{"idp": "entra"}]},
            {"label": "backup", "credentials": [{"idp": "entra"}]}
        ]
    });
    let (s, v) = order_as(&w, &body, Some("order-alex-1")).await;
    assert_eq!(s, 202, "{v}");
    let cr = v["data"].clone();
    let id = cr["id"].as_str().unwrap().to_owned();
    assert_eq!(
        cr["entra_user"], ALEX,
        "the person is resolved to the object id"
    );
    let keys = cr["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for (k, label) in keys.iter().zip(["primary", "backup"]) {
        assert_eq!(k["label"], label);
        assert_eq!(k["state"], "open", "{k}");
        assert_eq!(k["pin_delivered_by"], "connector");
        assert_eq!(k["credentials"][0]["idp"], "entra");
        assert_eq!(
            k["credentials"][0]["rp_ids"],
            json!(["login.microsoft.com"])
        );
        assert_eq!(k["credentials"][0]["state"], "pending");
    }
    let sids: Vec<String> = keys
        .iter()
        .map(|k| k["shipment_id"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(
        sids[0], sids[1],
        "one key per FIDO Pre-reg shipment: two shipments"
    );
    assert_eq!(w.fulfiller_total().await, 2);

    // The same order sent again (its answer lost) orders nothing.
    let (s, again) = order_as(&w, &body, Some("order-alex-1")).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["data"]["id"], id.as_str());
    assert_eq!(w.fulfiller_total().await, 2);

    for _ in 0..2 {
        w.advance().await;
    }
    for k in keys {
        w.settle(k["request_id"].as_str().unwrap(), &["complete"])
            .await;
    }
    let (s, v) = w
        .call(Method::GET, &format!("/v2/credential-requests/{id}"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let done = &v["data"];
    assert_eq!(done["state"], "complete", "{done}");
    assert_eq!(
        w.entra.registered_methods().len(),
        2,
        "two passkeys for Alex"
    );

    // Each key's PIN mail names the key, and each key signs in with its own PIN.
    let mut pins = Vec::new();
    for (k, label) in done["keys"]
        .as_array()
        .unwrap()
        .iter()
        .zip(["primary", "backup"])
    {
        assert_eq!(k["credentials"][0]["state"], "registered", "{k}");
        let serial = k["serial"].as_str().unwrap();
        let (pin, subject) = mailed(&w.mail, serial);
        assert!(
            subject.contains(&format!("the {label} security key")),
            "{subject}"
        );
        assert!(
            !done.to_string().contains(&pin),
            "the PIN is not in the view"
        );
        let mut key = shipped_key(&w, k["shipment_id"].as_str().unwrap()).await;
        let now = ready_pin(&mut key, &pin, "31415926");
        let (s, who) =
            common::sign_in_at(&w.http, &w.entra.base_url(), &mut key, ALEX_UPN, &now).await;
        assert_eq!(s, 200, "{label} key signs in: {who}");
        pins.push(pin);
    }
    assert_ne!(pins[0], pins[1], "each key has its own PIN");
    assert_eq!(w.mail.messages().len(), 2, "one PIN mail per key");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_and_a_backup_key_ship_with_their_own_pins_and_both_sign_in() {
    primary_and_backup(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_and_a_backup_key_on_postgresql() {
    let db = TestDb::create("prereg_credreq").await;
    primary_and_backup(Some(db.url.clone())).await;
    db.drop_db().await;
}

async fn one_key_at_both(database_url: Option<String>) {
    let w = okta_world(database_url).await;
    let body = json!({
        "person": {"entra_user": ALEX_UPN, "okta_user": BOB_LOGIN},
        "product": product(),
        "keys": [{"label": "primary", "credentials": [{"idp": "okta"}, {"idp": "entra"}]}]
    });
    // Both registrations lose their answer once (Okta activated, Graph registered; the
    // connector never hears), and Graph's creation options fail once: still one
    // enrollment, one passkey.
    w.okta_org.faults().script([ScriptedFault::new(
        "POST",
        "/activate",
        FaultKind::DropAfter,
        1,
    )]);
    w.entra.faults().script([
        ScriptedFault::new(
            "POST",
            "/authentication/fido2Methods",
            FaultKind::DropAfter,
            1,
        ),
        ScriptedFault::new("GET", "/creationOptions", FaultKind::Error, 1),
    ]);
    let (s, v) = w
        .call(Method::POST, "/v2/credential-requests", Some(body))
        .await;
    assert_eq!(s, 202, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["data"]["okta_user"], BOB);
    let key = &v["data"]["keys"][0];
    assert_eq!(
        key["pin_delivered_by"], "okta",
        "Okta makes and mails the PIN"
    );
    let request_id = key["request_id"].as_str().unwrap().to_owned();
    let r = w.drive_to(&request_id, "complete").await;
    assert!(
        w.okta_org.faults().get().script.is_empty() && w.entra.faults().get().script.is_empty(),
        "every scripted fault was met"
    );
    let shipment = r["shipment_id"].as_str().unwrap().to_owned();
    let serial = r["serial_number"].as_str().unwrap().to_owned();

    // One shipment, one key, carrying Okta's credential request and ours.
    let shipments = w.fulfiller_shipments().await;
    assert_eq!(shipments.len(), 1);
    let (s, order) = w
        .fulfiller_call(Method::GET, &format!("/v1/fpr/shipments/{shipment}"), None)
        .await;
    assert_eq!(s, 200, "{order}");
    let responses = &order["shipment_items"][0]["product_data"][0]["fido_credential_responses"];
    assert_eq!(responses.as_array().map(Vec::len), Some(2), "{order}");
    let (_, v) = w
        .call(Method::GET, &format!("/v2/credential-requests/{id}"), None)
        .await;
    let cr = &v["data"];
    assert_eq!(cr["state"], "complete", "{cr}");
    for c in cr["keys"][0]["credentials"].as_array().unwrap() {
        assert_eq!(c["state"], "registered", "{cr}");
    }
    // Registered at both: an active enrollment at Okta, a passkey at Entra.
    let enrollments = w.enrollments(BOB).await;
    assert_eq!(enrollments.len(), 1);
    assert_eq!(enrollments[0]["status"], "ACTIVE");
    let methods = w.entra.registered_methods();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].user_id, ALEX);

    // Okta mailed the PIN; the one key signs in at Okta and at Entra with it.
    let mail = w.mail.messages();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].body.contains(&serial), "the mail names the key");
    let pin = okta_common::pin_in(&mail[0].body);
    let mut key = w.shipped_key(&shipment).await;
    let now = ready_pin(&mut key, &pin, "73195208");
    let (s, who) = w.sign_in(&mut key, BOB_LOGIN, &now).await;
    assert_eq!(s, 200, "signs in at Okta: {who}");
    assert_eq!(who["user"]["id"], BOB);
    let (s, who) = common::sign_in_at(&w.http, &w.entra.base_url(), &mut key, ALEX_UPN, &now).await;
    assert_eq!(s, 200, "signs in at Entra: {who}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_registered_at_entra_and_okta_signs_in_at_both() {
    one_key_at_both(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_at_entra_and_okta_on_postgresql() {
    let db = TestDb::create("prereg_credreq_both").await;
    one_key_at_both(Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_order_is_refused_naming_the_member_and_nothing_is_ordered() {
    let w = common::start_full(sandbox::Config::for_tests(), None, "", false).await;
    let key = |label: &str, idp: &str| json!({"label": label, "credentials": [{"idp": idp}]});
    let cases = [
        (
            json!({"person": {"entra_user": ALEX}, "product": product(),
                   "keys": [key("primary", "entra"), key("Primary", "entra")]}),
            400,
            "`keys[1].label`",
        ),
        (
            json!({"person": {"entra_user": ALEX}, "product": product(),
                   "keys": [{"label": "primary", "credentials": [{"idp": "entra"}, {"idp": "entra"}]}]}),
            400,
            "`keys[0].credentials` names entra twice",
        ),
        (
            json!({"person": {"entra_user": ALEX}, "product": product(), "keys": [key("primary", "okta")]}),
            400,
            "Okta mode is off",
        ),
        (
            json!({"person": {}, "product": product(), "keys": [key("primary", "entra")]}),
            400,
            "`person.entra_user`",
        ),
        (
            json!({"person": {"entra_user": ALEX}, "product": product(),
                   "keys": [{"label": "primary", "credentials": [{"idp": "entra", "rp_ids": ["example.com"]}]}]}),
            400,
            "`keys[0].credentials[0].rp_ids`",
        ),
        (
            json!({"person": {"entra_user": "nobody@contoso.onmicrosoft.com"}, "product": product(),
                   "keys": [key("primary", "entra")]}),
            400,
            "Could not find user",
        ),
        (
            json!({"person": {"entra_user": ALEX}, "product": product(), "keys": []}),
            400,
            "`keys` must hold 1 to 4 keys",
        ),
        (
            json!({"person": {"entra_user": ALEX}, "product": product(), "keys": [key("primary", "entra")], "colour": "red"}),
            400,
            "unknown field",
        ),
    ];
    for (body, status, names) in cases {
        let (s, v) = w
            .call(Method::POST, "/v2/credential-requests", Some(body.clone()))
            .await;
        assert_eq!(s, status, "{body} -> {v}");
        let m = v["error_message"].as_str().unwrap_or_default();
        assert!(m.contains(names), "{body}: {m:?} should name {names}");
    }
    assert_eq!(w.fulfiller_total().await, 0, "nothing was ordered");
    // A fulfiller refusal of the (only) key: nothing stays either.
    let bad = json!({"person": {"entra_user": ALEX}, "product": {"product_id": 1, "inventory_product_id": 1, "customization_id": "NO-SUCH-CID"},
                     "keys": [key("primary", "entra")]});
    let (s, v) = w
        .call(Method::POST, "/v2/credential-requests", Some(bad))
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = w
        .call(Method::GET, "/v2/credential-requests/nope", None)
        .await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(w.fulfiller_total().await, 0);
}

/// Graph refuses the Entra credential of a key that Okta has activated (the tenant's
/// passkey policy was switched off after the order): the request goes to `error`
/// naming the policy, the Okta credential stays registered; once the policy is on
/// again, a retry registers the same shipped key at Entra without activating it at
/// Okta again, and Okta mails the PIN once.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_entra_registration_is_retried_on_the_same_key_after_the_fix() {
    let w = okta_world(None).await;
    let body = json!({
        "person": {"entra_user": ALEX, "okta_user": BOB},
        "product": product(),
        "keys": [{"label": "laptop", "credentials": [{"idp": "entra"}, {"idp": "okta"}]}]
    });
    let (s, v) = w
        .call(Method::POST, "/v2/credential-requests", Some(body))
        .await;
    assert_eq!(s, 202, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_owned();
    let request_id = v["data"]["keys"][0]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.drive_to(&request_id, "open").await;

    let policy_url = format!("{}/sandbox/v1/fido2-policy", w.entra.base_url());
    let mut policy: Value = w
        .http
        .get(&policy_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    policy["state"] = json!("disabled");
    let r = w.http.put(&policy_url).json(&policy).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = w.drive_to(&request_id, "error").await;
    let why = r["last_error"].as_str().unwrap();
    assert!(why.contains("Passkey (FIDO2)"), "{why}");
    let (_, v) = w
        .call(Method::GET, &format!("/v2/credential-requests/{id}"), None)
        .await;
    let cr = &v["data"];
    assert_eq!(cr["state"], "error", "{cr}");
    let states: Vec<(&str, &str)> = cr["keys"][0]["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["idp"].as_str().unwrap(), c["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("entra", "error"), ("okta", "registered")], "{cr}");
    assert!(w.entra.registered_methods().is_empty());
    assert!(
        w.mail.messages().is_empty(),
        "no PIN before every credential is registered"
    );

    policy["state"] = json!("enabled");
    let r = w.http.put(&policy_url).json(&policy).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/fpr/shipments/{request_id}/retry"),
            None,
        )
        .await;
    assert!(s == 200 || s == 202, "{s} {v}");
    w.drive_to(&request_id, "complete").await;
    assert_eq!(w.entra.registered_methods().len(), 1);
    let enrollments = w.enrollments(BOB).await;
    assert_eq!(enrollments.len(), 1);
    assert_eq!(enrollments[0]["status"], "ACTIVE");
    assert_eq!(w.mail.messages().len(), 1, "Okta mailed the PIN once");
    let (_, v) = w
        .call(Method::GET, &format!("/v2/credential-requests/{id}"), None)
        .await;
    assert_eq!(v["data"]["state"], "complete", "{v}");
}

/// A key that cannot be ordered (the person's Okta-mode request is open) is
/// `not_ordered` beside the key that was; deleting the order cancels the ordered key at
/// the fulfiller and makes sure the other is never ordered, even when the order is sent
/// again under its `Idempotency-Key` after the blocking request is gone.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_order_cancels_its_keys_and_a_key_never_ordered_stays_unordered() {
    let w = okta_world(None).await;
    // Bob's own Okta-mode request, open.
    let (s, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": [BOB_LOGIN]})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let blocking = v["data"][0]["request_id"].as_str().unwrap().to_owned();

    let body = json!({
        "person": {"entra_user": ALEX, "okta_user": BOB},
        "product": product(),
        "keys": [
            {"label": "primary", "credentials": [{"idp": "entra"}]},
            {"label": "backup", "credentials": [{"idp": "okta"}]}
        ]
    });
    let token = common::caller_token(&w.http, &w.ready).await;
    let send = |b: Value| {
        let (http, url, token) = (
            w.http.clone(),
            format!("{}/v2/credential-requests", w.connector),
            token.clone(),
        );
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "order-7")
                .json(&b)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = send(body.clone()).await;
    assert_eq!(s, 202, "{v}");
    let cr = &v["data"];
    let id = cr["id"].as_str().unwrap().to_owned();
    assert_eq!(cr["state"], "error", "{cr}");
    assert_eq!(cr["keys"][0]["state"], "open", "{cr}");
    assert_eq!(cr["keys"][1]["state"], "not_ordered", "{cr}");
    let why = cr["keys"][1]["last_error"].as_str().unwrap();
    assert!(why.contains(&blocking), "names the open request: {why}");
    assert_eq!(cr["keys"][1]["credentials"][0]["state"], "not_ordered");
    let primary = cr["keys"][0]["shipment_id"].as_str().unwrap().to_owned();

    let (s, v) = w
        .call(
            Method::DELETE,
            &format!("/v2/credential-requests/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let outcomes: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["deleted", "never_ordered"], "{v}");
    assert_eq!(v["data"]["state"], "deleted", "{v}");
    let (s, _) = w
        .fulfiller_call(Method::GET, &format!("/v1/fpr/shipments/{primary}"), None)
        .await;
    assert_eq!(
        s, 404,
        "the primary key's shipment is cancelled at the fulfiller"
    );

    // Bob's own request goes away; the order sent again orders nothing.
    let (s, v) = w
        .call(
            Method::DELETE,
            &format!("/v1/fpr/shipments/{blocking}"),
            None,
        )
        .await;
    assert!(s == 200 || s == 202, "{v}");
    w.process().await;
    let before = w.fulfiller_shipments().await.len();
    let (s, v) = send(body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["id"], id.as_str());
    assert_eq!(v["data"]["keys"][1]["state"], "deleted", "{v}");
    assert!(v["data"]["keys"][1]["request_id"].is_null(), "{v}");
    w.process().await;
    assert_eq!(
        w.fulfiller_shipments().await.len(),
        before,
        "nothing ordered"
    );
    let (s, v) = w
        .call(Method::DELETE, "/v2/credential-requests/nope", None)
        .await;
    assert_eq!(s, 404, "{v}");
}

/// The same order sent three times at once under one `Idempotency-Key` (a client that
/// retries without waiting): one credential request, each key ordered once.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_order_sent_three_times_at_once_orders_each_key_once() {
    let w = common::start_full(sandbox::Config::for_tests(), None, "", false).await;
    let body = json!({
        "person": {"entra_user": ALEX, "pin_contacts": ["helpdesk@contoso.example"]},
        "product": product(),
        "keys": [
            {"label": "primary", "credentials": [{"idp": "entra"}]},
            {"label": "backup", "credentials": [{"idp": "entra"}]}
        ]
    });
    let (a, b, c) = tokio::join!(
        order_as(&w, &body, Some("at-once")),
        order_as(&w, &body, Some("at-once")),
        order_as(&w, &body, Some("at-once")),
    );
    let mut ids = Vec::new();
    for (s, v) in [a, b, c] {
        assert!(s == 200 || s == 202, "{s} {v}");
        ids.push(v["data"]["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one credential request");
    assert_eq!(w.fulfiller_total().await, 2, "each key ordered once");
    let (_, v) = w
        .call(
            Method::GET,
            &format!("/v2/credential-requests/{}", ids[0]),
            None,
        )
        .await;
    for k in v["data"]["keys"].as_array().unwrap() {
        assert!(k["request_id"].is_string(), "{v}");
    }
}

/// A fulfiller that ships two keys in one FIDO Pre-reg shipment
/// (`fpr_keys_per_shipment`, `fulfiller_keys_per_shipment = 2`): a primary, a backup and
/// a spare key ship as one shipment of two and one of one; each key has its own PIN,
/// mailed naming it, and signs in.
async fn shared_shipment(database_url: Option<String>) {
    let mut config = sandbox::Config::for_tests();
    config.seed.fpr_keys_per_shipment = 2;
    // With the console on: a riding key's page says where its shipment is.
    let w = common::start_full_with(
        config,
        database_url,
        |ready| {
            format!(
                "fulfiller_keys_per_shipment = 2\n{}",
                crate::console_common::console_toml(ready)
            )
        },
        false,
    )
    .await;
    let body = json!({
        "person": {"entra_user": ALEX, "pin_contacts": ["helpdesk@contoso.example"]},
        "product": product(),
        "keys": [
            {"label": "primary", "credentials": [{"idp": "entra"}]},
            {"label": "backup", "credentials": [{"idp": "entra"}]},
            {"label": "spare", "credentials": [{"idp": "entra"}]}
        ]
    });
    let (s, v) = order_as(&w, &body, Some("three-keys")).await;
    assert_eq!(s, 202, "{v}");
    let id = v["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        w.fulfiller_total().await,
        2,
        "one shipment of two keys, one of one"
    );
    let (s, again) = order_as(&w, &body, Some("three-keys")).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(w.fulfiller_total().await, 2);
    let lead = v["data"]["keys"][0]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let backup = v["data"]["keys"][1]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = crate::console_common::browser();
    crate::console_common::sign_in(&w, &browser).await;
    let (s, page) =
        crate::console_common::get(&w, &browser, &format!("/console/shipments/{backup}")).await;
    assert_eq!(s, 200);
    assert!(
        page.contains(&format!(
            "This key ships as key 2 of the shipment request {lead} orders"
        )),
        "{page}"
    );

    for _ in 0..2 {
        w.advance().await;
    }
    let (_, v) = w
        .call(Method::GET, &format!("/v2/credential-requests/{id}"), None)
        .await;
    for k in v["data"]["keys"].as_array().unwrap() {
        w.settle(k["request_id"].as_str().unwrap(), &["complete"])
            .await;
    }
    let (_, v) = w
        .call(Method::GET, &format!("/v2/credential-requests/{id}"), None)
        .await;
    let cr = &v["data"];
    assert_eq!(cr["state"], "complete", "{cr}");
    let keys = cr["keys"].as_array().unwrap();
    assert_eq!(keys[0]["shipment_id"], keys[1]["shipment_id"], "{cr}");
    assert_ne!(keys[0]["shipment_id"], keys[2]["shipment_id"], "{cr}");
    let shared = keys[0]["shipment_id"].as_str().unwrap().to_owned();
    let (s, order) = w
        .http
        .get(format!("{}/v1/fpr/shipments/{shared}", w.fulfiller))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(s, 200);
    let order: Value = order.json().await.unwrap();
    assert_eq!(order["shipment_items"][0]["product_quantity"], 2, "{order}");
    assert_eq!(w.entra.registered_methods().len(), 3, "three passkeys");
    let mut pins = Vec::new();
    for (k, (label, index)) in keys
        .iter()
        .zip([("primary", 0), ("backup", 1), ("spare", 0)])
    {
        assert_eq!(k["credentials"][0]["state"], "registered", "{k}");
        let serial = k["serial"].as_str().unwrap();
        let (pin, subject) = mailed(&w.mail, serial);
        assert!(
            subject.contains(&format!("the {label} security key")),
            "{subject}"
        );
        let sid = k["shipment_id"].as_str().unwrap();
        let v = w
            .fulfiller_call(
                Method::GET,
                &format!("/sandbox/v1/shipments/{sid}/key?index={index}"),
                None,
            )
            .await;
        let mut key = VirtualYubiKey::from_json(&v.to_string()).unwrap();
        assert_eq!(key.identity().serial.to_string(), serial, "{label}");
        let now = ready_pin(&mut key, &pin, "27182818");
        let (s, who) = common::sign_in_at(&w.http, &w.entra.base_url(), &mut key, ALEX, &now).await;
        assert_eq!(s, 200, "{label} key signs in: {who}");
        pins.push(pin);
    }
    assert_ne!(
        pins[0], pins[1],
        "each key of the shared shipment has its own PIN"
    );
    assert_eq!(w.mail.messages().len(), 3, "one PIN mail per key");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_share_a_shipment_where_the_fulfiller_allows_several() {
    shared_shipment(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_share_a_shipment_on_postgresql() {
    let db = TestDb::create("prereg_credreq_shared").await;
    shared_shipment(Some(db.url.clone())).await;
    db.drop_db().await;
}
