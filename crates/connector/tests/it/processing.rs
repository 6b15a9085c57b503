//! Processing against the fulfiller sandbox: tampered responses, injected faults, and
//! exactly one shipment per request across a lost answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::pg;
use common::{ALEX, World, guide_request, start, start_with};
use connector::store::Store;
use reqwest::Method;
use sandbox::fulfiller::program::{Order, ProgramError, Programmed, Programmer};
use serde_json::{Value, json};
use sqlx::Row;
use std::sync::Arc;

async fn set_faults(w: &World, f: Value) {
    let r = w
        .http
        .put(format!("{}/sandbox/v1/faults", w.fulfiller))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .json(&f)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// Programs keys like the sandbox, then flips one character of the credential
/// response's ciphertext: the connector must refuse it.
struct Tampering(Arc<dyn Programmer>);

impl Programmer for Tampering {
    fn program(&self, order: &Order<'_>) -> Result<Programmed, ProgramError> {
        let mut p = self.0.program(order)?;
        let jwe = &mut p.product_data.fido_credential_responses[0];
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        let ct = &mut parts[3];
        let mid = ct.len() / 2;
        let c = if &ct[mid..=mid] == "A" { "B" } else { "A" };
        ct.replace_range(mid..=mid, c);
        *jwe = parts.join(".");
        Ok(p)
    }
}

#[tokio::test]
async fn a_tampered_fulfiller_response_ends_in_error_and_nothing_is_registered() {
    let mut config = sandbox::Config::for_tests();
    config.programmer = Arc::new(Tampering(sandbox::default_programmer()));
    let w = start_with(config, None).await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    w.advance().await;
    w.advance().await;
    let sum = w.process().await;
    assert_eq!(sum["data"]["errors"], 1, "{sum}");
    let got = w.shipment(&sid).await;
    assert_eq!(got["state"], "error");
    let msg = got["last_error"].as_str().unwrap();
    assert!(
        msg.contains("step open credential response") && msg.contains("nothing was registered"),
        "{msg}"
    );
    assert!(w.entra.registered_methods().is_empty());
    assert!(w.pins.lock().unwrap().is_empty());
}

fn request_for(i: usize) -> Value {
    let mut b = guide_request(ALEX);
    b["yubico_shipment_request"]["recipient"]["recipient_lastname"] = json!(format!("Wilber{i}"));
    b["yubico_shipment_request"]["mailing_address"]["postal_code"] = json!(format!("0202{i}"));
    b
}

#[tokio::test]
async fn with_500s_429s_and_dropped_connections_every_request_still_completes_once() {
    let w = start().await;
    set_faults(&w, json!({"error_rate": 0.25, "rate_limit_rate": 0.15, "retry_after_secs": 0, "latency_ms": 0, "drop_rate": 0.15})).await;
    let token = w.token().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        // A client retries a 503 with the same Idempotency-Key until the request is kept.
        for _ in 0..20 {
            let (s, v) = w
                .call_as(
                    &token,
                    Method::POST,
                    "/v1/fprRequest",
                    Some(request_for(i)),
                    Some(&format!("k{i}")),
                )
                .await;
            let id = match s {
                201 => v["data"]["request_id"].as_str(),
                503 => v["error_data"]["request_id"]
                    .as_str()
                    .filter(|s| !s.is_empty()),
                _ => panic!("{s} {v}"),
            };
            if let Some(id) = id {
                ids.push(id.to_owned());
                break;
            }
        }
    }
    assert_eq!(ids.len(), 4);
    for _ in 0..60 {
        w.advance().await;
        let (s, _) = w
            .call_as(
                &token,
                Method::POST,
                "/v1/fpr/shipments/process?wait=120",
                None,
                None,
            )
            .await;
        if s != 200 {
            continue;
        }
        let mut done = 0;
        for id in &ids {
            if w.state
                .store
                .get_request(id)
                .await
                .unwrap()
                .unwrap()
                .state
                .as_str()
                == "complete"
            {
                done += 1;
            }
        }
        if done == ids.len() {
            break;
        }
    }
    for id in &ids {
        let r = w.state.store.get_request(id).await.unwrap().unwrap();
        assert_eq!(r.state.as_str(), "complete", "{r:?}");
    }
    set_faults(
        &w,
        json!({"error_rate": 0.0, "rate_limit_rate": 0.0, "latency_ms": 0, "drop_rate": 0.0}),
    )
    .await;
    assert_eq!(
        w.fulfiller_total().await,
        4,
        "exactly one shipment per request"
    );
    assert_eq!(w.entra.registered_methods().len(), 4);
    assert_eq!(w.pins.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_shipment_created_but_not_recorded_is_found_not_ordered_again() {
    let w = start().await;
    // The fulfiller's transport keys are known before it stops answering.
    w.state.transport_key().await.unwrap();
    // The fulfiller stops answering: the request is kept in "creating".
    set_faults(
        &w,
        json!({"error_rate": 0.0, "rate_limit_rate": 0.0, "latency_ms": 0, "drop_rate": 1.0}),
    )
    .await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 503, "{v}");
    let id = v["error_data"]["request_id"].as_str().unwrap().to_owned();
    let row = w.state.store.get_request(&id).await.unwrap().unwrap();
    assert_eq!(row.state.as_str(), "creating");
    set_faults(
        &w,
        json!({"error_rate": 0.0, "rate_limit_rate": 0.0, "latency_ms": 0, "drop_rate": 0.0}),
    )
    .await;
    // As if the lost call had reached the fulfiller: the shipment exists, unrecorded.
    let body: yubienterprise::fpr::CreateFprShipment =
        serde_json::from_str(&row.create_body).unwrap();
    let made = w.state.fulfiller.create_fpr_shipment(&body).await.unwrap();
    // The next run finds it instead of ordering a second key.
    w.process().await;
    let got = w.state.store.get_request(&id).await.unwrap().unwrap();
    assert_eq!(got.state.as_str(), "open");
    assert_eq!(got.shipment_id.as_deref(), Some(made.shipment_id.as_str()));
    assert_eq!(w.fulfiller_total().await, 1);
    w.advance().await;
    w.advance().await;
    w.process().await;
    assert_eq!(
        w.state
            .store
            .get_request(&id)
            .await
            .unwrap()
            .unwrap()
            .state
            .as_str(),
        "complete"
    );
    assert_eq!(w.fulfiller_total().await, 1);
}

/// Waits until `n` sessions on this database wait for a lock (a row lock the test
/// holds), so that the test knows where they stand.
async fn wait_for_lock_waiters(pg: &pg::TestDb, n: i64) {
    for _ in 0..3000 {
        let waiting: i64 = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind(&pg.name)
        .fetch_one(&pg.admin)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        if waiting >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{n} sessions never waited for the row lock");
}

/// A request left in "creating" by a lost answer (the call never reached the
/// fulfiller), on a connector that is ready.
async fn lost_create(w: &World) -> String {
    // The fulfiller's transport keys are known before it stops answering.
    w.state.transport_key().await.unwrap();
    set_faults(w, json!({"drop_rate": 1.0})).await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 503, "{v}");
    set_faults(w, json!({})).await;
    v["error_data"]["request_id"].as_str().unwrap().to_owned()
}

/// The worker has the fulfiller's answer (the shipment exists) and is about to record
/// it when the request's state changes to `moved_to`: the test holds the request's row,
/// waits until the worker's write waits for it, and commits `moved_to` first.
async fn state_moves_while_the_shipment_is_recorded(moved_to: &str, note: &str) {
    let pg = pg::TestDb::create("prereg_race").await;
    {
        let w = start_with(sandbox::Config::for_tests(), Some(pg.url.clone())).await;
        let id = lost_create(&w).await;
        assert_eq!(w.fulfiller_total().await, 0);

        let holder = sqlx::AnyPool::connect(&pg.url).await.unwrap();
        let mut tx = holder.begin().await.unwrap();
        sqlx::query("SELECT id FROM requests WHERE id = $1 FOR UPDATE")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let (sum, ()) = tokio::join!(w.process(), async {
            wait_for_lock_waiters(&pg, 1).await;
            assert_eq!(w.fulfiller_total().await, 1, "the shipment was created");
            // Written as the connector writes it: only from "creating".
            let t = connector::store::now();
            sqlx::query("UPDATE requests SET state = $2, last_error = NULL, updated_at = $3 WHERE id = $1 AND state = 'creating'")
                .bind(&id)
                .bind(moved_to)
                .bind(t)
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO request_history (request_id, at, state, note) VALUES ($1, $2, $3, $4)",
            )
            .bind(&id)
            .bind(t)
            .bind(moved_to)
            .bind(note)
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
        });
        assert_eq!(sum["data"]["processed"], 1, "{sum}");

        let got = w.shipment(&id).await;
        assert_eq!(got["state"], "deleted", "the cancel is not lost: {got}");
        let sid = got["shipment_id"]
            .as_str()
            .expect("the shipment is recorded");
        let e = w.state.fulfiller.get_fpr_shipment(sid).await.unwrap_err();
        assert!(
            matches!(e, yubienterprise::ClientError::Api { status: 404, .. }),
            "{e}"
        );
        assert_eq!(w.fulfiller_total().await, 0, "no key ships");
        let notes = got["timeline"].to_string();
        assert!(notes.contains(note), "{notes}");
        assert!(
            notes.contains(&format!("shipment {sid} deleted at the fulfiller")),
            "{notes}"
        );
        // Nothing more happens on later runs.
        w.process().await;
        assert_eq!(w.shipment(&id).await["state"], "deleted");
        assert_eq!(w.fulfiller_total().await, 0);
        holder.close().await;
        w.state.store.close().await;
    }
    pg.drop_db().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_landing_while_the_created_shipment_is_recorded_deletes_the_shipment() {
    state_moves_while_the_shipment_is_recorded(
        "cancelling",
        "cancel requested by an admin while the shipment was being created",
    )
    .await;
}

/// The cancel already ran (it looked the shipment up before the fulfiller had it, and
/// marked the request deleted) when the create's answer is recorded: the late shipment
/// is deleted too.
#[tokio::test(flavor = "multi_thread")]
async fn a_shipment_created_after_the_cancel_finished_is_deleted_too() {
    state_moves_while_the_shipment_is_recorded(
        "deleted",
        "cancelled by an admin before the shipment was created",
    )
    .await;
}

/// The admin's DELETE reads the request while it is still "creating", and the worker
/// records the shipment before the DELETE writes: the DELETE sees the shipment and
/// cancels it at the fulfiller there and then.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_racing_the_worker_that_records_the_shipment_cancels_it_at_once() {
    let pg = pg::TestDb::create("prereg_race").await;
    {
        let w = start_with(sandbox::Config::for_tests(), Some(pg.url.clone())).await;
        let id = lost_create(&w).await;

        let holder = sqlx::AnyPool::connect(&pg.url).await.unwrap();
        let mut tx = holder.begin().await.unwrap();
        sqlx::query("SELECT id FROM requests WHERE id = $1 FOR UPDATE")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let path = format!("/v1/fpr/shipments/{id}");
        let (sum, (status, deleted), ()) = tokio::join!(
            w.process(),
            async {
                // The worker waits to record the shipment before the DELETE starts.
                wait_for_lock_waiters(&pg, 1).await;
                w.call(Method::DELETE, &path, None).await
            },
            async {
                wait_for_lock_waiters(&pg, 2).await;
                tx.rollback().await.unwrap();
            }
        );
        assert_eq!(sum["data"]["processed"], 1, "{sum}");
        assert_eq!(
            status, 200,
            "cancelled at the fulfiller, not deferred: {deleted}"
        );
        assert_eq!(deleted["data"]["state"], "deleted", "{deleted}");
        let sid = deleted["data"]["shipment_id"].as_str().unwrap();
        let e = w.state.fulfiller.get_fpr_shipment(sid).await.unwrap_err();
        assert!(
            matches!(e, yubienterprise::ClientError::Api { status: 404, .. }),
            "{e}"
        );
        assert_eq!(w.fulfiller_total().await, 0, "no key ships");
        w.process().await;
        assert_eq!(w.shipment(&id).await["state"], "deleted");
        holder.close().await;
        w.state.store.close().await;
    }
    pg.drop_db().await;
}

#[tokio::test]
async fn the_flow_runs_on_postgresql_too() {
    let pg = pg::TestDb::create("prereg_flow").await;
    {
        let w = start_with(sandbox::Config::for_tests(), Some(pg.url.clone())).await;
        let (s, v) = w
            .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
            .await;
        assert_eq!(s, 201, "{v}");
        let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
        w.advance().await;
        w.advance().await;
        w.process().await;
        assert_eq!(w.shipment(&sid).await["state"], "complete");
        w.state.store.close().await;
    }
    pg.drop_db().await;
}
