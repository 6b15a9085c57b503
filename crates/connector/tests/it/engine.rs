//! The processing engine's promises under the faults real vendors produce, made
//! deterministic with the sandboxes' one-shot fault switches and holds (no timing):
//! a lost Graph answer still ends with the PIN delivered; a slow fulfiller still gets
//! exactly one shipment; a permanent mail refusal names its recipient and never mails
//! the one already served again; a retry backoff survives a cron tick; a request whose
//! vendor keeps failing ends in `error` after the attempt cap; a step that panics is
//! recorded and retried, and the runner carries on. Each on SQLite and PostgreSQL.

use crate::common::{ALEX, World, guide_request, start_full};
use crate::pg;
use connector::store::Store;
use reqwest::Method;
use sandbox::faults::{FaultKind, ScriptedFault};
use serde_json::{Value, json};

/// Short backoffs, so that [`World::settle`] sees retries through quickly.
const FAST: &str = "retry_base_seconds = 1\nretry_max_seconds = 1\n";

/// Runs `test` on a SQLite world and on a PostgreSQL one, each made by `world`.
async fn both<W, T>(world: W, test: T)
where
    W: AsyncFn(Option<String>) -> World,
    T: AsyncFn(World),
{
    test(world(None).await).await;
    let db = pg::TestDb::create("prereg_engine").await;
    test(world(Some(db.url.clone())).await).await;
    db.drop_db().await;
}

async fn order(w: &World, body: Value) -> (String, String) {
    let (s, v) = w.call(Method::POST, "/v1/fpr/shipments", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    (
        v["data"]["request_id"].as_str().unwrap().to_owned(),
        v["data"]["shipment_id"].as_str().unwrap().to_owned(),
    )
}

/// Graph registers the passkey and the answer is lost on the way back. The next run
/// finds the used challenge refused, sees the credential among the user's passkeys, and
/// goes on: the request completes and the PIN is delivered (it was sealed before
/// Graph was called).
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_graph_answer_still_completes_with_the_pin_delivered() {
    both(
        async |db| start_full(sandbox::Config::for_tests(), db, FAST, true).await,
        async |w| {
            let (id, _) = order(&w, guide_request(ALEX)).await;
            w.advance().await;
            w.advance().await;
            w.entra.faults().script([ScriptedFault::new(
                "POST",
                "/authentication/fido2Methods",
                FaultKind::DropAfter,
                1,
            )]);
            let got = w.settle(&id, &["complete", "error"]).await;
            assert_eq!(got["state"], "complete", "{got}");
            assert_eq!(w.entra.registered_methods().len(), 1, "one passkey");
            let pins = w.pins.lock().unwrap().clone();
            assert_eq!(pins.len(), 1, "the PIN delivered once: {pins:?}");
            assert_eq!(pins[0]["request_id"], id.as_str());
            assert!(w.entra.faults().get().script.is_empty(), "the fault fired");
        },
    )
    .await;
}

/// The fulfiller holds the API's create: meanwhile the cron tick and an admin's
/// "process now" run, and must not create the shipment a second time (the job is
/// leased to the API call). Exactly one shipment, and the request completes.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_fulfiller_gets_exactly_one_shipment() {
    both(
        async |db| start_full(sandbox::Config::for_tests(), db, FAST, true).await,
        async |w| {
            let hold = "/sandbox/v1/holds/create";
            let v = w.fulfiller_call(Method::PUT, hold, None).await;
            assert_eq!(v["hold"], "armed", "{v}");
            let (http, url, token) = (w.http.clone(), w.connector.clone(), w.token().await);
            let create = tokio::spawn(async move {
                let r = http
                    .post(format!("{url}/v1/fprRequest"))
                    .bearer_auth(token)
                    .json(&guide_request(ALEX))
                    .send()
                    .await
                    .unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            });
            let mut waiting = false;
            for _ in 0..3000 {
                if w.fulfiller_call(Method::GET, hold, None).await["hold"] == "waiting" {
                    waiting = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert!(waiting, "the create never reached the fulfiller");
            // The fulfiller is slow: a tick and an admin's "process now" come meanwhile.
            connector::runner::tick(&w.state).await.unwrap();
            let done = w.process().await;
            assert_eq!(done["data"]["processed"], 0, "nothing to take: {done}");
            w.fulfiller_call(Method::DELETE, hold, None).await;
            let (s, v) = create.await.unwrap();
            assert_eq!(s, 201, "{v}");
            let id = v["data"]["request_id"].as_str().unwrap().to_owned();
            w.advance().await;
            w.advance().await;
            let got = w.settle(&id, &["complete", "error"]).await;
            assert_eq!(got["state"], "complete", "{got}");
            assert_eq!(w.fulfiller_total().await, 1, "exactly one shipment");
        },
    )
    .await;
}

fn mails_to(w: &World, to: &str) -> usize {
    w.mail
        .messages()
        .iter()
        .filter(|m| m.to.iter().any(|t| t == to))
        .count()
}

/// The PIN goes to two recipients; the mail server refuses the second for good. The
/// request ends in `error` naming that recipient; neither the error, nor later ticks,
/// nor the fix and retry mail the first recipient again.
#[tokio::test(flavor = "multi_thread")]
async fn a_permanent_mail_refusal_names_the_recipient_and_spares_the_served_one() {
    const FIRST: &str = "first@contoso.example";
    const SECOND: &str = "second@contoso.example";
    both(
        // No webhook: the PIN is mailed to the sandbox's SMTP catcher.
        async |db| start_full(sandbox::Config::for_tests(), db, FAST, false).await,
        async |w| {
            let mut body = guide_request(ALEX);
            body["enrollment_contacts"] = json!({"emails_to": [FIRST, SECOND]});
            let (id, _) = order(&w, body).await;
            w.mail.refuse(SECOND, 550, None);
            w.advance().await;
            w.advance().await;
            let got = w.settle(&id, &["complete", "error"]).await;
            assert_eq!(got["state"], "error", "{got}");
            let why = got["last_error"].as_str().unwrap();
            assert!(why.contains(SECOND) && why.contains("for good"), "{why}");
            assert_eq!(mails_to(&w, FIRST), 1);
            assert_eq!(mails_to(&w, SECOND), 0);
            // Ticks and "process now" leave an error alone: no mail again.
            connector::runner::tick(&w.state).await.unwrap();
            w.process().await;
            assert_eq!(mails_to(&w, FIRST), 1);
            // The admin fixes the recipient's mailbox and retries: only the second is
            // served now.
            w.mail.accept_all();
            let (s, v) = w
                .call(Method::POST, &format!("/v1/fpr/shipments/{id}/retry"), None)
                .await;
            assert_eq!(s, 200, "{v}");
            let got = w.settle(&id, &["complete", "error"]).await;
            assert_eq!(got["state"], "complete", "{got}");
            assert_eq!((mails_to(&w, FIRST), mails_to(&w, SECOND)), (1, 1));
        },
    )
    .await;
}

/// The fulfiller fails every create of one API call: the request is kept, its job
/// waits out a backoff. A cron tick does not shorten it (nothing runs, nothing is
/// ordered); an admin's "process now" does, and the shipment is created once.
#[tokio::test(flavor = "multi_thread")]
async fn a_backoff_survives_a_cron_tick() {
    both(
        // The default backoff (30 s first): no test waits it out.
        async |db| start_full(sandbox::Config::for_tests(), db, "", true).await,
        async |w| {
            w.state.transport_key().await.unwrap();
            w.fulfiller_faults.script([ScriptedFault::new(
                "POST",
                "/v1/fpr/shipments",
                FaultKind::Error,
                4,
            )]);
            let (s, v) = w
                .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
                .await;
            assert_eq!(s, 503, "{v}");
            let id = v["error_data"]["request_id"].as_str().unwrap().to_owned();
            let before = w.state.runner.totals();
            assert_eq!(connector::runner::tick(&w.state).await.unwrap(), 0);
            assert!(
                w.state
                    .runner
                    .wait_idle(std::time::Duration::from_secs(60))
                    .await
            );
            assert_eq!(w.state.runner.totals().processed, before.processed);
            let row = w.state.store.get_request(&id).await.unwrap().unwrap();
            assert_eq!(row.state.as_str(), "creating");
            assert_eq!(w.fulfiller_total().await, 0, "nothing ordered by the tick");
            // "Process now" ends the backoff.
            let got = w.settle(&id, &["open"]).await;
            assert!(got["shipment_id"].is_string(), "{got}");
            assert_eq!(w.fulfiller_total().await, 1);
        },
    )
    .await;
}

/// A fulfiller that never answers: after `max_attempts` runs in a row failed, the
/// request goes to `error` naming the last failure, instead of retrying forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_whose_vendor_keeps_failing_ends_in_error_after_the_attempt_cap() {
    let extra = format!("{FAST}max_attempts = 2\n");
    let w = start_full(sandbox::Config::for_tests(), None, &extra, true).await;
    w.state.transport_key().await.unwrap();
    let mut f = w.fulfiller_faults.get();
    f.error_rate = 1.0;
    w.fulfiller_faults.set(f);
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 503, "{v}");
    let id = v["error_data"]["request_id"].as_str().unwrap().to_owned();
    let got = w.settle(&id, &["error"]).await;
    let why = got["last_error"].as_str().unwrap();
    assert!(why.contains("gave up after 2 attempts"), "{why}");
    w.fulfiller_faults.set(sandbox::faults::FaultConfig::none());
    assert_eq!(w.fulfiller_total().await, 0);
}

/// A step that panics (injected through the engine's `test-hooks` feature) is caught:
/// the panic is noted in the request's timeline, its job waits out a backoff, the other
/// request in the same run completes (the runner and its workers live on), and the next
/// run completes the one that panicked.
#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_step_is_recorded_and_retried_and_the_runner_carries_on() {
    both(
        async |db| start_full(sandbox::Config::for_tests(), db, "", true).await,
        async |w| {
            let (a, _) = order(&w, guide_request(ALEX)).await;
            let (b, _) = order(&w, guide_request("b21eea82-781f-5190-867f-c1f0357034f7")).await;
            w.advance().await;
            w.advance().await;
            w.state.runner.panic_next(&a);
            let before = w.state.runner.totals();
            w.process().await;
            let (got_a, got_b) = (w.shipment(&a).await, w.shipment(&b).await);
            assert_eq!(got_b["state"], "complete", "the other request: {got_b}");
            assert_ne!(got_a["state"], "complete", "{got_a}");
            assert_ne!(got_a["state"], "error", "a panic is retried: {got_a}");
            let noted = got_a["timeline"].as_array().unwrap().iter().any(|n| {
                n["note"]
                    .as_str()
                    .unwrap_or("")
                    .contains("processing failed unexpectedly (a panic injected by a test)")
            });
            assert!(noted, "{got_a}");
            let run = w.state.runner.totals().since(&before);
            assert_eq!((run.retries, run.completed), (1, 1), "{run:?}");
            // The retry's backoff (30 s by default) is ended by an admin's process now.
            w.process().await;
            let got_a = w.shipment(&a).await;
            assert_eq!(got_a["state"], "complete", "{got_a}");
            assert_eq!(w.pins.lock().unwrap().len(), 2, "both PINs delivered once");
        },
    )
    .await;
}

/// The cron tick does not poll each waiting request: with more waiting than the
/// fulfiller states it lists, it reads the fulfiller's list of FIDO Pre-reg shipments
/// in the states a request acts on and runs only the requests whose shipment is there.
/// Of 12 waiting requests, the 2 the fulfiller put in error run (and go to `error`);
/// the other 10 are not polled.
#[tokio::test(flavor = "multi_thread")]
async fn the_cron_tick_runs_only_the_requests_the_fulfillers_list_shows_moved() {
    let mut entra = sandbox::entra::TenantSeed::default();
    entra
        .users
        .extend((0..12).map(crate::faults_batch::entra_user));
    let w = crate::okta_common::start_with(crate::okta_common::Options {
        entra_seed: Some(entra),
        ..Default::default()
    })
    .await;
    let mut orders = Vec::new();
    for i in 0..12 {
        let user = format!("fa000000-0000-4000-8000-{i:012}");
        let (s, v) = w
            .call(
                Method::POST,
                "/v1/fpr/shipments",
                Some(guide_request(&user)),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        orders.push((
            v["data"]["request_id"].as_str().unwrap().to_owned(),
            v["data"]["shipment_id"].as_str().unwrap().to_owned(),
        ));
    }
    for (_, sid) in &orders[..2] {
        w.fulfiller_call(
            Method::POST,
            "/sandbox/v1/advance",
            Some(json!({"shipment_id": sid, "to_state": 7})),
        )
        .await;
    }
    let before = w.state.runner.totals();
    assert_eq!(connector::runner::tick(&w.state).await.unwrap(), 2);
    assert!(
        w.state
            .runner
            .wait_idle(std::time::Duration::from_secs(60))
            .await
    );
    let run = w.state.runner.totals().since(&before);
    assert_eq!((run.processed, run.errors), (2, 2), "{run:?}");
    for (i, (id, _)) in orders.iter().enumerate() {
        let row = w.state.store.get_request(id).await.unwrap().unwrap();
        let want = if i < 2 { "error" } else { "open" };
        assert_eq!(row.state.as_str(), want, "order {i}");
    }
}
