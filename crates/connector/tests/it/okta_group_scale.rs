//! Group add at scale through the event hook: 25 users' `group.user_membership.add`
//! events delivered at once, each event delivered twice (Okta redelivers), and a second
//! event (a new id) for each user, all concurrently; then processing with several
//! workers until every request is in an end state. Exactly one request, one shipment
//! at the fulfiller and one PIN mail per user. Once on SQLite and once on PostgreSQL
//! (127.0.0.1:5432, as the other store tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common;
use crate::pg;

use okta_common::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const USERS: usize = 25;

/// Delivers one event hook call as Okta does: a 5xx answer is delivered again.
async fn deliver(w: &OktaWorld, body: &Value) -> Value {
    for _ in 0..20 {
        let r = w
            .http
            .post(format!("{}/v1/okta/events", w.connector))
            .header("Authorization", HOOK_SECRET)
            .json(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if s == 200 {
            return v;
        }
        assert!(s >= 500, "{s}: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the event hook never took {body}");
}

async fn run(database_url: Option<String>) {
    let mut seed = sandbox::okta::seed::OrgSeed::default();
    let users: Vec<okta::User> = (0..USERS).map(|n| seed_user(n, true)).collect();
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

    // Every user's event twice (same id), plus a second event with its own id: 75
    // deliveries at once.
    let mut deliveries = Vec::new();
    for (n, u) in users.iter().enumerate() {
        for uuid in [
            format!("group-add-{n:03}"),
            format!("group-add-{n:03}"),
            format!("group-add-again-{n:03}"),
        ] {
            let w = w.clone();
            let body = group_add_event(&uuid, &u.id, GROUP);
            deliveries.push(tokio::spawn(async move { deliver(&w, &body).await }));
        }
    }
    let mut created = 0;
    let mut duplicates = 0;
    let mut already_open = 0;
    for d in deliveries {
        let v = d.await.unwrap();
        duplicates += v["duplicates_ignored"].as_array().unwrap().len();
        assert!(v["not_acted_on"].as_array().unwrap().is_empty(), "{v}");
        for s in v["started"].as_array().unwrap() {
            if s["note"].is_null() {
                created += 1;
            } else {
                already_open += 1;
            }
        }
    }
    assert_eq!(created, USERS, "one request started per user");
    // An event id is recorded once the event was acted on, so a redelivery racing the
    // first delivery is either ignored as a duplicate (the first had recorded it) or
    // finds the request the first made (the user's lock); never a second request.
    assert_eq!(
        duplicates + already_open,
        2 * USERS,
        "each redelivered event ignored or finding the open request, and each second event finding it"
    );

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
        if table.len() == USERS
            && table
                .iter()
                .all(|r| matches!(r["state"].as_str(), Some("complete" | "error")))
        {
            done = true;
            break;
        }
        w.advance().await;
    }
    assert!(
        done,
        "requests left without an end state: {:?}",
        w.table().await
    );

    let table = w.table().await;
    assert_eq!(table.len(), USERS, "one request per user");
    let by_user: HashMap<String, &Value> = table
        .iter()
        .map(|r| (r["user_id"].as_str().unwrap().to_owned(), r))
        .collect();
    assert_eq!(by_user.len(), USERS);
    let mut shipments = HashSet::new();
    for u in &users {
        let r = by_user[&u.id];
        assert_eq!(r["state"], "complete", "{r}");
        assert_eq!(r["okta"]["source"], "group_add");
        assert_eq!(r["okta"]["group_id"], GROUP);
        assert_eq!(r["okta"]["enrollment_ids"].as_array().unwrap().len(), 1);
        assert!(shipments.insert(r["shipment_id"].as_str().unwrap().to_owned()));
        // One enrollment per user at Okta, active.
        let e = w.enrollments(&u.id).await;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0]["status"], "ACTIVE");
    }
    let at_fulfiller: HashSet<String> = w
        .fulfiller_shipments()
        .await
        .iter()
        .map(|s| s["shipment_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(at_fulfiller.len(), USERS, "no duplicate shipments");
    assert_eq!(at_fulfiller, shipments);
    let mail = w.mail.messages();
    assert_eq!(mail.len(), USERS, "one PIN mail per key");
    let to: HashSet<String> = mail.iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(to.len(), USERS);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_add_events_for_25_users_delivered_twice_at_once_on_sqlite_make_one_key_each() {
    run(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_add_events_for_25_users_delivered_twice_at_once_on_postgres_make_one_key_each() {
    let db = pg::TestDb::create("prereg_okta").await;
    run(Some(db.url.clone())).await;
    db.drop_db().await;
}
