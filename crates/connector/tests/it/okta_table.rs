//! The shipments table in Okta mode: each transition, error → ongoing after a fix
//! (profile data via the HR file; a fulfiller error state fixed at the fulfiller), a
//! shipment deleted at the fulfiller going to error once, and delete in all three
//! places (fulfiller, Okta enrollment, table).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common;

use okta_common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn batch(w: &OktaWorld, user: &str) -> String {
    let (s, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": [user]})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"][0]["status"], "created", "{v}");
    v["data"][0]["request_id"].as_str().unwrap().to_owned()
}

fn states(r: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in r["timeline"].as_array().unwrap() {
        let s = h["state"].as_str().unwrap().to_owned();
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

async fn retry(w: &OktaWorld, id: &str) -> (u16, Value) {
    w.call(Method::POST, &format!("/v1/fpr/shipments/{id}/retry"), None)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_profile_fields_end_in_error_naming_each_and_a_fixed_hr_file_sets_it_ongoing() {
    let dir = std::env::temp_dir().join(format!("prereg-okta-hr-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let hr = dir.join("hr.csv");
    std::fs::write(&hr, "login,streetAddress,primaryPhone\n").unwrap();
    let w = start_with(Options {
        extra_okta_toml: format!("hr_csv = {:?}\n", hr.display().to_string()),
        ..Default::default()
    })
    .await;

    // Dave has no address and no phone.
    let id = batch(&w, "dave.dietrich@example.com").await;
    let r = w.drive_to(&id, "error").await;
    assert_eq!(r["table_state"], "error");
    let e = r["last_error"].as_str().unwrap();
    for want in [
        "streetAddress (\"Street address\")",
        "primaryPhone (\"Primary phone\")",
        "city (\"City\")",
        "zipCode (\"Zip code\")",
        "countryCode (\"Country code\")",
        "Directory > People > dave.dietrich@example.com",
        "hr.csv",
    ] {
        assert!(e.contains(want), "{want:?} not in {e}");
    }
    // Nothing was ordered or enrolled.
    assert!(r["shipment_id"].is_null());
    assert!(w.enrollments(DAVE).await.is_empty());
    assert!(w.fulfiller_shipments().await.is_empty());
    // Running again does not change it (the job ended).
    w.process().await;
    assert_eq!(states(&w.request(&id).await), states(&r));
    // A second order for Dave while his request is in error is not another request.
    let (_, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": ["dave.dietrich@example.com"]})),
        )
        .await;
    assert_eq!(v["data"][0]["status"], "already_open");
    assert_eq!(v["data"][0]["request_id"], id.as_str());

    // The admin fills the HR file and sets the request back to ongoing.
    std::fs::write(
        &hr,
        "login,streetAddress,primaryPhone,city,state,zipCode,countryCode\n\
         dave.dietrich@example.com,\"12 Elm St, Unit 3\",+1 617 555 0104,Boston,MA,02110,US\n",
    )
    .unwrap();
    let (s, v) = retry(&w, &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "creating");
    assert_eq!(v["data"]["table_state"], "ongoing");
    assert!(v["data"]["last_error"].is_null());
    let r = w.drive_to(&id, "awaiting_approval").await;
    let (_, sh) = w
        .fulfiller_call(
            Method::GET,
            &format!("/v1/fpr/shipments/{}", r["shipment_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(sh.to_string().contains("12 Elm St, Unit 3"), "{sh}");
    // Retry only applies to errors.
    let (s, _) = retry(&w, &id).await;
    assert_eq!(s, 409);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_transition_of_the_table_is_recorded_in_order() {
    let w = start().await;
    let id = batch(&w, BOB).await;
    w.drive_to(&id, "awaiting_approval").await;
    let (s, _) = w
        .call(
            Method::POST,
            &format!("/v1/okta/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let r = w.request(&id).await;
    assert_eq!(
        states(&r),
        [
            "creating",
            "open",
            "awaiting_approval",
            "pin_pending",
            "complete"
        ]
    );
    assert_eq!(r["table_state"], "complete");
    // The user's lock is released: a new order for Bob is a new request.
    let (_, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": [BOB]})),
        )
        .await;
    assert_eq!(v["data"][0]["status"], "created", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fulfiller_error_state_fixed_at_the_fulfiller_resumes_the_same_shipment() {
    let mut seed = sandbox::okta::seed::OrgSeed::default();
    let mut u = seed_user(1, true);
    u.profile.street_address = Some("1 Undeliverable Rd".into());
    seed.users.push(u.clone());
    let w = start_with(Options {
        seed: Some(seed),
        ..Default::default()
    })
    .await;
    let id = batch(&w, &u.id).await;
    let r = w.drive_to(&id, "error").await;
    let sid = r["shipment_id"].as_str().unwrap().to_owned();
    assert_eq!(r["fulfiller_state"], 7);
    assert!(
        r["last_error"]
            .as_str()
            .unwrap()
            .contains("correct it in the YubiEnterprise Console"),
        "{r}"
    );
    // Not marked errored at Okta: the enrollment waits for the fixed shipment.
    let e = w.enrollments(&u.id).await;
    assert_eq!(e[0]["status"], "PENDING_ACTIVATION");

    // The admin corrects the address at the fulfiller and sets the request ongoing.
    let (s, v) = w
        .fulfiller_call(
            Method::PUT,
            &format!("/v1/fpr/shipments/{sid}"),
            Some(
                json!({"mailing_address": {"street_line1": "1 Main St", "street_line2": "",
                "city": "Boston", "region": "MA", "postal_code": "02001", "country_code_2": "US"}}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = retry(&w, &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "open");
    let r = w.drive_to(&id, "awaiting_approval").await;
    assert_eq!(r["shipment_id"], sid.as_str(), "the same shipment");
    assert_eq!(w.fulfiller_shipments().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shipment_deleted_at_the_fulfiller_goes_to_error_once_and_retry_starts_over() {
    let w = start().await;
    let id = batch(&w, BOB).await;
    let r = w.drive_to(&id, "open").await;
    let sid = r["shipment_id"].as_str().unwrap().to_owned();
    let first_enrollment = r["okta"]["enrollment_ids"][0].as_str().unwrap().to_owned();
    let (s, _) = w
        .fulfiller_call(Method::DELETE, &format!("/v1/fpr/shipments/{sid}"), None)
        .await;
    assert_eq!(s, 204);

    let r = w.drive_to(&id, "error").await;
    assert!(
        r["last_error"]
            .as_str()
            .unwrap()
            .contains("no longer exists at the fulfiller"),
        "{r}"
    );
    let errors = |r: &Value| {
        r["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["state"] == "error")
            .count()
    };
    assert_eq!(errors(&r), 1);
    // Okta shows the enrollment errored.
    let e = w.enrollments(BOB).await;
    assert_eq!(e[0]["status"], "FULFILLMENT_ERRORED");
    // Further runs do not touch it again.
    for _ in 0..3 {
        w.process().await;
    }
    assert_eq!(errors(&w.request(&id).await), 1);

    // error -> ongoing: a new enrollment and a new shipment; the old enrollment is gone.
    let (s, v) = retry(&w, &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "creating");
    let r = w.drive_to(&id, "awaiting_approval").await;
    assert_ne!(r["shipment_id"], sid.as_str());
    let e = w.enrollments(BOB).await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_ne!(e[0]["id"], first_enrollment.as_str());
    assert_eq!(e[0]["status"], "ACTIVE");
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_removes_the_request_in_all_three_places() {
    let w = start().await;
    let id = batch(&w, BOB).await;
    let r = w.drive_to(&id, "open").await;
    let sid = r["shipment_id"].as_str().unwrap().to_owned();
    assert_eq!(w.enrollments(BOB).await.len(), 1);

    let (s, v) = w
        .call(Method::DELETE, &format!("/v1/fpr/shipments/{id}"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "deleted");
    assert_eq!(v["data"]["deleted"]["fulfiller"], "cancelled");
    assert_eq!(v["data"]["deleted"]["okta"], "enrollment deleted");
    // 1. the fulfiller
    let (s, _) = w
        .fulfiller_call(Method::GET, &format!("/v1/fpr/shipments/{sid}"), None)
        .await;
    assert_eq!(s, 404);
    // 2. the user's Okta profile (pre-enrolled authenticators)
    assert!(w.enrollments(BOB).await.is_empty());
    // 3. the table
    let r = w.request(&id).await;
    assert_eq!(r["table_state"], "deleted");
    let (s, v) = w
        .call(Method::GET, "/v1/okta/requests?state=open", None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["total_count"], 0);
    w.process().await;
    assert_eq!(w.request(&id).await["state"], "deleted");

    // The user can be ordered again.
    let id2 = batch(&w, BOB).await;
    assert_ne!(id2, id);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_after_shipping_leaves_the_parcel_but_removes_the_enrollment() {
    let w = start().await;
    let id = batch(&w, BOB).await;
    w.drive_to(&id, "awaiting_approval").await;
    let (s, v) = w
        .call(Method::DELETE, &format!("/v1/fpr/shipments/{id}"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["data"]["deleted"]["fulfiller"]
            .as_str()
            .unwrap()
            .contains("no longer editable"),
        "{v}"
    );
    assert!(w.enrollments(BOB).await.is_empty());
    // Nothing to approve any more.
    let (s, _) = w
        .call(
            Method::POST,
            &format!("/v1/okta/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn okta_refusing_the_activation_is_fixed_at_okta_and_the_same_key_is_activated() {
    let w = start().await;
    let trusted = w.okta_org.trusted_signing();
    // The org does not trust the fulfiller's signing keys (yet).
    w.okta_org.set_trusted_signing(envelope::Jwks::new());
    let id = batch(&w, BOB).await;
    let r = w.drive_to(&id, "error").await;
    let sid = r["shipment_id"].as_str().unwrap().to_owned();
    let e = r["last_error"].as_str().unwrap();
    assert!(e.contains("Okta refused the activation"), "{e}");
    assert!(e.contains("the same key is activated again"), "{e}");
    assert_eq!(w.enrollments(BOB).await[0]["status"], "PENDING_ACTIVATION");

    w.okta_org.set_trusted_signing(trusted);
    let (s, v) = retry(&w, &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "open");
    let r = w.drive_to(&id, "awaiting_approval").await;
    assert_eq!(r["shipment_id"], sid.as_str());
    assert_eq!(w.enrollments(BOB).await[0]["status"], "ACTIVE");
    assert_eq!(w.fulfiller_shipments().await.len(), 1, "no second key");
}

/// Okta activates the key and its answer is lost on the way back. The next run's
/// activation is refused (the enrollment is no longer pending); the connector then
/// reads the user's enrollments, finds its own ACTIVE, and goes on: approved, the PIN
/// mailed once, one key shipped.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_activation_answer_still_reaches_the_approval_and_one_pin() {
    let w = start().await;
    w.okta_org
        .faults()
        .script([sandbox::faults::ScriptedFault::new(
            "POST",
            "/activate",
            sandbox::faults::FaultKind::DropAfter,
            1,
        )]);
    let id = batch(&w, BOB).await;
    let r = w.drive_to(&id, "awaiting_approval").await;
    assert!(
        w.okta_org.faults().get().script.is_empty(),
        "the activation's answer was lost"
    );
    assert_eq!(r["okta"]["activated"], true, "{r}");
    let enrollments = w.enrollments(BOB).await;
    assert_eq!(enrollments.len(), 1, "{enrollments:?}");
    assert_eq!(enrollments[0]["status"], "ACTIVE");
    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/okta/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "complete", "{v}");
    assert_eq!(w.mail.messages().len(), 1, "the PIN mailed once");
    assert_eq!(w.fulfiller_shipments().await.len(), 1, "one key");
}
