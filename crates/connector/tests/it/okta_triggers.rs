//! Okta-mode triggers: the event hook's verification and shared secret, a duplicate
//! event ignored, unmapped groups ignored, the preregistration ("MFA initiated") event,
//! and a group event Okta never delivered recovered by reconciliation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common;

use okta_common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn deliver(w: &OktaWorld, secret: &str, body: &Value) -> (u16, Value) {
    let r = w
        .http
        .post(format!("{}/v1/okta/events", w.connector))
        .header("Authorization", secret)
        .json(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hook_answers_the_verification_and_refuses_a_wrong_secret() {
    let w = start().await;
    let r = w
        .http
        .get(format!("{}/v1/okta/events", w.connector))
        .header("Authorization", HOOK_SECRET)
        .header("x-okta-verification-challenge", "abc123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"verification": "abc123"}));
    let r = w
        .http
        .get(format!("{}/v1/okta/events", w.connector))
        .header("Authorization", "wrong")
        .header("x-okta-verification-challenge", "abc123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, _) = deliver(&w, "wrong", &group_add_event("e-1", BOB, GROUP)).await;
    assert_eq!(s, 401);
    assert!(w.requests_of(BOB).await.is_empty());
    // The Okta sandbox verifies the hook end to end.
    w.register_hook().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_event_is_ignored_and_an_unmapped_group_starts_nothing() {
    let w = start().await;
    let ev = group_add_event("dup-event-0001", BOB, GROUP);
    let (s, v) = deliver(&w, HOOK_SECRET, &ev).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["started"].as_array().unwrap().len(), 1, "{v}");
    let (s, v) = deliver(&w, HOOK_SECRET, &ev).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["duplicates_ignored"], json!(["dup-event-0001"]));
    assert!(v["started"].as_array().unwrap().is_empty());
    assert_eq!(w.requests_of(BOB).await.len(), 1);

    // Another event for the same user (a new id) finds the open request: no second one.
    let (s, v) = deliver(
        &w,
        HOOK_SECRET,
        &group_add_event("dup-event-0002", BOB, GROUP),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(w.requests_of(BOB).await.len(), 1);

    // A group that is not mapped: not acted on.
    let (s, v) = deliver(
        &w,
        HOOK_SECRET,
        &group_add_event("other-group-1", ERIN, "00gsandboxeveryone3"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["not_acted_on"], json!(["other-group-1"]));
    assert!(w.requests_of(ERIN).await.is_empty());
    // Exactly one shipment after processing.
    let id = w.requests_of(BOB).await[0]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.drive_to(&id, "open").await;
    assert_eq!(w.fulfiller_shipments().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preregistration_event_of_initiate_fulfillment_starts_a_request() {
    let w = start().await;
    w.register_hook().await;
    let (s, v) = w
        .okta_call(
            Method::POST,
            "/webauthn-registration/api/v1/initiate-fulfillment-request",
            Some(json!({"userId": BOB, "fulfillmentProvider": "yubico",
                "fulfillmentData": [{"productId": "1", "inventoryProductId": "1", "customizationId": "C19881"}]})),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let r = w.wait_request_of(BOB).await;
    assert_eq!(r["okta"]["source"], "mfa_initiated");
    assert_eq!(r["okta"]["product_id"], 1);
    assert_eq!(r["okta"]["customization_id"], "C19881");
    let id = r["request_id"].as_str().unwrap().to_owned();
    w.drive_to(&id, "awaiting_approval").await;
}

/// The preregistration event under its other published name,
/// `system.mfa.preregister.initiate`, starts a request the same way.
#[tokio::test(flavor = "multi_thread")]
async fn the_system_mfa_preregister_initiate_event_starts_a_request() {
    let w = start().await;
    let mut ev = group_add_event("initiate-0001", BOB, GROUP);
    let e = &mut ev["data"]["events"][0];
    e["eventType"] = json!("system.mfa.preregister.initiate");
    e["target"] = json!([{"id": BOB, "type": "User", "alternateId": "x", "displayName": "x"}]);
    e["debugContext"] = json!({"debugData": {"fulfillmentData":
        "[{\"productId\":\"1\",\"inventoryProductId\":\"1\",\"customizationId\":\"C19881\"}]"}});
    let (s, v) = deliver(&w, HOOK_SECRET, &ev).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["started"].as_array().unwrap().len(), 1, "{v}");
    let r = w.wait_request_of(BOB).await;
    assert_eq!(r["okta"]["source"], "mfa_initiated");
    assert_eq!(r["okta"]["customization_id"], "C19881");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missed_group_event_is_recovered_by_reconciliation() {
    let w = start().await;
    // No hook registered: Okta's group event for Bob reaches nobody.
    w.add_to_group(GROUP, BOB).await;
    assert!(w.table().await.is_empty());

    let (s, v) = w.call(Method::POST, "/v1/okta/reconcile", None).await;
    assert_eq!(s, 200, "{v}");
    // Alice (a member from the start) and Bob each get one.
    assert_eq!(v["data"]["started"].as_array().unwrap().len(), 2, "{v}");
    let bob = w.wait_request_of(BOB).await;
    assert_eq!(bob["okta"]["source"], "reconcile");
    assert_eq!(w.requests_of(ALICE).await.len(), 1);
    // Reconciling again starts nothing: they have requests.
    let (_, v) = w.call(Method::POST, "/v1/okta/reconcile", None).await;
    assert!(v["data"]["started"].as_array().unwrap().is_empty(), "{v}");
    let id = bob["request_id"].as_str().unwrap().to_owned();
    w.drive_to(&id, "awaiting_approval").await;
    assert_eq!(w.table().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connector_registers_its_own_hook_and_a_group_add_reaches_it() {
    let w = start().await;
    let mut config = w.state.okta.as_ref().unwrap().config.clone();
    config.event_hook_url = Some(format!("{}/v1/okta/events", w.connector));
    let okta = connector::okta::OktaState::build(&config, &w.http, gate::Gate::default()).unwrap();
    let first = connector::okta::register_hook(&okta).await.unwrap();
    // An admin deactivated it meanwhile: registering again replaces the hook in place
    // (its secret cannot be read back, so the configured one is sent again) and
    // activates it.
    let path = format!("/api/v1/eventHooks/{first}/lifecycle/deactivate");
    let (s, v) = w.okta_call(Method::POST, &path, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "INACTIVE", "{v}");
    let id = connector::okta::register_hook(&okta).await.unwrap();
    assert_eq!(first, id, "the same hook, replaced");
    let (s, hooks) = w.okta_call(Method::GET, "/api/v1/eventHooks", None).await;
    assert_eq!(s, 200, "{hooks}");
    let hooks = hooks.as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["verificationStatus"], "VERIFIED");
    assert_eq!(hooks[0]["status"], "ACTIVE");
    let events = hooks[0]["events"]["items"].to_string();
    assert!(
        events.contains("system.mfa.preregister.initiate")
            && events.contains("user.authenticator.enroll.webauthn_preregistration"),
        "{events}"
    );

    w.add_to_group(GROUP, BOB).await;
    let r = w.wait_request_of(BOB).await;
    assert_eq!(r["okta"]["source"], "group_add");
}

fn first_entry(r: &Value) -> Value {
    r["timeline"][0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_audit_entry_names_the_trigger_and_the_group() {
    let w = start().await;
    let (s, v) = deliver(
        &w,
        HOOK_SECRET,
        &group_add_event("first-note-1", BOB, GROUP),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let id = v["started"][0]["request_id"].as_str().unwrap().to_owned();
    let first = first_entry(&w.request(&id).await);
    assert_eq!(first["state"], "creating");
    let note = first["note"].as_str().unwrap();
    assert!(
        note.starts_with(&format!(
            "started by the Okta group-add trigger: bob.brown@example.com was added to mapped group {GROUP}"
        )),
        "{note}"
    );
    assert!(note.contains("customization C19881"), "{note}");
    assert!(
        !note.contains("about to be created"),
        "Entra wording: {note}"
    );

    let (s, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": [ALICE], "group_id": GROUP})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let id = v["data"][0]["request_id"].as_str().unwrap().to_owned();
    let note = first_entry(&w.request(&id).await)["note"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        note.starts_with(&format!(
            "started by a batch order for alice.anders@example.com (group {GROUP})"
        )),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_write_while_recording_a_request_leaves_nothing_behind() {
    use connector::store::Store;
    let w = start().await;
    let store = &w.state.store;
    let id = uuid::Uuid::new_v4().to_string();
    let t = connector::store::now();
    let row = connector::store::RequestRow {
        id: id.clone(),
        idp: connector::domain::Idp::Okta,
        state: connector::domain::RequestState::Creating,
        user_id: BOB.into(),
        user_label: "bob.brown@example.com".into(),
        pin_contacts: "[]".into(),
        create_body: "{}".into(),
        shipment_id: None,
        fulfiller_state: None,
        fulfiller_message: None,
        serial: None,
        firmware: None,
        tracking: None,
        last_error: None,
        created_at: t,
        updated_at: t,
    };
    let part = connector::okta::store::OktaRequest {
        request_id: id.clone(),
        okta_user_id: BOB.into(),
        login: "bob.brown@example.com".into(),
        group_id: Some(GROUP.into()),
        product_id: 1,
        inventory_product_id: 1,
        customization_id: "C19881".into(),
        source: "batch".into(),
        enrollment_ids: Vec::new(),
        activated: false,
        restart: false,
        shipping_overrides: Default::default(),
        key: Default::default(),
    };
    // A job for this id exists already: the last insert (the job) fails.
    sqlx::query("INSERT INTO jobs (id, request_id, run_at, attempts) VALUES ($1, $2, $3, 0)")
        .bind("stray-job")
        .bind(&id)
        .bind(t + 3600)
        .execute(store.pool())
        .await
        .unwrap();
    let e = connector::okta::store::insert_request(store, &row, &part, "started by a test", None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("database"), "{e}");
    // Nothing of the request was written: no row, no Okta part, no audit trail.
    assert!(store.get_request(&id).await.unwrap().is_none());
    assert!(
        connector::okta::store::get(store.pool(), &id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.history(&id).await.unwrap().is_empty());
    // Nor the user's open-request lock (written in the same transaction): the person
    // is not kept out by a request that does not exist.
    let locks: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM okta_open_users WHERE request_id = $1",
    )
    .bind(&id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(locks, 0);
    let (s, v) = w
        .call(Method::GET, &format!("/v1/okta/requests/{id}"), None)
        .await;
    assert_eq!(s, 404, "{v}");

    // Without the stray job, the same request is recorded whole, due at once.
    sqlx::query("DELETE FROM jobs WHERE id = 'stray-job'")
        .execute(store.pool())
        .await
        .unwrap();
    let held =
        connector::okta::store::insert_request(store, &row, &part, "started by a test", None)
            .await
            .unwrap();
    assert_eq!(held, None, "the user had no open request");
    let r = w.request(&id).await;
    assert_eq!(r["state"], "creating");
    assert_eq!(r["okta"]["group_id"], GROUP);
    assert_eq!(first_entry(&r)["note"], "started by a test");
    w.process().await;
    assert_ne!(w.request(&id).await["state"], "creating", "the job was due");
}
