//! Retention (`retention_days`): a request complete for longer than the setting loses
//! its personal data (name, e-mail, telephone, address, PIN recipients), keeps its
//! state, timestamps, shipment id and audit trail; newer and open requests keep
//! everything. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ALEX, World, guide_request};
use crate::console_common::{DIEGO, browser, get, sign_in, start_console_on};
use crate::pg;
use connector::store::now;
use reqwest::Method;
use sqlx::Row;

const RAUL: &str = "b21eea82-781f-5190-867f-c1f0357034f7";

/// What the guide's request carries about the person, as it appears in the rows.
const PERSONAL: &[&str] = &[
    "Wilber",
    "alexw@contoso.example",
    "5555555555",
    "7788 Foxrun Street",
    "Dedham",
];

async fn order(w: &World, user: &str) -> (String, String) {
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(user)))
        .await;
    assert_eq!(s, 201, "{v}");
    (
        v["data"]["request_id"].as_str().unwrap().to_owned(),
        v["data"]["shipment_id"].as_str().unwrap().to_owned(),
    )
}

/// Everything the database holds about a request, as one text.
async fn rows_of(w: &World, id: &str) -> String {
    let pool = w.state.store.pool();
    let r = sqlx::query(
        "SELECT user_label, pin_contacts, create_body, COALESCE(tracking, '') AS tracking, \
         COALESCE(last_error, '') AS last_error FROM requests WHERE id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    let mut text = String::new();
    for c in [
        "user_label",
        "pin_contacts",
        "create_body",
        "tracking",
        "last_error",
    ] {
        text.push_str(&r.try_get::<String, _>(c).unwrap());
        text.push('\n');
    }
    let notes: Vec<String> =
        sqlx::query_scalar("SELECT note FROM request_history WHERE request_id = $1")
            .bind(id)
            .fetch_all(pool)
            .await
            .unwrap();
    let recipients: Vec<String> =
        sqlx::query_scalar("SELECT recipient FROM pin_deliveries WHERE request_id = $1")
            .bind(id)
            .fetch_all(pool)
            .await
            .unwrap();
    format!("{text}{}\n{}", notes.join("\n"), recipients.join("\n"))
}

async fn old_complete_request_loses_its_personal_data_and_keeps_its_trail(database: String) {
    let w = start_console_on(database).await;
    let (old, old_sid) = order(&w, ALEX).await;
    let (newer, _) = order(&w, DIEGO).await;
    w.advance().await;
    w.advance().await;
    w.process().await;
    assert_eq!(w.shipment(&old_sid).await["state"], "complete");
    assert_eq!(w.shipment(&newer).await["state"], "complete");
    // Ordered after the fulfiller moved on: still open.
    let (open, _) = order(&w, RAUL).await;
    assert_eq!(w.shipment(&open).await["state"], "open");
    let before = w.shipment(&old).await;
    let label = before["user"].as_str().unwrap_or_default().to_owned();
    assert_eq!(w.pins.lock().unwrap().len(), 2, "both PINs went out");

    // The old one finished 31 days ago.
    sqlx::query("UPDATE requests SET updated_at = $2 WHERE id = $1")
        .bind(&old)
        .bind(now() - 31 * 86_400)
        .execute(w.state.store.pool())
        .await
        .unwrap();
    let held = rows_of(&w, &old).await;
    for p in PERSONAL {
        assert!(held.contains(p), "{p} is there before: {held}");
    }

    let n = connector::retention::apply(&w.state.store, 30, now())
        .await
        .unwrap();
    assert_eq!(n, 1, "only the old complete request");
    assert_eq!(
        connector::retention::apply(&w.state.store, 30, now())
            .await
            .unwrap(),
        0,
        "a second run finds nothing more"
    );

    let kept = rows_of(&w, &old).await;
    for p in PERSONAL {
        assert!(!kept.contains(p), "{p} was removed: {kept}");
    }
    if label.len() >= 4 {
        assert!(!kept.contains(&label), "the label {label} was removed");
    }
    assert!(
        connector::retention::removed_at(&w.state.store, &old)
            .await
            .unwrap()
            .is_some()
    );
    for other in [&newer, &open] {
        let rows = rows_of(&w, other).await;
        for p in PERSONAL {
            assert!(rows.contains(p), "{other} keeps {p}");
        }
        assert!(
            connector::retention::removed_at(&w.state.store, other)
                .await
                .unwrap()
                .is_none()
        );
    }

    // The API still shows the request: its state, shipment and trail.
    let after = w.shipment(&old).await;
    assert_eq!(after["state"], "complete");
    assert_eq!(after["shipment_id"], before["shipment_id"]);
    assert_eq!(after["created_at"], before["created_at"]);
    let trail: Vec<&str> = after["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    let trail_before: Vec<&str> = before["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(trail[..trail_before.len()], trail_before[..]);
    assert!(
        after["timeline"]
            .to_string()
            .contains(connector::retention::NOTE),
        "{after}"
    );
    for p in PERSONAL {
        assert!(!after.to_string().contains(p), "the API view has no {p}");
    }

    // So does the console.
    let b = browser();
    sign_in(&w, &b).await;
    let (s, html) = get(&w, &b, &format!("/console/shipments/{old}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("complete"), "{html}");
    assert!(
        html.contains("The personal data of this request was removed on"),
        "{html}"
    );
    for p in PERSONAL {
        assert!(!html.contains(p), "the console page has no {p}: {html}");
    }
    let (s, html) = get(&w, &b, &format!("/console/shipments/{newer}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("complete"), "{html}");
}

#[tokio::test]
async fn retention_removes_personal_data_of_old_complete_requests_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("prereg-retention-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("connector.db").display());
    old_complete_request_loses_its_personal_data_and_keeps_its_trail(url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn retention_removes_personal_data_of_old_complete_requests_on_postgres() {
    let db = pg::TestDb::create("prereg_retention").await;
    old_complete_request_loses_its_personal_data_and_keeps_its_trail(db.url.clone()).await;
    db.drop_db().await;
}

/// A request row for `user` in `state`, finished `age_days` ago, with personal data.
fn row(
    id: &str,
    state: connector::domain::RequestState,
    age_days: i64,
) -> connector::store::RequestRow {
    let t = now() - age_days * 86_400;
    connector::store::RequestRow {
        idp: connector::domain::Idp::Entra,
        id: id.to_owned(),
        state,
        user_id: format!("user-of-{id}"),
        user_label: format!("Megan Bowen {id}"),
        pin_contacts: "[\"manager.of.megan@contoso.example\"]".into(),
        create_body: serde_json::json!({
            "recipient": {"recipient_firstname": "Megan", "recipient_lastname": "Bowen",
                "recipient_email": "meganb@contoso.example", "recipient_telephone": "4255550100"},
            "mailing_address": {"street_line1": "1 Microsoft Way", "city": "Redmond"}
        })
        .to_string(),
        shipment_id: Some(format!("S-{id}")),
        fulfiller_state: None,
        fulfiller_message: None,
        serial: None,
        firmware: None,
        tracking: None,
        last_error: Some(format!(
            "Megan Bowen {id}: 1 Microsoft Way is not deliverable"
        )),
        created_at: t,
        updated_at: t,
    }
}

async fn deleted_requests_are_cleaned_and_unfinished_ones_are_not(url: &str) {
    use connector::domain::RequestState::{Deleted, Error};
    use connector::store::Store;
    let store = connector::store::SqlStore::connect(url).await.unwrap();
    for (id, state) in [("gone", Deleted), ("stuck", Error)] {
        let r = row(id, state, 40);
        store
            .insert_request(&r, b"sealed", None, connector::runner::LEASE)
            .await
            .unwrap();
        // insert_request records `creating` now: put the state and age back.
        sqlx::query("UPDATE requests SET state = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(state.as_str())
            .bind(r.updated_at)
            .execute(store.pool())
            .await
            .unwrap();
    }
    assert_eq!(
        connector::retention::apply(&store, 30, now())
            .await
            .unwrap(),
        1
    );
    let gone = store.get_request("gone").await.unwrap().unwrap();
    assert_eq!(gone.state, Deleted);
    assert_eq!(gone.shipment_id.as_deref(), Some("S-gone"));
    let text = format!("{gone:?}");
    for p in [
        "Megan",
        "Bowen",
        "contoso.example",
        "4255550100",
        "Microsoft Way",
        "Redmond",
    ] {
        assert!(!text.contains(p), "{p} removed: {text}");
    }
    assert_eq!(
        gone.last_error.as_deref(),
        Some("[removed]: [removed] is not deliverable")
    );
    assert!(
        store
            .get_secret("gone", connector::secrets::Purpose::ResponseKey)
            .await
            .unwrap()
            .is_none()
    );
    let stuck = store.get_request("stuck").await.unwrap().unwrap();
    assert!(
        stuck.create_body.contains("Microsoft Way"),
        "an error waits for an admin: kept"
    );
    assert_eq!(
        connector::retention::apply(&store, 0, now()).await.unwrap(),
        0,
        "0 keeps everything"
    );
    store.close().await;
}

#[tokio::test]
async fn retention_cleans_deleted_requests_and_leaves_unfinished_ones() {
    let dir = std::env::temp_dir().join(format!("prereg-retention-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("connector.db").display());
    deleted_requests_are_cleaned_and_unfinished_ones_are_not(&url).await;
    let _ = std::fs::remove_dir_all(&dir);
    let db = pg::TestDb::create("prereg_retention").await;
    deleted_requests_are_cleaned_and_unfinished_ones_are_not(&db.url).await;
    db.drop_db().await;
}
