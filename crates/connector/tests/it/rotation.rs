//! Master-key rotation (`prereg secrets rotate`): with live requests holding sealed
//! response keys and a sealed PIN, every value is re-sealed with the new key; a
//! connector that knows only the new key then resends the held PIN and carries the open
//! request to its delivered PIN. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{ALEX, World, guide_request, start_full};
use crate::console_common::DIEGO;
use crate::pg;
use connector::secrets::{MasterKey, Purpose, SecretError};
use reqwest::Method;

fn pin_of(body: &str) -> String {
    body.split("Its PIN is: ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect()
}

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

/// Every sealed value: (request id, purpose, bytes).
async fn sealed(w: &World) -> Vec<(String, String, Vec<u8>)> {
    sqlx::query_as("SELECT request_id, purpose, sealed FROM sealed_secrets")
        .fetch_all(w.state.store.pool())
        .await
        .unwrap()
}

/// Starts another connector on the same sandboxes and database with `key` as its only
/// master key; `w` talks to it from then on.
async fn switch_connector(w: &mut World, database_url: &str, key: &MasterKey) {
    let toml = connector::sandbox_config::from_ready(
        &w.ready,
        &connector::sandbox_config::Local {
            database_url,
            master_key_b64: &key.to_base64(),
            listen_addr: "127.0.0.1:0",
            send_pin_url: None,
        },
    );
    let config = connector::Config::from_parts(&toml, Default::default()).unwrap();
    let app = connector::Application::build(config).await.unwrap();
    w.connector = app.base_url();
    w.state = app.state();
    // Runs until the test's runtime ends.
    tokio::spawn(app.run(std::future::pending()));
}

async fn rotation_keeps_every_pin_deliverable(database_url: String) {
    let mut w = start_full(
        sandbox::Config::for_tests(),
        Some(database_url.clone()),
        "",
        false,
    )
    .await;
    let (delivered, _) = order(&w, ALEX).await;
    w.advance().await;
    w.advance().await;
    w.process().await;
    assert_eq!(w.shipment(&delivered).await["state"], "complete");
    let pin = pin_of(&w.mail.messages()[0].body);
    let (open, _) = order(&w, DIEGO).await;
    assert_eq!(w.shipment(&open).await["state"], "open");

    let old = w.state.master_key.clone();
    let before = sealed(&w).await;
    assert!(
        before
            .iter()
            .any(|(id, p, _)| *id == delivered && p == Purpose::Pin.as_str()),
        "the delivered PIN is held sealed"
    );
    assert!(
        before
            .iter()
            .all(|(_, _, s)| MasterKey::sealed_key_id(s) == Some(old.key_id()))
    );
    w.stop_connector().await;

    // The new key becomes current, the old one stays to open what it sealed.
    let new = MasterKey::generate().unwrap();
    let ring = MasterKey::from_base64(&new.to_base64())
        .unwrap()
        .with_old(&old.to_base64())
        .unwrap();
    let store = connector::store::SqlStore::connect(&database_url)
        .await
        .unwrap();
    let r = connector::rotation::rotate(&store, &ring).await.unwrap();
    assert!(r.failed.is_empty(), "{r:?}");
    assert_eq!(r.resealed, before.len() as u64, "{r:?}");
    assert_eq!(r.key_id, new.key_id());
    let again = connector::rotation::rotate(&store, &ring).await.unwrap();
    assert_eq!(
        again.resealed, 0,
        "a second run has nothing to do: {again:?}"
    );
    assert_eq!(again.current, before.len() as u64);
    assert_eq!(
        connector::rotation::not_current(&store, &ring)
            .await
            .unwrap(),
        0
    );

    // A key that sealed nothing here: each value is named with the key id it needs,
    // and no secret appears.
    let stranger = MasterKey::generate().unwrap();
    let refused = connector::rotation::rotate(&store, &stranger)
        .await
        .unwrap();
    assert_eq!(refused.failed.len(), before.len(), "{refused:?}");
    for f in &refused.failed {
        assert!(f.contains(&new.key_id()), "{f}");
        assert!(!f.contains(&pin), "{f}");
    }
    let (id, p, s) = &sealed(&w).await[0];
    let e = stranger
        .open(id, Purpose::parse(p).unwrap(), s)
        .unwrap_err();
    assert!(matches!(e, SecretError::UnknownKey(ref k) if *k == new.key_id()));
    store.close().await;

    // No value still carries the old key id.
    let after = sealed(&w).await;
    assert_eq!(after.len(), before.len());
    assert!(
        after
            .iter()
            .all(|(_, _, s)| MasterKey::sealed_key_id(s) == Some(new.key_id()))
    );

    // A connector with only the new key: the held PIN is resent, the same PIN.
    switch_connector(&mut w, &database_url, &new).await;
    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/fpr/shipments/{delivered}/resend-pin"),
            None,
        )
        .await;
    assert_eq!(s, 202, "{v}");
    w.process().await;
    let mails = w.mail.messages();
    assert_eq!(mails.len(), 2, "resent");
    assert_eq!(pin_of(&mails[1].body), pin);

    // The open request's response key opens: it completes and its PIN goes out.
    w.advance().await;
    w.advance().await;
    let got = w.settle(&open, &["complete", "error"]).await;
    assert_eq!(got["state"], "complete", "{got}");
    assert_eq!(w.mail.messages().len(), 3);
}

#[tokio::test]
async fn rotating_the_master_key_keeps_every_pin_deliverable_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("prereg-rotation-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("connector.db").display());
    rotation_keeps_every_pin_deliverable(url).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn rotating_the_master_key_keeps_every_pin_deliverable_on_postgres() {
    let db = pg::TestDb::create("prereg_rotation").await;
    rotation_keeps_every_pin_deliverable(db.url.clone()).await;
    db.drop_db().await;
}
