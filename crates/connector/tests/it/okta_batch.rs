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
/// reads were dropped are recorded under their login and their jobs read them; the
/// user named a second time by id (read at once) makes a second request, which the
/// first one's job finds and withdraws. Each person ends with one key and one PIN mail.
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
    assert_eq!(v["created"], 4, "nobody refused: {v}");
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
    assert_eq!(withdrawn.len(), 1, "{table:?}");
    let id = withdrawn[0]["request_id"].as_str().unwrap();
    let (_, one) = w
        .call(Method::GET, &format!("/v1/fpr/shipments/{id}"), None)
        .await;
    let last = one["data"]["timeline"].as_array().unwrap().last().unwrap()["note"].clone();
    assert!(
        last.as_str().unwrap().contains("this one is withdrawn"),
        "{one}"
    );
    assert_eq!(w.fulfiller_shipments().await.len(), 3, "one key each");
    assert_eq!(w.mail.messages().len(), 3, "one PIN mail each");
}
