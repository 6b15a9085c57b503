//! The delivered PIN is held sealed for resends (`pin_retention_days`), then purged by
//! the cleanup, by an admin's acknowledgement or by deleting the request; a resend
//! afterwards answers 409 saying why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::pg;
use common::{ALEX, World, guide_request, start_full};
use reqwest::Method;

fn pin_of(body: &str) -> String {
    body.split("Its PIN is: ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect()
}

/// Orders for Alex and runs it to a delivered PIN (mailed to the sandbox's catcher).
async fn delivered(extra: &str) -> (World, String) {
    let w = start_full(sandbox::Config::for_tests(), None, extra, false).await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    w.advance().await;
    w.advance().await;
    w.process().await;
    assert_eq!(w.shipment(&sid).await["state"], "complete");
    assert_eq!(w.mail.messages().len(), 1);
    (w, sid)
}

async fn resend(w: &World, sid: &str) -> (u16, serde_json::Value) {
    w.call(
        Method::POST,
        &format!("/v1/fpr/shipments/{sid}/resend-pin"),
        None,
    )
    .await
}

#[tokio::test]
async fn after_delivery_an_admin_resends_the_same_pin_until_acknowledged() {
    let (w, sid) = delivered("").await;
    let first = w.mail.messages()[0].clone();
    let pin = pin_of(&first.body);
    assert_eq!(pin.len(), 8);

    let got = w.shipment(&sid).await;
    let until = got["pin_held_until"].as_str().unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(until).unwrap();
    let days = (until.timestamp() - chrono::Utc::now().timestamp()) / 86400;
    assert!((13..=14).contains(&days), "14 days by default: {got}");
    assert!(
        !got.to_string().contains(&pin),
        "the view never shows the PIN"
    );

    let (s, v) = resend(&w, &sid).await;
    assert_eq!(s, 202, "{v}");
    w.process().await;
    let mails = w.mail.messages();
    assert_eq!(mails.len(), 2, "mailed again");
    assert_eq!(mails[1].to, first.to);
    assert_eq!(pin_of(&mails[1].body), pin, "the same PIN");
    let got = w.shipment(&sid).await;
    assert_eq!(got["state"], "complete");
    assert_eq!(
        got["pin_held_until"],
        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "a resend does not extend the retention"
    );

    // The user signed in: the admin says so, the PIN is purged.
    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/fpr/shipments/{sid}/pin-acknowledged"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["pin_held_until"], serde_json::Value::Null);
    assert_eq!(v["data"]["pin_purge_reason"], "acknowledged");

    let (s, v) = resend(&w, &sid).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error_code"], "api_error");
    assert_eq!(v["error_data"]["error_type"], "pin_purged");
    assert_eq!(v["error_data"]["reason"], "acknowledged");
    let msg = v["error_message"].as_str().unwrap();
    assert!(
        msg.contains("acknowledged") && msg.contains("signed in"),
        "{msg}"
    );
    assert!(
        msg.contains("Reset the key's PIN") && msg.contains("order a new key"),
        "{msg}"
    );
    assert_eq!(w.mail.messages().len(), 2, "nothing more mailed");
}

#[tokio::test]
async fn the_cleanup_purges_the_pin_when_its_retention_ends() {
    let (w, sid) = delivered("pin_retention_days = 3\n").await;
    let now = chrono::Utc::now().timestamp();
    // Before the retention ends, the cleanup keeps it.
    assert_eq!(
        connector::pin::cleanup(&w.state, now + 2 * 86400)
            .await
            .unwrap(),
        0
    );
    let (s, v) = resend(&w, &sid).await;
    assert_eq!(s, 202, "{v}");
    w.process().await;
    assert_eq!(w.mail.messages().len(), 2);

    // Four days on, the cleanup run purges it.
    let later = now + 4 * 86400;
    assert_eq!(connector::pin::cleanup(&w.state, later).await.unwrap(), 1);
    let got = w.shipment(&sid).await;
    assert_eq!(got["pin_held_until"], serde_json::Value::Null, "{got}");
    assert_eq!(got["pin_purge_reason"], "retention");
    let (s, v) = resend(&w, &sid).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error_data"]["reason"], "retention");
    let date = connector::pin::date(later);
    assert_eq!(v["error_data"]["purged_at"], date);
    let msg = v["error_message"].as_str().unwrap();
    assert!(msg.contains(&format!("purged on {date}")), "{msg}");
    assert!(msg.contains("pin_retention_days"), "{msg}");
    assert_eq!(w.mail.messages().len(), 2);
}

#[tokio::test]
async fn with_retention_zero_the_pin_is_destroyed_right_after_delivery() {
    let (w, sid) = delivered("pin_retention_days = 0\n").await;
    let got = w.shipment(&sid).await;
    assert_eq!(got["pin_held_until"], serde_json::Value::Null);
    let (s, v) = resend(&w, &sid).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error_data"]["reason"], "not_retained");
    assert!(
        v["error_message"]
            .as_str()
            .unwrap()
            .contains("destroyed right after delivery"),
        "{v}"
    );
}

#[tokio::test]
async fn deleting_the_request_purges_the_held_pin() {
    let (w, sid) = delivered("").await;
    let (s, v) = w
        .call(Method::DELETE, &format!("/v1/fpr/shipments/{sid}"), None)
        .await;
    // The key has shipped: nothing to cancel, the request leaves tracking.
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "deleted");
    let (s, v) = resend(&w, &sid).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error_data"]["reason"], "deleted");
}

#[tokio::test]
async fn on_postgresql_the_pin_is_held_resent_and_purged_by_the_cleanup() {
    let db = pg::TestDb::create("prereg_pin").await;
    {
        let w = start_full(
            sandbox::Config::for_tests(),
            Some(db.url.clone()),
            "",
            false,
        )
        .await;
        let (s, v) = w
            .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
            .await;
        assert_eq!(s, 201, "{v}");
        let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
        w.advance().await;
        w.advance().await;
        w.process().await;
        let got = w.shipment(&sid).await;
        assert_eq!(got["state"], "complete");
        assert!(got["pin_held_until"].is_string(), "{got}");
        let (s, v) = resend(&w, &sid).await;
        assert_eq!(s, 202, "{v}");
        w.process().await;
        let mails = w.mail.messages();
        assert_eq!(mails.len(), 2);
        assert_eq!(pin_of(&mails[0].body), pin_of(&mails[1].body));
        let later = chrono::Utc::now().timestamp() + 15 * 86400;
        assert_eq!(connector::pin::cleanup(&w.state, later).await.unwrap(), 1);
        let (s, v) = resend(&w, &sid).await;
        assert_eq!(s, 409, "{v}");
        assert_eq!(v["error_data"]["reason"], "retention");
        w.state.store.close().await;
    }
    db.drop_db().await;
}

#[tokio::test]
async fn a_resend_after_the_retention_ended_is_refused_even_before_the_cleanup_runs() {
    let (w, sid) = delivered("").await;
    let id = w.shipment(&sid).await["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // As if 14 days had passed since the delivery.
    sqlx::query("UPDATE pin_holds SET held_until = $1 WHERE request_id = $2")
        .bind(chrono::Utc::now().timestamp() - 60)
        .bind(&id)
        .execute(w.state.store.pool())
        .await
        .unwrap();
    let (s, v) = resend(&w, &sid).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error_data"]["reason"], "retention");
    assert_eq!(w.mail.messages().len(), 1, "nothing mailed again");
    assert_eq!(
        w.shipment(&sid).await["pin_held_until"],
        serde_json::Value::Null
    );
}
