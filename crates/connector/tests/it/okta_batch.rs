//! A batch of 50 Okta users processed by several workers at once: one shipment per
//! user with a full profile, no duplicates, every request in an end state, and the
//! users with missing profile fields in `error` naming the fields. Once on SQLite and
//! once on PostgreSQL (127.0.0.1:5432, as the other store tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common;
use crate::pg;

use okta_common::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const USERS: usize = 50;
const MISSING_EVERY: usize = 5; // users 0, 5, 10, ... lack street address and phone

async fn run_batch(database_url: Option<String>) {
    let mut seed = sandbox::okta::seed::OrgSeed::default();
    let users: Vec<okta::User> = (0..USERS)
        .map(|n| seed_user(n, n % MISSING_EVERY != 0))
        .collect();
    seed.users.extend(users.iter().cloned());
    let w = Arc::new(
        start_with(Options {
            approval: "auto",
            seed: Some(seed),
            database_url,
            ..Default::default()
        })
        .await,
    );

    // One batch call, with one user named twice (by login and by id).
    let mut list: Vec<Value> = users.iter().map(|u| json!(u.profile.login)).collect();
    list.push(json!(users[7].id));
    let (s, v) = w
        .call(Method::POST, "/v1/okta/batch", Some(json!({"users": list})))
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["created"], USERS);
    let results = v["data"].as_array().unwrap();
    assert_eq!(results.len(), USERS + 1);
    assert_eq!(results[USERS]["status"], "already_open", "{v}");

    // Several workers at once, the fulfiller advancing between rounds, until every
    // request is in an end state.
    let mut done = false;
    for _ in 0..20 {
        let mut workers = Vec::new();
        for _ in 0..4 {
            let w = w.clone();
            workers.push(tokio::spawn(async move { w.process().await }));
        }
        for t in workers {
            t.await.unwrap();
        }
        let table = w.table().await;
        if table
            .iter()
            .all(|r| matches!(r["state"].as_str(), Some("complete" | "error")))
        {
            done = true;
            break;
        }
        w.advance().await;
    }
    assert!(done, "requests left without an end state");

    let table = w.table().await;
    assert_eq!(table.len(), USERS, "one request per user");
    let by_user: HashMap<String, &Value> = table
        .iter()
        .map(|r| (r["user_id"].as_str().unwrap().to_owned(), r))
        .collect();
    assert_eq!(by_user.len(), USERS);
    let mut shipments = HashSet::new();
    for (n, u) in users.iter().enumerate() {
        let r = by_user[&u.id];
        if n % MISSING_EVERY == 0 {
            assert_eq!(r["state"], "error", "{r}");
            assert_eq!(r["table_state"], "error");
            let e = r["last_error"].as_str().unwrap();
            assert!(
                e.contains("streetAddress") && e.contains("primaryPhone"),
                "{e}"
            );
            assert!(r["shipment_id"].is_null());
        } else {
            assert_eq!(r["state"], "complete", "{r}");
            assert_eq!(r["table_state"], "complete");
            assert!(shipments.insert(r["shipment_id"].as_str().unwrap().to_owned()));
        }
    }
    let complete = USERS - USERS.div_ceil(MISSING_EVERY);
    assert_eq!(shipments.len(), complete);
    // The fulfiller holds exactly those shipments: none twice, none extra.
    let at_fulfiller: Vec<String> = w
        .fulfiller_shipments()
        .await
        .iter()
        .map(|s| s["shipment_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(at_fulfiller.len(), complete, "no duplicate shipments");
    assert_eq!(at_fulfiller.into_iter().collect::<HashSet<_>>(), shipments);
    // One PIN mail per shipped key, each to its user.
    let mail = w.mail.messages();
    assert_eq!(mail.len(), complete);
    let to: HashSet<String> = mail.iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(to.len(), complete);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_50_users_on_sqlite_ends_with_one_shipment_each_and_no_request_left_open() {
    run_batch(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_50_users_on_postgres_ends_with_one_shipment_each_and_no_request_left_open() {
    let db = pg::TestDb::create("prereg_okta").await;
    run_batch(Some(db.url.clone())).await;
    db.drop_db().await;
}

/// A batch sent while Okta drops connections: nobody is refused. The two users whose
/// reads were dropped are recorded under their login and their jobs read them (at once:
/// the trigger wakes the runner). The user named a second time by id is answered
/// `already_open` when that job has read the user first, else makes a second request,
/// which the first one's job finds and withdraws: either way each person ends with one
/// key and one PIN mail.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_sent_while_okta_drops_connections_refuses_nobody() {
    use sandbox::faults::{FaultKind, ScriptedFault};
    let mut seed = sandbox::okta::seed::OrgSeed::default();
    let users: Vec<okta::User> = (0..3).map(|n| seed_user(n, true)).collect();
    seed.users.extend(users.iter().cloned());
    let w = start_with(Options {
        approval: "auto",
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    // The batch reads its users several at a time: the drops name whose reads they hit.
    w.okta_org.faults().script([
        ScriptedFault::new(
            "GET",
            &format!("/api/v1/users/{}", users[0].profile.login),
            FaultKind::Drop,
            1,
        ),
        ScriptedFault::new(
            "GET",
            &format!("/api/v1/users/{}", users[1].profile.login),
            FaultKind::Drop,
            1,
        ),
    ]);
    let mut list: Vec<Value> = users.iter().map(|u| json!(u.profile.login)).collect();
    list.push(json!(users[0].id));
    let (s, v) = w
        .call(Method::POST, "/v1/okta/batch", Some(json!({"users": list})))
        .await;
    assert_eq!(s, 202, "{v}");
    let lines = v["data"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .all(|l| matches!(l["status"].as_str(), Some("created" | "already_open"))),
        "nobody refused: {v}"
    );
    let created = v["created"].as_u64().unwrap();
    assert!(created == 3 || created == 4, "{v}");
    assert!(
        w.okta_org.faults().get().script.is_empty(),
        "Okta dropped two reads"
    );
    let mut done = false;
    for _ in 0..20 {
        w.process().await;
        let table = w.table().await;
        if table
            .iter()
            .all(|r| matches!(r["state"].as_str(), Some("complete" | "deleted")))
        {
            done = true;
            break;
        }
        w.advance().await;
    }
    assert!(done, "requests left open: {:?}", w.table().await);
    let table = w.table().await;
    let complete: Vec<&Value> = table.iter().filter(|r| r["state"] == "complete").collect();
    let mut people: Vec<&str> = complete
        .iter()
        .map(|r| r["user_id"].as_str().unwrap())
        .collect();
    people.sort();
    let mut ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    ids.sort();
    assert_eq!(people, ids, "one complete request per person, by Okta id");
    let withdrawn: Vec<&Value> = table.iter().filter(|r| r["state"] == "deleted").collect();
    assert_eq!(withdrawn.len() as u64, created - 3, "{table:?}");
    for r in withdrawn {
        let id = r["request_id"].as_str().unwrap();
        let (_, one) = w
            .call(Method::GET, &format!("/v1/fpr/shipments/{id}"), None)
            .await;
        let last = one["data"]["timeline"].as_array().unwrap().last().unwrap()["note"].clone();
        assert!(
            last.as_str().unwrap().contains("this one is withdrawn"),
            "{one}"
        );
    }
    assert_eq!(w.fulfiller_shipments().await.len(), 3, "one key each");
    assert_eq!(w.mail.messages().len(), 3, "one PIN mail each");
}

/// `POST /v1/okta/batch` with an `Idempotency-Key`.
async fn keyed_batch(w: &OktaWorld, key: &str, users: &[&str]) -> (u16, Value) {
    let r = w
        .http
        .post(format!("{}/v1/okta/batch", w.connector))
        .bearer_auth(w.token().await)
        .header("Idempotency-Key", key)
        .json(&json!({"users": users}))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

/// A batch sent again with its `Idempotency-Key` after its first answer was lost and
/// the request it started has completed (so the user has no open request): answered
/// from the first call, no second key ordered. A new key for the same user orders again
/// (a deliberate second key), and a bad key is refused in the guide's error shape.
async fn repeated_keyed_batch(database_url: Option<String>) {
    let mut seed = sandbox::okta::seed::OrgSeed::default();
    let users: Vec<okta::User> = (0..2).map(|n| seed_user(n, true)).collect();
    seed.users.extend(users.iter().cloned());
    let w = start_with(Options {
        approval: "auto",
        seed: Some(seed),
        database_url,
        ..Default::default()
    })
    .await;
    let logins: Vec<&str> = users.iter().map(|u| u.profile.login.as_str()).collect();
    let (s, first) = keyed_batch(&w, "batch-2026-12-03", &logins).await;
    assert_eq!(s, 202, "{first}");
    assert_eq!(first["created"], 2, "{first}");
    for line in first["data"].as_array().unwrap() {
        let id = line["request_id"].as_str().unwrap();
        w.drive_to(id, "complete").await;
    }
    assert_eq!(w.fulfiller_shipments().await.len(), 2);

    let (s, again) = keyed_batch(&w, "batch-2026-12-03", &logins).await;
    assert_eq!(s, 202, "{again}");
    assert_eq!(again["created"], 0, "nothing new: {again}");
    for (a, b) in first["data"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["data"].as_array().unwrap())
    {
        assert_eq!(b["status"], "created", "{again}");
        assert_eq!(b["replayed"], true, "{again}");
        assert_eq!(a["request_id"], b["request_id"], "the first call's request");
    }
    w.process().await;
    assert_eq!(w.table().await.len(), 2, "no second request");
    assert_eq!(w.fulfiller_shipments().await.len(), 2, "no second key");

    // Without the key's protection (a new key), the completed user gets a new order.
    let (s, other) = keyed_batch(&w, "batch-2026-12-04", &logins[..1]).await;
    assert_eq!(s, 202, "{other}");
    assert_eq!(other["created"], 1, "{other}");

    let (s, bad) = keyed_batch(&w, "", &logins).await;
    assert_eq!(s, 400, "{bad}");
    assert!(
        bad.to_string().contains("Idempotency-Key"),
        "names the header: {bad}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_batch_sent_again_after_its_requests_completed_orders_nothing_sqlite() {
    repeated_keyed_batch(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_batch_sent_again_after_its_requests_completed_orders_nothing_postgres() {
    let db = pg::TestDb::create("prereg_okta").await;
    repeated_keyed_batch(Some(db.url.clone())).await;
    db.drop_db().await;
}

/// A user's open-request lock left naming a request that was never written (written
/// that way by earlier versions when a crash fell between the lock and the request)
/// does not keep the person from a key: a batch for them is `created`, not answered
/// `already_open` with a request that does not exist.
#[tokio::test(flavor = "multi_thread")]
async fn a_lock_naming_no_request_does_not_turn_a_user_away() {
    let mut seed = sandbox::okta::seed::OrgSeed::default();
    let user = seed_user(0, true);
    seed.users.push(user.clone());
    let w = start_with(Options {
        approval: "auto",
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    sqlx::query(
        "INSERT INTO okta_open_users (okta_user_id, request_id, locked_at) VALUES ($1, $2, $3)",
    )
    .bind(&user.id)
    .bind("never-written")
    .bind(connector::store::now())
    .execute(w.state.store.pool())
    .await
    .unwrap();
    let (s, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": [user.profile.login]})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"][0]["status"], "created", "{v}");
    let id = v["data"][0]["request_id"].as_str().unwrap().to_owned();
    w.drive_to(&id, "complete").await;
    assert_eq!(w.fulfiller_shipments().await.len(), 1);
}
