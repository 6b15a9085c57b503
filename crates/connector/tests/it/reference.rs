//! Exactly once by reference: the connector's request id travels as the shipment's
//! `customer_reference`, and after a lost answer the processor finds the shipment by it,
//! even when two requests share recipient and address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::{ALEX, World, guide_request, start};
use connector::store::Store;
use reqwest::Method;
use serde_json::{Value, json};

async fn set_drop(w: &World, rate: f64) {
    let r = w
        .http
        .put(format!("{}/sandbox/v1/faults", w.fulfiller))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .json(
            &json!({"error_rate": 0.0, "rate_limit_rate": 0.0, "latency_ms": 0, "drop_rate": rate}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

async fn by_reference(w: &World, reference: &str) -> Vec<Value> {
    let r: Value = w
        .http
        .get(format!("{}/v1/shipments_exact", w.fulfiller))
        .query(&[
            ("search_field", "customer_reference"),
            ("search", reference),
        ])
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["shipments"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_lost_creates_for_the_same_recipient_and_address_end_with_one_shipment_each() {
    let w = start().await;
    // The fulfiller's transport keys are known before it stops answering.
    w.state.transport_key().await.unwrap();
    // The fulfiller stops answering: both requests (same user, same address, sent at
    // once) stay in "creating".
    set_drop(&w, 1.0).await;
    let (a, b) = tokio::join!(
        w.call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX))),
        w.call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX))),
    );
    assert_eq!(a.0, 503, "{}", a.1);
    assert_eq!(b.0, 503, "{}", b.1);
    let ids: Vec<String> = [&a.1, &b.1]
        .iter()
        .map(|v| v["error_data"]["request_id"].as_str().unwrap().to_owned())
        .collect();
    set_drop(&w, 0.0).await;

    // As if only the second request's call had reached the fulfiller before the answer
    // was lost: its shipment exists, unrecorded, carrying its request id.
    let row = w.state.store.get_request(&ids[1]).await.unwrap().unwrap();
    assert_eq!(row.state.as_str(), "creating");
    let body: yubienterprise::fpr::CreateFprShipment =
        serde_json::from_str(&row.create_body).unwrap();
    assert_eq!(body.customer_reference.as_deref(), Some(ids[1].as_str()));
    let made = w.state.fulfiller.create_fpr_shipment(&body).await.unwrap();
    assert_eq!(made.customer_reference.as_deref(), Some(ids[1].as_str()));
    assert_eq!(by_reference(&w, &ids[1]).await.len(), 1);
    assert!(by_reference(&w, &ids[0]).await.is_empty());

    // The next runs: the second adopts its own shipment, the first orders its own.
    w.process().await;
    assert_eq!(w.fulfiller_total().await, 2, "exactly one shipment each");
    for id in &ids {
        let got = w.state.store.get_request(id).await.unwrap().unwrap();
        assert_eq!(got.state.as_str(), "open", "{got:?}");
        let found = by_reference(&w, id).await;
        assert_eq!(found.len(), 1, "one shipment carries {id}");
        assert_eq!(
            got.shipment_id.as_deref(),
            found[0]["shipment_id"].as_str(),
            "each request owns the shipment with its own reference"
        );
    }
    assert_eq!(
        w.state
            .store
            .get_request(&ids[1])
            .await
            .unwrap()
            .unwrap()
            .shipment_id
            .as_deref(),
        Some(made.shipment_id.as_str())
    );

    // Each request's response key opens its own shipment's responses.
    w.advance().await;
    w.advance().await;
    let sum = w.process().await;
    assert_eq!(sum["data"]["completed"], 2, "{sum}");
    assert_eq!(w.fulfiller_total().await, 2);
    assert_eq!(w.entra.registered_methods().len(), 2);
}

/// The next run finds the lost create's shipment (`made`) without a reference, by
/// recipient and address, orders no second key, and the request then completes.
async fn matched_by_contact_then_completed(w: &World, id: &str, made: &Value) {
    w.process().await;
    let got = w.shipment(id).await;
    assert_eq!(got["state"], "open", "{got}");
    assert_eq!(got["shipment_id"], made["shipment_id"]);
    assert!(
        got["timeline"]
            .to_string()
            .contains("found the shipment an earlier attempt created"),
        "{got}"
    );
    assert_eq!(w.fulfiller_total().await, 1, "no second key was ordered");

    w.advance().await;
    w.advance().await;
    let sum = w.process().await;
    assert_eq!(sum["data"]["completed"], 1, "{sum}");
}

#[tokio::test]
async fn the_fulfiller_refuses_a_reference_longer_than_50_characters() {
    let w = start().await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let id = w
        .state
        .store
        .by_shipment(v["data"]["shipment_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let row = w.state.store.get_request(&id).await.unwrap().unwrap();
    let mut body: yubienterprise::fpr::CreateFprShipment =
        serde_json::from_str(&row.create_body).unwrap();
    body.customer_reference = Some("x".repeat(51));
    let e = w
        .state
        .fulfiller
        .create_fpr_shipment(&body)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("Customer Reference") && text.contains("50"),
        "{text}"
    );
}

/// A request left in "creating" by a lost answer.
async fn lost(w: &World) -> String {
    set_drop(w, 1.0).await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 503, "{v}");
    set_drop(w, 0.0).await;
    v["error_data"]["request_id"].as_str().unwrap().to_owned()
}

async fn delete(w: &World, id: &str) -> (u16, Value) {
    w.call(Method::DELETE, &format!("/v1/fpr/shipments/{id}"), None)
        .await
}

#[tokio::test]
async fn deleting_a_request_still_creating_cancels_the_shipment_the_lost_call_made() {
    let w = start().await;
    // The fulfiller's transport keys are known before it stops answering.
    w.state.transport_key().await.unwrap();
    let id = lost(&w).await;
    // The lost call did reach the fulfiller.
    let row = w.state.store.get_request(&id).await.unwrap().unwrap();
    let body: yubienterprise::fpr::CreateFprShipment =
        serde_json::from_str(&row.create_body).unwrap();
    let made = w.state.fulfiller.create_fpr_shipment(&body).await.unwrap();
    assert_eq!(w.fulfiller_total().await, 1);

    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "the cancel is recorded: {v}");
    assert_eq!(v["data"]["state"], "cancelling");
    w.process().await;
    let got = w.shipment(&id).await;
    assert_eq!(got["state"], "deleted", "{got}");
    assert_eq!(got["shipment_id"], made.shipment_id.as_str());
    let notes = got["timeline"].to_string();
    assert!(notes.contains("deleted at the fulfiller"), "{notes}");
    let e = w
        .state
        .fulfiller
        .get_fpr_shipment(made.shipment_id.as_str())
        .await
        .unwrap_err();
    assert!(
        matches!(e, yubienterprise::ClientError::Api { status: 404, .. }),
        "{e}"
    );
    assert_eq!(w.fulfiller_total().await, 0, "no key ships");
    // Nothing more happens on later runs.
    w.process().await;
    assert_eq!(w.fulfiller_total().await, 0);
}

#[tokio::test]
async fn deleting_a_request_still_creating_whose_call_never_arrived_orders_nothing() {
    let w = start().await;
    // The fulfiller's transport keys are known before it stops answering.
    w.state.transport_key().await.unwrap();
    let id = lost(&w).await;
    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    w.process().await;
    let got = w.shipment(&id).await;
    assert_eq!(got["state"], "deleted", "{got}");
    assert_eq!(got["shipment_id"], Value::Null);
    assert_eq!(w.fulfiller_total().await, 0, "nothing was ordered");
}

const DIEGO: &str = "e20b6389-79c1-517b-96c2-51e4d70e0724";

/// The fulfiller's fault switches, replaced as a whole.
async fn set_faults(w: &World, faults: Value) {
    let r = w
        .http
        .put(format!("{}/sandbox/v1/faults", w.fulfiller))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// Every shipment at the fulfiller.
async fn all_shipments(w: &World) -> Vec<Value> {
    let r: Value = w
        .http
        .get(format!("{}/v1/shipments_exact", w.fulfiller))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["shipments"].as_array().unwrap().clone()
}

/// Against a fulfiller that does not know `customer_reference`, a create is carried out
/// but its answer (and every lookup's) is lost: the API answers 503 and keeps the
/// request in "creating". Returns its id.
async fn lost_answer_without_reference(w: &World, body: Value) -> String {
    set_faults(
        w,
        json!({"ignore_customer_reference": true, "drop_after_rate": 1.0}),
    )
    .await;
    let (s, v) = w.call(Method::POST, "/v1/fprRequest", Some(body)).await;
    assert_eq!(s, 503, "{v}");
    set_faults(w, json!({"ignore_customer_reference": true})).await;
    v["error_data"]["request_id"].as_str().unwrap().to_owned()
}

async fn ready(w: &World) {
    // The fulfiller's transport keys are known before it stops answering.
    w.state.transport_key().await.unwrap();
}

#[tokio::test]
async fn a_fulfiller_that_ignores_the_reference_still_gets_one_shipment_after_a_lost_answer() {
    let w = start().await;
    ready(&w).await;
    let id = lost_answer_without_reference(&w, guide_request(ALEX)).await;
    let made = all_shipments(&w).await;
    assert_eq!(made.len(), 1, "the lost create did reach the fulfiller");
    assert_eq!(
        made[0]["customer_reference"],
        Value::Null,
        "it kept no reference"
    );
    assert_eq!(
        w.state
            .store
            .get_request(&id)
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "creating"
    );

    // The next run cannot find it by reference (the fulfiller ignores the search and
    // answers shipments without one) and matches recipient and address instead.
    matched_by_contact_then_completed(&w, &id, &made[0]).await;
    assert_eq!(w.fulfiller_total().await, 1);
    assert_eq!(w.entra.registered_methods().len(), 1);
}

#[tokio::test]
async fn the_fallback_match_does_not_swap_two_users_at_different_addresses() {
    let w = start().await;
    ready(&w).await;
    let alex = guide_request(ALEX);
    let mut diego = guide_request(DIEGO);
    let r = &mut diego["yubico_shipment_request"];
    r["recipient"]["recipient_email"] = json!("diegos@contoso.example");
    r["recipient"]["recipient_firstname"] = json!("Diego");
    r["recipient"]["recipient_lastname"] = json!("Siciliani");
    // Another street in the same town: the postal code (the fallback's search) is
    // the same, so only the comparison of recipient and address tells them apart.
    r["mailing_address"]["street_line1"] = json!("12 Elm Street");
    r["mailing_address"]["street_line2"] = json!("");

    let ids = [
        lost_answer_without_reference(&w, alex.clone()).await,
        lost_answer_without_reference(&w, diego.clone()).await,
    ];
    assert_eq!(all_shipments(&w).await.len(), 2);
    // Diego's request is reconciled first, while Alex's shipment (the older one) is
    // still unowned: a match that looked at anything but recipient and address would
    // take it.
    w.state
        .store
        .schedule(&ids[1], connector::store::now() - 100)
        .await
        .unwrap();

    w.process().await;
    assert_eq!(w.fulfiller_total().await, 2, "exactly one shipment each");
    let mut owned = Vec::new();
    for (id, body) in ids.iter().zip([&alex, &diego]) {
        let got = w.shipment(id).await;
        assert_eq!(got["state"], "open", "{got}");
        let sid = got["shipment_id"].as_str().unwrap();
        let s = w.state.fulfiller.get_fpr_shipment(sid).await.unwrap();
        let want = &body["yubico_shipment_request"];
        assert_eq!(
            (
                s.recipient.recipient_lastname.as_str(),
                s.mailing_address.street_line1.as_str()
            ),
            (
                want["recipient"]["recipient_lastname"].as_str().unwrap(),
                want["mailing_address"]["street_line1"].as_str().unwrap()
            ),
            "request {id} owns the shipment sent to its own user"
        );
        owned.push(sid.to_owned());
    }
    assert_ne!(owned[0], owned[1]);

    // Each key's responses open with its own request's key and register for its user.
    w.advance().await;
    w.advance().await;
    let sum = w.process().await;
    assert_eq!(sum["data"]["completed"], 2, "{sum}");
    let mut users: Vec<String> = w
        .entra
        .registered_methods()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    users.sort();
    let mut want = vec![ALEX.to_owned(), DIEGO.to_owned()];
    want.sort();
    assert_eq!(users, want);
    assert_eq!(w.fulfiller_total().await, 2);
}

#[tokio::test]
async fn on_a_fulfiller_that_ignores_the_reference_a_cancel_while_creating_deletes_the_match() {
    let w = start().await;
    ready(&w).await;
    let id = lost_answer_without_reference(&w, guide_request(ALEX)).await;
    let made = all_shipments(&w).await;
    assert_eq!(made.len(), 1);
    let (s, v) = delete(&w, &id).await;
    assert_eq!(s, 202, "{v}");
    w.process().await;
    let got = w.shipment(&id).await;
    assert_eq!(got["state"], "deleted", "{got}");
    assert_eq!(got["shipment_id"], made[0]["shipment_id"]);
    assert_eq!(w.fulfiller_total().await, 0, "no key ships");
}

#[tokio::test]
async fn a_fulfiller_that_refuses_the_reference_search_still_gets_one_shipment_after_a_lost_answer()
{
    let w = start().await;
    ready(&w).await;
    // The create is carried out but its answer is lost; the fulfiller keeps no
    // reference and answers a search by it 400.
    set_faults(
        &w,
        json!({"refuse_customer_reference": true, "drop_after_rate": 1.0}),
    )
    .await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 503, "{v}");
    let id = v["error_data"]["request_id"].as_str().unwrap().to_owned();
    set_faults(&w, json!({"refuse_customer_reference": true})).await;
    let made = all_shipments(&w).await;
    assert_eq!(made.len(), 1, "the lost create did reach the fulfiller");
    assert_eq!(made[0]["customer_reference"], Value::Null);
    let (s, _) = w
        .call(Method::GET, &format!("/v1/fpr/shipments/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(w.shipment(&id).await["state"], "creating");

    // The next run's search by reference is refused: it matches recipient and address.
    matched_by_contact_then_completed(&w, &id, &made[0]).await;
    assert_eq!(w.shipment(&id).await["state"], "complete");
    assert_eq!(w.fulfiller_total().await, 1);
    let methods = w.entra.registered_methods();
    assert_eq!(methods.len(), 1);
    assert_eq!(methods[0].user_id, ALEX);
}
