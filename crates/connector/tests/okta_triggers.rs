//! Okta-mode triggers: the event hook's verification and shared secret, a duplicate
//! event ignored, unmapped groups ignored, the preregistration ("MFA initiated") event,
//! and a group event Okta never delivered recovered by reconciliation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod okta_common;

use okta_common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn group_event(uuid: &str, user: &str, group: &str) -> Value {
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
    let (s, _) = deliver(&w, "wrong", &group_event("e-1", BOB, GROUP)).await;
    assert_eq!(s, 401);
    assert!(w.requests_of(BOB).await.is_empty());
    // The Okta sandbox verifies the hook end to end.
    w.register_hook().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_event_is_ignored_and_an_unmapped_group_starts_nothing() {
    let w = start().await;
    let ev = group_event("dup-event-0001", BOB, GROUP);
    let (s, v) = deliver(&w, HOOK_SECRET, &ev).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["started"].as_array().unwrap().len(), 1, "{v}");
    let (s, v) = deliver(&w, HOOK_SECRET, &ev).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["duplicates_ignored"], json!(["dup-event-0001"]));
    assert!(v["started"].as_array().unwrap().is_empty());
    assert_eq!(w.requests_of(BOB).await.len(), 1);

    // Another event for the same user (a new id) finds the open request: no second one.
    let (s, v) = deliver(&w, HOOK_SECRET, &group_event("dup-event-0002", BOB, GROUP)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(w.requests_of(BOB).await.len(), 1);

    // A group that is not mapped: not acted on.
    let (s, v) = deliver(
        &w,
        HOOK_SECRET,
        &group_event("other-group-1", ERIN, "00gsandboxeveryone3"),
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
    let okta = connector::okta::OktaState::build(&config, &w.http).unwrap();
    let first = connector::okta::register_hook(&okta).await.unwrap();
    // Registering again replaces the hook (its secret cannot be read back).
    let id = connector::okta::register_hook(&okta).await.unwrap();
    assert_ne!(first, id);
    let (s, hooks) = w.okta_call(Method::GET, "/api/v1/eventHooks", None).await;
    assert_eq!(s, 200, "{hooks}");
    let hooks = hooks.as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["verificationStatus"], "VERIFIED");

    w.add_to_group(GROUP, BOB).await;
    let r = w.wait_request_of(BOB).await;
    assert_eq!(r["okta"]["source"], "group_add");
}
