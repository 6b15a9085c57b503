//! The store's behaviour, run against both SQLite and PostgreSQL (a fresh database per
//! run on 127.0.0.1:5432, dropped afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used)]
use connector::domain::{Idp, RequestState};
use connector::runner::LEASE;
use connector::secrets::Purpose;
use connector::store::{ListFilter, Release, RequestRow, SqlStore, Store, now};
use std::time::Duration;

use crate::pg;

fn sqlite_url() -> (tempdir::Dir, String) {
    let dir = tempdir::Dir::new();
    let url = format!("sqlite://{}", dir.0.join("connector.db").display());
    (dir, url)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!("prereg-store-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn request(id: &str, user: &str) -> RequestRow {
    let t = now();
    RequestRow {
        idp: connector::domain::Idp::Entra,
        id: id.to_owned(),
        state: connector::domain::RequestState::Creating,
        user_id: user.into(),
        user_label: format!("{user}@contoso"),
        pin_contacts: "[\"boss@contoso\"]".into(),
        create_body: "{}".into(),
        shipment_id: None,
        fulfiller_state: None,
        fulfiller_message: None,
        serial: None,
        firmware: None,
        tracking: None,
        last_error: None,
        created_at: t,
        updated_at: t,
    }
}

async fn both(test: impl AsyncFn(SqlStore)) {
    let (_dir, url) = sqlite_url();
    let s = SqlStore::connect(&url).await.unwrap();
    test(s.clone()).await;
    s.close().await;
    let pg = pg::TestDb::create("prereg_test").await;
    let s = SqlStore::connect(&pg.url).await.unwrap();
    test(s.clone()).await;
    s.close().await;
    pg.drop_db().await;
}

#[tokio::test]
async fn a_request_keeps_its_audit_trail_and_secrets() {
    both(async |s: SqlStore| {
        let mut r = request("r1", "u1");
        s.insert_request(&r, b"sealed-key", Some(("app", "idem-1")), LEASE)
            .await
            .unwrap();
        assert_eq!(s.get_request("r1").await.unwrap().unwrap(), r);
        assert_eq!(
            s.idempotent_request("app", "idem-1")
                .await
                .unwrap()
                .as_deref(),
            Some("r1")
        );
        assert!(
            s.insert_request(&request("r2", "u1"), b"k", Some(("app", "idem-1")), LEASE)
                .await
                .is_err()
        );
        assert!(
            s.get_request("r2").await.unwrap().is_none(),
            "a refused insert writes nothing"
        );

        r.state = connector::domain::RequestState::Open;
        r.shipment_id = Some("S1".into());
        s.update_request(&r, "shipment created").await.unwrap();
        assert_eq!(
            s.by_shipment("S1").await.unwrap().unwrap().state,
            RequestState::Open
        );
        let h = s.history("r1").await.unwrap();
        assert_eq!(
            h.iter().map(|h| h.state.as_str()).collect::<Vec<_>>(),
            ["creating", "open"]
        );

        assert_eq!(
            s.get_secret("r1", Purpose::ResponseKey)
                .await
                .unwrap()
                .unwrap(),
            b"sealed-key"
        );
        s.put_secret("r1", Purpose::Pin, b"sealed-pin")
            .await
            .unwrap();
        s.put_secret("r1", Purpose::Pin, b"sealed-pin-2")
            .await
            .unwrap();
        assert_eq!(
            s.get_secret("r1", Purpose::Pin).await.unwrap().unwrap(),
            b"sealed-pin-2"
        );
        s.delete_secret("r1", Purpose::Pin).await.unwrap();
        assert!(s.get_secret("r1", Purpose::Pin).await.unwrap().is_none());

        r.state = connector::domain::RequestState::Complete;
        s.update_request(&r, "").await.unwrap();
        assert_eq!(s.purge_completed(now() + 10).await.unwrap(), 1);
        assert!(
            s.get_secret("r1", Purpose::ResponseKey)
                .await
                .unwrap()
                .is_none()
        );

        s.insert_request(&request("r3", "u2"), b"k", None, LEASE)
            .await
            .unwrap();
        let (page, total) = s
            .list_requests(&ListFilter {
                user_id: Some("u2".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((page.len(), total), (1, 1));
        let (page, total) = s
            .list_requests(&ListFilter {
                limit: 1,
                offset: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((page.len(), total), (1, 2));
        s.forget_request("r3").await.unwrap();
        assert!(s.get_request("r3").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn a_job_is_claimed_by_one_worker_and_comes_back_after_a_crash() {
    both(async |s: SqlStore| {
        // A new request's job is leased to its creator (the API creating the shipment).
        let mut creators = Vec::new();
        for i in 0..4 {
            creators.push(
                s.insert_request(&request(&format!("j{i}"), "u"), b"k", None, LEASE)
                    .await
                    .unwrap(),
            );
        }
        assert!(
            s.claim(Duration::from_secs(60)).await.unwrap().is_none(),
            "leased to their creators"
        );
        for job in &creators {
            assert!(
                s.release(job, now() + 3600, None, Release::Wait)
                    .await
                    .unwrap()
            );
        }
        assert!(
            s.claim(Duration::from_secs(60)).await.unwrap().is_none(),
            "not due yet"
        );
        assert_eq!(s.make_due(false).await.unwrap(), 4);
        // Eight concurrent workers: each job claimed exactly once.
        let claims = futures_like_join(&s).await;
        let mut ids: Vec<_> = claims
            .iter()
            .flatten()
            .map(|j| j.request_id.clone())
            .collect();
        ids.sort();
        assert_eq!(ids, ["j0", "j1", "j2", "j3"]);
        // A worker died holding j0's lease: once the lease expires, j0 comes back.
        let later = now() + 120;
        let again = s
            .claim_as_of(later, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.attempts, 3);
        // The first holder lost its lease: it can neither renew, release nor finish.
        let first = claims
            .iter()
            .flatten()
            .find(|j| j.request_id == again.request_id)
            .unwrap();
        assert!(!s.heartbeat(first, LEASE).await.unwrap());
        assert!(
            !s.release(first, now(), Some("late"), Release::Backoff)
                .await
                .unwrap()
        );
        assert!(!s.finish(first).await.unwrap());
        assert!(s.heartbeat(&again, LEASE).await.unwrap());
        assert!(s.finish(&again).await.unwrap());
    })
    .await;
}

/// A job released after a transient failure waits out its backoff: the cron tick's
/// `make_due(false)` leaves it alone, an admin's "process now" does not.
#[tokio::test]
async fn a_backoff_is_kept_by_the_tick_and_ended_by_process_now() {
    both(async |s: SqlStore| {
        let job = s
            .insert_request(&request("b1", "u"), b"k", None, LEASE)
            .await
            .unwrap();
        assert!(
            s.release(&job, now() + 3600, Some("503"), Release::Backoff)
                .await
                .unwrap()
        );
        assert_eq!(s.make_due(false).await.unwrap(), 0, "the tick keeps it");
        assert!(s.claim(LEASE).await.unwrap().is_none());
        assert_eq!(s.make_due(true).await.unwrap(), 1);
        let again = s.claim(LEASE).await.unwrap().unwrap();
        assert_eq!((again.request_id.as_str(), again.retries), ("b1", 1));
    })
    .await;
}

async fn futures_like_join(s: &SqlStore) -> Vec<Option<connector::store::Job>> {
    let mut handles = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            s.claim(Duration::from_secs(60)).await.unwrap()
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// A database written by the first release (schema version 1, no `requests.idp`) is
/// upgraded at start: its requests read back as Entra-mode requests, nothing lost.
#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place() {
    let (_dir, url) = sqlite_url();
    sqlx::any::install_default_drivers();
    let old = sqlx::AnyPool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    for stmt in [
        "CREATE TABLE schema_version (version INTEGER NOT NULL)",
        "INSERT INTO schema_version (version) VALUES (1)",
        "CREATE TABLE requests (
            id TEXT PRIMARY KEY, state TEXT NOT NULL, user_id TEXT NOT NULL, user_label TEXT NOT NULL,
            pin_contacts TEXT NOT NULL, create_body TEXT NOT NULL, shipment_id TEXT UNIQUE,
            fulfiller_state INTEGER, fulfiller_message TEXT, serial TEXT, firmware TEXT,
            tracking TEXT, last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)",
        "INSERT INTO requests VALUES ('old1','open','u1','u1@contoso.com','[]','{}','s1',102,'x',NULL,NULL,NULL,NULL,1,1)",
    ] {
        sqlx::query(stmt).execute(&old).await.unwrap();
    }
    old.close().await;
    let s = SqlStore::connect(&url).await.unwrap();
    let r = s.get_request("old1").await.unwrap().unwrap();
    assert_eq!((r.idp.as_str(), r.state.as_str()), ("entra", "open"));
    let (page, total) = s
        .list_requests(&ListFilter {
            idp: Some("okta".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((page.len(), total), (0, 0));
    s.close().await;
    // Connecting again (now at version 2) changes nothing.
    let s = SqlStore::connect(&url).await.unwrap();
    assert_eq!(
        s.get_request("old1").await.unwrap().unwrap().idp,
        Idp::Entra
    );
}

/// The worker recording a shipment and an admin's cancel race: each transition is a
/// compare-and-set, so the later one is refused instead of overwriting the earlier.
#[tokio::test]
async fn a_conditional_update_is_refused_once_the_state_moved() {
    both(async |s: SqlStore| {
        let r = request("c1", "u1");
        s.insert_request(&r, b"k", None, LEASE).await.unwrap();

        // The admin's cancel lands first.
        let mut cancel = r.clone();
        cancel.state = connector::domain::RequestState::Cancelling;
        assert!(
            s.update_request_if(&cancel, RequestState::Creating, "cancel requested")
                .await
                .unwrap()
        );

        // The worker's "creating → open" then finds the state moved: nothing written.
        let mut open = r.clone();
        open.state = connector::domain::RequestState::Open;
        open.shipment_id = Some("S1".into());
        assert!(
            !s.update_request_if(&open, RequestState::Creating, "shipment created")
                .await
                .unwrap()
        );
        let got = s.get_request("c1").await.unwrap().unwrap();
        assert_eq!(got.state.as_str(), "cancelling", "the cancel is kept");
        assert_eq!(got.shipment_id, None);
        assert!(s.by_shipment("S1").await.unwrap().is_none());
        let h = s.history("c1").await.unwrap();
        assert_eq!(
            h.iter()
                .map(|h| (h.state.as_str(), h.note.as_str()))
                .collect::<Vec<_>>(),
            [
                (
                    "creating",
                    "request accepted; shipment about to be created at the fulfiller"
                ),
                ("cancelling", "cancel requested")
            ],
            "a refused update leaves no history entry"
        );

        // Against the state it now has, the worker's write applies.
        let mut keep = got.clone();
        keep.shipment_id = Some("S1".into());
        assert!(
            s.update_request_if(&keep, RequestState::Cancelling, "shipment recorded")
                .await
                .unwrap()
        );
        let got = s.get_request("c1").await.unwrap().unwrap();
        assert_eq!(
            (got.state.as_str(), got.shipment_id.as_deref()),
            ("cancelling", Some("S1"))
        );
        assert_eq!(s.history("c1").await.unwrap().len(), 3);
        assert!(
            !s.update_request_if(&keep, RequestState::Open, "")
                .await
                .unwrap(),
            "no row is in that state"
        );
        assert!(
            !s.update_request_if(&request("nobody", "u1"), RequestState::Creating, "")
                .await
                .unwrap(),
            "an unknown request is not created"
        );
        assert!(s.get_request("nobody").await.unwrap().is_none());
    })
    .await;
}
