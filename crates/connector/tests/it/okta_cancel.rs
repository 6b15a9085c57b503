//! Cancelling an Okta-mode request while it is still being created: `DELETE` answers
//! 202 `cancelling`, and processing undoes whatever was made — the shipment at the
//! fulfiller (found by its customer reference when the create's answer was not
//! recorded yet), the enrollment at Okta — then marks the request deleted. Covered:
//! nothing made yet; enrolled but not ordered; a cancel landing while Okta's `enroll`
//! is in flight; one landing while the fulfiller's create is in flight (the worker
//! must not set the request `open` afterwards); a shipment whose create answer was lost
//! (found by reference, or by recipient and address at a fulfiller that ignores the
//! reference); and one the fulfiller can no longer delete (error, the key can
//! still be activated).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common;

use okta_common::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Records a `creating` request for `user` without starting a worker.
async fn start_quietly(w: &OktaWorld, user: &str) -> String {
    let order = connector::okta::Order::from(&w.state.okta.as_ref().unwrap().config.groups[0]);
    match connector::okta::start_request(&w.state, user, order, "batch")
        .await
        .unwrap()
    {
        connector::okta::Started::Created(r) => r.id,
        other => panic!("{other:?}"),
    }
}

async fn delete(w: &OktaWorld, id: &str) -> (u16, Value) {
    w.call(Method::DELETE, &format!("/v1/fpr/shipments/{id}"), None)
        .await
}

async fn fulfiller_faults(w: &OktaWorld, config: Value) {
    let (s, v) = w
        .fulfiller_call(Method::PUT, "/sandbox/v1/faults", Some(config))
        .await;
    assert_eq!(s, 200, "{v}");
}

/// Waits (for a condition) until the request's audit trail has a note starting with
/// `note`.
async fn wait_note(w: &OktaWorld, id: &str, note: &str) {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = w.request(id).await;
        if last["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["note"].as_str().unwrap().starts_with(note))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the request never recorded {note:?}: {last}");
}

fn last_note(r: &Value) -> String {
    r["timeline"].as_array().unwrap().last().unwrap()["note"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// After the cancel ran: deleted in the table, nothing at the fulfiller, no enrollment
/// at Okta, and the user can be ordered again.
async fn assert_undone_everywhere(w: &OktaWorld, id: &str) -> Value {
    let r = w.drive_to(id, "deleted").await;
    assert_eq!(r["table_state"], "deleted");
    assert!(r["last_error"].is_null(), "{r}");
    assert!(
        w.fulfiller_shipments().await.is_empty(),
        "a shipment was left at the fulfiller"
    );
    assert!(
        w.enrollments(BOB).await.is_empty(),
        "an enrollment was left at Okta"
    );
    // Further runs leave it deleted.
    w.process().await;
    assert_eq!(w.request(id).await["state"], "deleted");
    let (s, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": [BOB]})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"][0]["status"], "created", "{v}");
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_request_before_anything_was_made_cancels_it_without_ordering() {
    let w = start().await;
    let id = start_quietly(&w, BOB).await;
    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"]["state"], "cancelling");
    assert_eq!(v["data"]["table_state"], "ongoing");
    // A second DELETE while cancelling answers the same.
    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"]["state"], "cancelling");
    // Nothing else applies to it meanwhile.
    let (s, _) = w
        .call(Method::POST, &format!("/v1/fpr/shipments/{id}/retry"), None)
        .await;
    assert_eq!(s, 409);

    let r = assert_undone_everywhere(&w, &id).await;
    assert!(r["shipment_id"].is_null());
    let note = last_note(&r);
    assert!(note.contains("nothing had been ordered"), "{note}");
    assert!(note.contains("no enrollment"), "{note}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_request_enrolled_but_not_ordered_deletes_the_enrollment() {
    let w = start().await;
    // The transport key is fetched before the fulfiller fails, so the enrollment is
    // made; then every fulfiller call fails and the order stays unsent.
    w.state.transport_key().await.unwrap();
    fulfiller_faults(&w, json!({"error_rate": 1.0})).await;
    let id = start_quietly(&w, BOB).await;
    w.process().await;
    let r = w.request(&id).await;
    assert_eq!(r["state"], "creating", "{r}");
    let enrollment = r["okta"]["enrollment_ids"][0].as_str().unwrap().to_owned();
    assert_eq!(w.enrollments(BOB).await.len(), 1);

    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"]["state"], "cancelling");
    fulfiller_faults(&w, json!({})).await;

    let r = assert_undone_everywhere(&w, &id).await;
    let note = last_note(&r);
    assert!(note.contains("nothing had been ordered"), "{note}");
    assert!(
        note.contains(&format!("enrollment {enrollment} deleted")),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_landing_while_okta_enrolls_deletes_the_enrollment_it_returns() {
    let w = start().await;
    // Okta answers slowly: the DELETE lands while `enroll` is in flight.
    w.okta_org.faults().set(sandbox::faults::FaultConfig {
        latency_ms: 1500,
        ..Default::default()
    });
    let id = start_quietly(&w, BOB).await;
    let worker = {
        let s = w.state.clone();
        tokio::spawn(async move {
            connector::runner::process_and_wait(&s, std::time::Duration::from_secs(120))
                .await
                .unwrap()
        })
    };
    wait_note(&w, &id, "enrolling at Okta").await;
    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"]["state"], "cancelling");
    w.okta_org
        .faults()
        .set(sandbox::faults::FaultConfig::none());
    worker.await.unwrap();

    let r = assert_undone_everywhere(&w, &id).await;
    let states: Vec<&str> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert!(!states.contains(&"open"), "{states:?}");
    let note = last_note(&r);
    assert!(note.contains("nothing had been ordered"), "{note}");
    assert!(note.contains("deleted"), "{note}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_landing_while_the_fulfiller_creates_deletes_the_new_shipment_and_never_opens() {
    let w = start().await;
    w.state.transport_key().await.unwrap();
    // The fulfiller answers slowly: the DELETE lands while the create is in flight.
    fulfiller_faults(&w, json!({"latency_ms": 1500})).await;
    let id = start_quietly(&w, BOB).await;
    let worker = {
        let s = w.state.clone();
        tokio::spawn(async move {
            connector::runner::process_and_wait(&s, std::time::Duration::from_secs(120))
                .await
                .unwrap()
        })
    };
    wait_note(&w, &id, "enrolled at Okta").await;
    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"]["state"], "cancelling");
    fulfiller_faults(&w, json!({})).await;
    worker.await.unwrap();

    let r = assert_undone_everywhere(&w, &id).await;
    let sid = r["shipment_id"]
        .as_str()
        .expect("the shipment was recorded");
    let states: Vec<&str> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert!(!states.contains(&"open"), "{states:?}");
    let note = last_note(&r);
    assert!(note.contains(&format!("shipment {sid} deleted")), "{note}");
    assert!(note.contains("enrollment"), "{note}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shipment_whose_create_answer_was_lost_is_found_by_reference_and_deleted() {
    lost_create_answer_then_cancel(json!({})).await;
}

/// A fulfiller that ignores `customer_reference` (keeps no reference, searches nothing
/// by it): the shipment is found by recipient and address instead, as in Entra mode.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_shipment_at_a_fulfiller_without_references_is_found_by_contact_and_deleted() {
    lost_create_answer_then_cancel(json!({"ignore_customer_reference": true})).await;
}

async fn lost_create_answer_then_cancel(faults: Value) {
    use connector::store::Store;
    let w = start().await;
    w.state.transport_key().await.unwrap();
    fulfiller_faults(&w, json!({"error_rate": 1.0})).await;
    let id = start_quietly(&w, BOB).await;
    w.process().await;
    fulfiller_faults(&w, faults).await;
    // The recorded order reached the fulfiller after all; its answer never came back.
    let row = w.state.store.get_request(&id).await.unwrap().unwrap();
    assert_eq!(row.state.as_str(), "creating");
    assert!(row.shipment_id.is_none());
    let order: Value = serde_json::from_str(&row.create_body).unwrap();
    assert_eq!(order["customer_reference"], id.as_str());
    let (s, v) = w
        .fulfiller_call(Method::POST, "/v1/fpr/shipments", Some(order))
        .await;
    assert!(s == 200 || s == 201, "{s}: {v}");
    let sid = v["shipment_id"].as_str().unwrap().to_owned();
    assert_eq!(w.fulfiller_shipments().await.len(), 1);

    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    let r = assert_undone_everywhere(&w, &id).await;
    assert_eq!(r["shipment_id"], sid.as_str());
    let note = last_note(&r);
    assert!(note.contains(&format!("shipment {sid} deleted")), "{note}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_after_the_fulfiller_started_fulfilling_ends_in_error_and_the_key_can_still_be_activated()
 {
    use connector::store::Store;
    let w = start().await;
    w.state.transport_key().await.unwrap();
    fulfiller_faults(&w, json!({"error_rate": 1.0})).await;
    let id = start_quietly(&w, BOB).await;
    w.process().await;
    fulfiller_faults(&w, json!({})).await;
    // The lost create went through, and the fulfiller is past the editable states.
    let row = w.state.store.get_request(&id).await.unwrap().unwrap();
    let order: Value = serde_json::from_str(&row.create_body).unwrap();
    let (s, v) = w
        .fulfiller_call(Method::POST, "/v1/fpr/shipments", Some(order))
        .await;
    assert!(s == 200 || s == 201, "{s}: {v}");
    let sid = v["shipment_id"].as_str().unwrap().to_owned();
    let mut shipped = false;
    for _ in 0..20 {
        w.advance().await;
        let (_, v) = w
            .fulfiller_call(Method::GET, &format!("/v1/fpr/shipments/{sid}"), None)
            .await;
        if v["shipment_state"]["shipment_state_id"].as_i64() >= Some(103) {
            shipped = true;
            break;
        }
    }
    assert!(shipped, "the sandbox never shipped {sid}");

    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    let r = w.drive_to(&id, "error").await;
    let e = r["last_error"].as_str().unwrap();
    assert!(e.contains("the cancel came too late"), "{e}");
    assert!(e.contains(&sid), "{e}");
    assert_eq!(r["shipment_id"], sid.as_str());
    // The enrollment waits for the shipped key.
    assert_eq!(w.enrollments(BOB).await[0]["status"], "PENDING_ACTIVATION");
    let (s, v) = w
        .call(Method::POST, &format!("/v1/fpr/shipments/{id}/retry"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "open");
    w.drive_to(&id, "awaiting_approval").await;
    assert_eq!(w.enrollments(BOB).await[0]["status"], "ACTIVE");
    assert_eq!(w.fulfiller_shipments().await.len(), 1, "no second key");
}
