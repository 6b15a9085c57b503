//! An admin acting on a request while a worker processes it: the worker's writes are
//! compare-and-set on the state it read, so a DELETE or a retry that lands while the
//! worker polls is never overwritten. The fulfiller sandbox holds the worker's poll
//! (`/sandbox/v1/holds/{id}`: the shipment is read, the answer sent only when the test
//! releases it), so the order is fixed: worker reads, admin acts, worker writes. On
//! SQLite and PostgreSQL, in Entra mode and (DELETE) in Okta mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common;
use crate::pg;
// The Entra-mode world, through the Okta one (which includes it).
use connector::runner::Processed as RunSummary;
use okta_common::common::{ALEX, World, guide_request, start_with};
use reqwest::Method;
use serde_json::{Value, json};

/// Runs `test` against a connector on SQLite, then on a throwaway PostgreSQL database.
async fn on_both(test: impl AsyncFn(&World)) {
    let w = start_with(sandbox::Config::for_tests(), None).await;
    test(&w).await;
    let pg = pg::TestDb::create("prereg_races").await;
    {
        let w = start_with(sandbox::Config::for_tests(), Some(pg.url.clone())).await;
        test(&w).await;
    }
    pg.drop_db().await;
}

/// A request whose shipment is created and recorded (`open`). Returns (request id,
/// shipment id).
async fn open_request(w: &World) -> (String, String) {
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert!(s == 200 || s == 201, "{s} {v}");
    let id = v["request_id"]
        .as_str()
        .or_else(|| v["data"]["request_id"].as_str())
        .unwrap_or_else(|| panic!("no request id in {v}"))
        .to_owned();
    let got = w.shipment(&id).await;
    assert_eq!(got["state"], "open", "{got}");
    (id, got["shipment_id"].as_str().unwrap().to_owned())
}

/// Starts a processing run whose poll of `sid` is held at the fulfiller, and returns
/// once the worker has read the shipment and waits for the answer.
async fn worker_holding(w: &World, sid: &str) -> tokio::task::JoinHandle<RunSummary> {
    let hold = format!("/sandbox/v1/holds/{sid}");
    let v = w.fulfiller_call(Method::PUT, &hold, None).await;
    assert_eq!(v["hold"], "armed", "{v}");
    let state = w.state.clone();
    let worker = tokio::spawn(async move {
        connector::runner::process_and_wait(&state, std::time::Duration::from_secs(120))
            .await
            .unwrap()
    });
    for _ in 0..3000 {
        if w.fulfiller_call(Method::GET, &hold, None).await["hold"] == "waiting" {
            return worker;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the worker never polled shipment {sid}");
}

/// Sends the held answer and waits for the run to end.
async fn release(w: &World, sid: &str, worker: tokio::task::JoinHandle<RunSummary>) {
    let v = w
        .fulfiller_call(Method::DELETE, &format!("/sandbox/v1/holds/{sid}"), None)
        .await;
    assert_eq!(v["hold"], "waiting", "{v}");
    worker.await.unwrap();
}

fn notes(v: &Value) -> Vec<String> {
    v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}: {}", t["state"], t["note"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_while_the_worker_polls_is_not_undone_by_the_worker() {
    on_both(async |w: &World| {
        let (id, sid) = open_request(w).await;
        // The fulfiller validates the address: the worker's poll sees a new state and
        // wants to record it.
        w.advance().await;
        let worker = worker_holding(w, &sid).await;

        // The admin deletes the request while the worker holds the old answer.
        let (s, v) = w
            .call(Method::DELETE, &format!("/v1/fpr/shipments/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["data"]["state"], "deleted", "{v}");
        let gone = w.state.fulfiller.get_fpr_shipment(&sid).await.unwrap_err();
        assert_eq!(gone.status(), Some(404), "the shipment is cancelled");

        // The worker's write, computed from "open", does not bring it back.
        release(w, &sid, worker).await;
        let got = w.shipment(&id).await;
        assert_eq!(got["state"], "deleted", "{got}");
        let timeline = notes(&got);
        assert_eq!(
            timeline.last().unwrap(),
            "\"deleted\": \"deleted by an admin\"",
            "{timeline:?}"
        );
        assert!(
            !timeline.iter().any(|n| n.contains("fulfiller state")),
            "{timeline:?}"
        );

        // Later runs leave it deleted and order nothing.
        w.advance().await;
        w.process().await;
        let got = w.shipment(&id).await;
        assert_eq!(got["state"], "deleted", "{got}");
        let all = w
            .state
            .fulfiller
            .list_shipments_exact(&yubienterprise::ListQuery::default())
            .await
            .unwrap();
        assert!(
            all.shipments.iter().all(|s| s.shipment_id.as_str() != sid),
            "the shipment is gone at the fulfiller"
        );
        assert_eq!(w.entra.registered_methods().len(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_while_the_worker_polls_is_refused_until_the_worker_records_its_verdict() {
    on_both(async |w: &World| {
        let (id, sid) = open_request(w).await;
        // The fulfiller finds the address undeliverable.
        w.fulfiller_call(
            Method::POST,
            "/sandbox/v1/advance",
            Some(json!({"shipment_id": sid, "to_state": 7})),
        )
        .await;
        let worker = worker_holding(w, &sid).await;

        // The admin's retry lands while the worker holds the error answer: the request
        // is still open, so nothing is changed, and the answer says so.
        let retry = format!("/v1/fpr/shipments/{id}/retry");
        let (s, v) = w.call(Method::POST, &retry, None).await;
        assert_eq!(s, 409, "{v}");
        assert!(v.to_string().contains("open"), "{v}");

        // The worker records the error it read.
        release(w, &sid, worker).await;
        let got = w.shipment(&id).await;
        assert_eq!(got["state"], "error", "{got}");

        // Now the retry is accepted, and the retried request is processed: the worker
        // polls the shipment again (the admin has not corrected the address, so it is
        // back in error, the fulfiller's reason recorded after the retry). The retry
        // wakes the runner itself, which may poll before `process` asks it to: the
        // runner's totals across both count that run wherever it happened.
        let before = w.state.runner.totals();
        let (s, v) = w.call(Method::POST, &retry, None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["data"]["state"], "open", "{v}");
        w.process().await;
        let run = w.state.runner.totals().since(&before);
        assert_eq!(run.errors, 1, "{run:?}");
        let got = w.shipment(&id).await;
        assert_eq!(got["state"], "error", "{got}");
        let timeline = notes(&got);
        let at = timeline
            .iter()
            .position(|n| n.contains("retried by an admin"))
            .unwrap();
        assert_eq!(timeline.len(), at + 2, "{timeline:?}");
        assert!(timeline[at + 1].contains("error state 7"), "{timeline:?}");
    })
    .await;
}

/// Okta mode: a DELETE while the worker polls deletes the enrollment and the shipment,
/// and the worker's write does not bring the request back (before, it did, and the next
/// poll's 404 put it in error).
#[tokio::test(flavor = "multi_thread")]
async fn okta_a_delete_while_the_worker_polls_is_not_undone_by_the_worker() {
    let pg = pg::TestDb::create("prereg_races").await;
    for database_url in [None, Some(pg.url.clone())] {
        let w = okta_common::start_with(okta_common::Options {
            database_url,
            ..Default::default()
        })
        .await;
        let order = connector::okta::Order::from(&w.state.okta.as_ref().unwrap().config.groups[0]);
        let id = match connector::okta::start_request(&w.state, okta_common::BOB, order, "batch")
            .await
            .unwrap()
        {
            connector::okta::Started::Created(r) => r.id,
            other => panic!("{other:?}"),
        };
        w.process().await;
        let r = w.request(&id).await;
        assert_eq!(r["state"], "open", "{r}");
        let sid = r["shipment_id"].as_str().unwrap().to_owned();
        assert_eq!(w.enrollments(okta_common::BOB).await.len(), 1);
        w.advance().await;

        let hold = format!("/sandbox/v1/holds/{sid}");
        let (s, v) = w.fulfiller_call(Method::PUT, &hold, None).await;
        assert_eq!((s, &v["hold"]), (200, &json!("armed")));
        let state = w.state.clone();
        let worker = tokio::spawn(async move {
            connector::runner::process_and_wait(&state, std::time::Duration::from_secs(120))
                .await
                .unwrap()
        });
        let mut waiting = false;
        for _ in 0..3000 {
            if w.fulfiller_call(Method::GET, &hold, None).await.1["hold"] == "waiting" {
                waiting = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(waiting, "the worker never polled shipment {sid}");

        let (s, v) = w
            .call(Method::DELETE, &format!("/v1/fpr/shipments/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["data"]["state"], "deleted", "{v}");

        let (s, v) = w.fulfiller_call(Method::DELETE, &hold, None).await;
        assert_eq!((s, &v["hold"]), (200, &json!("waiting")));
        worker.await.unwrap();

        w.process().await;
        let r = w.request(&id).await;
        assert_eq!(r["state"], "deleted", "{r}");
        assert!(r["last_error"].is_null(), "{r}");
        assert!(w.fulfiller_shipments().await.is_empty(), "shipment left");
        assert!(w.enrollments(okta_common::BOB).await.is_empty());
    }
    pg.drop_db().await;
}
